-- wrk script: POST the request bodies in the file named after "--", one JSON object per line, in turn.
-- (bench/wrk.py writes that file and runs wrk with this script.)
local bodies = {}
local next_body = 0
local headers = {["Content-Type"] = "application/json"}

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  if args[2] then
    headers["Authorization"] = "Bearer " .. args[2]
  end
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/v1/chat/completions", headers, bodies[next_body])
end
