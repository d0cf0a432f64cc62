// The budget dashboard: polls /v1/dashboard every second and redraws. The key lives in sessionStorage only.
"use strict";

const POLL_MS = 1000;
const KEY_STORE = "apportion-key";
const $ = (id) => document.getElementById(id);
const charts = {};
window.dashboard = { charts, polls: 0 };

function headers() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function size(element) {
  return { width: Math.max(element.clientWidth - 4, 240), height: 200 };
}

const compact = (u, splits) => splits.map((v) => (v === null ? "" : Number(v.toPrecision(3)).toString()));

function lineChart(id, series, yLabel, yRange) {
  const element = $(id);
  const options = {
    ...size(element),
    scales: { x: { time: true }, ...(yRange ? { y: { range: yRange } } : {}) },
    series: [{}, ...series.map(([label, stroke, dash]) => ({ label, stroke, width: 2, dash, spanGaps: true }))],
    axes: [{}, { label: yLabel, size: 60, values: compact }],
  };
  charts[id] = new uPlot(options, [[], ...series.map(() => [])], element);
}

function barChart(id, label, stroke) {
  const element = $(id);
  const options = {
    ...size(element),
    scales: {
      x: { time: false, range: (u, min, max) => [(min ?? 0) - 0.6, (max ?? 0) + 0.6] },
      y: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] },
    },
    series: [{ label: "" }, { label, stroke, fill: stroke + "55", paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } }],
    axes: [
      { splits: (u) => u.data[0], values: (u, splits) => splits.map((i) => (charts[id].labels || [])[i] ?? "") },
      { label: "queries", size: 56 },
    ],
  };
  charts[id] = new uPlot(options, [[], []], element);
}

function setup() {
  lineChart("chart-budget", [["target", "#1d2430", [6, 4]], ["realized (window)", "#2f6fde"], ["recent", "#8fb3ef"], ["operating budget", "#b35c00"]], "cost");
  lineChart("chart-lambda", [["λ", "#7a3fc4"]], "λ");
  lineChart("chart-rate", [["requests/s", "#2f8f5b"]], "req/s");
  lineChart("chart-latency", [["gateway", "#2f6fde"], ["backend", "#b35c00"]], "ms");
  lineChart("chart-escalated", [["escalated", "#b35c00"]], "share", [0, 1]);
  barChart("chart-samples", "queries", "#2f6fde");
  barChart("chart-agreement", "queries", "#2f8f5b");
}

const MODEL_COLOURS = ["#2f6fde", "#b35c00", "#2f8f5b", "#7a3fc4", "#c43f5e"];

// One line per model: the chart is built again when the set of models changes (uPlot's series are fixed).
function setModels(t, byModel) {
  const names = Object.keys(byModel);
  const chart = charts["chart-models"];
  if (!chart || chart.models !== names.join("\n")) {
    chart?.destroy();
    $("chart-models").replaceChildren();
    lineChart("chart-models", names.map((name, i) => [name, MODEL_COLOURS[i % MODEL_COLOURS.length]]), "cost/s");
    charts["chart-models"].models = names.join("\n");
  }
  charts["chart-models"].setData([t, ...names.map((name) => byModel[name])]);
}

function setBars(id, labels, counts) {
  charts[id].labels = labels.map(String);
  charts[id].setData([labels.map((_, i) => i), counts]);
}

function fixed(value, digits) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function fillTable(id, rows) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const row = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell;
      row.append(td);
    }
    return row;
  }));
}

function draw(data) {
  const budget = data.budget;
  $("target").textContent = fixed(budget.target, 2);
  $("realized").textContent = budget.queries ? fixed(budget.realized, 3) : "–";
  $("operating").textContent = fixed(budget.operating_budget, 2);
  $("lambda").textContent = budget.lambda === null ? "–" : Number(budget.lambda).toPrecision(3);
  $("queries").textContent = budget.queries.toLocaleString();
  $("since").textContent = `since ${new Date(budget.since * 1000).toLocaleTimeString()}`;
  const s = data.history.series;
  charts["chart-budget"].setData([s.t, s.target, s.realized, s.recent, s.operating_budget]);
  charts["chart-lambda"].setData([s.t, s.lam]);
  charts["chart-rate"].setData([s.t, s.rate]);
  charts["chart-latency"].setData([s.t, s.latency_ms, s.backend_ms]);
  $("escalated-figure").hidden = data.models.length < 2;  // one model: nothing to escalate to
  charts["chart-escalated"].setData([s.t, s.escalated]);
  setModels(s.t, data.history.cost_by_model);
  for (const element of document.querySelectorAll(".cost-unit")) element.textContent = `${budget.unit} / query`;
  for (const element of document.querySelectorAll(".cost-unit-window")) element.textContent = `${budget.unit} / query, this window`;
  setBars("chart-samples", data.history.samples_histogram.samples, data.history.samples_histogram.queries);
  setBars("chart-agreement", data.history.agreement_histogram.bins, data.history.agreement_histogram.queries);
  const amount = (value) => Number(Number(value).toPrecision(6)).toLocaleString();
  const allowance = (t) => (t.budget === null ? "no limit" : `${amount(t.budget)}${t.budget_period ? ` ${t.budget_period}` : ""}`);
  fillTable("tenants", budget.tenants.map((t) => [t.tenant, t.queries.toLocaleString(), t.samples.toLocaleString(), amount(t.cost), allowance(t), t.left === null ? "–" : amount(t.left)]));
  fillTable("models", budget.models.map((m) => [m.model, amount(m.price), m.samples.toLocaleString(), m.units.toLocaleString(), amount(m.cost)]));
  fillTable("backends", Object.entries(data.backends));
  const viewer = data.viewer;
  $("target-panel").hidden = !viewer.admin;
  $("read-only").hidden = viewer.admin;
  const degraded = budget.degraded ? " · DEGRADED: shared ledger unreachable, serving from a local copy" : "";
  const wiped = budget.ledger_wiped_at
    ? ` · LEDGER LOST at ${new Date(budget.ledger_wiped_at * 1000).toLocaleTimeString()}: Redis had lost its data; restored from this gateway's last view (run Redis with persistence)`
    : "";
  $("status").textContent = `${viewer.admin ? "admin" : viewer.tenant} · policy ${data.policy} · ledger ${budget.store}${degraded}${wiped} · updated ${new Date().toLocaleTimeString()}`;
  $("status").className = budget.degraded || budget.ledger_wiped_at ? "status error" : "status";
}

let open = null;

async function poll() {
  try {
    if (open === null) open = (await (await fetch("/v1/dashboard/access")).json()).open;
    if (!open && !sessionStorage.getItem(KEY_STORE)) {
      $("status").textContent = "This gateway needs an API key: enter yours above.";
      $("status").className = "status error";
      return;
    }
    const response = await fetch("/v1/dashboard", { headers: headers() });
    if (response.status === 401) {
      $("status").textContent = "This gateway needs an API key: enter yours above.";
      $("status").className = "status error";
      return;
    }
    const body = await response.json();
    if (!response.ok) {
      $("status").textContent = `The gateway answered ${response.status}: ${body.error?.message ?? ""}`;
      $("status").className = "status error";
      return;
    }
    draw(body);
    window.dashboard.polls += 1;
  } catch (error) {
    $("status").textContent = `Cannot reach the gateway (${error.message}); retrying.`;
    $("status").className = "status error";
  }
}

async function changeTarget(event) {
  event.preventDefault();
  const target = Number($("new-target").value);
  const response = await fetch("/v1/budget/target", {
    method: "PUT",
    headers: { "Content-Type": "application/json", ...headers() },
    body: JSON.stringify({ target }),
  });
  const body = await response.json();
  $("target-result").textContent = response.ok ? `target set to ${body.target}` : body.error.message;
  await poll();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("key").value.trim());
  $("key").value = "";
  poll();
});
$("target-form").addEventListener("submit", changeTarget);
window.addEventListener("resize", () => {
  for (const [id, chart] of Object.entries(charts)) chart.setSize(size($(id)));
});
setup();
poll();
setInterval(poll, POLL_MS);
