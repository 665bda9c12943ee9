"""Anthropic's error shape, on /v1/messages: as an answer and as a stream's event."""

from typing import Any

from app.errors import RelayError

# Anthropic's error types, by status (other 4xx: invalid_request_error, other 5xx: api_error).
_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    default = "invalid_request_error" if status < 500 else "api_error"
    return _TYPES.get(status, default)


def error_event(message: str, kind: str = "api_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_body(error: RelayError) -> dict[str, Any]:
    # Anthropic's shape has no `param`: the message names the field instead.
    message = error.message
    if error.param and error.param not in message:
        message = f"{error.param}: {message}"
    return error_event(message, anthropic_type(error.status))
