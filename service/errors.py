"""One error format for every failure: OpenAI's `{"error": {"message", "type", "param", "code"}}`, which
OpenAI clients understand, whoever raised it (a route, FastAPI's validation, or the edge middleware)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """A failure to report to the client: HTTP status, OpenAI error type and code, and a message."""

    def __init__(self, status: int, message: str, kind: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.code, self.param = status, kind, code, param


def error_body(
    status: int, message: str, kind: str | None = None, code: str | None = None, param: str | None = None
) -> JSONResponse:
    kind = kind or _STATUS_TYPES.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def invalid_request(errors: Sequence[Any]) -> JSONResponse:
    """A 400 naming the first thing pydantic found wrong with a request (FastAPI's `body` prefix dropped)."""
    first = errors[0] if errors else {}
    where = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(where) or None
    message = f"{param + ': ' if param else ''}{first.get('msg', 'invalid request')}"
    return error_body(400, message, "invalid_request_error", "invalid_value", param)
