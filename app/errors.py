"""Error types and the three error shapes (Ollama's /api, OpenAI's /v1,
Anthropic's /v1/messages)."""
import logging

from flask import jsonify, request
from peewee import DataError, PeeweeException
from werkzeug.exceptions import HTTPException

from app.convert.common import openai_error

log = logging.getLogger(__name__)


_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 403: "invalid_request_error", 404: "not_found_error",
                 429: "rate_limit_error"}


class RelayError(Exception):
    """An error with a status and a message meant for the client."""

    status = 500
    # OpenAI's error `type`, when the status alone does not decide it.
    type = None

    def __init__(self, message, status=None, param=None, code=None, headers=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.param = param
        self.code = code
        self.headers = headers or {}

    @property
    def openai_type(self):
        return self.type or _OPENAI_TYPES.get(self.status, "api_error")


class BadRequest(RelayError):
    status = 400


class NotFound(RelayError):
    status = 404


class ModelNotFound(NotFound):
    def __init__(self, name):
        super().__init__(f"model '{name}' not found", param="model", code="model_not_found")


class Unauthorized(RelayError):
    """No key, or one that is unknown, revoked or expired."""

    status = 401

    def __init__(self, message):
        super().__init__(message, code="invalid_api_key",
                         headers={"WWW-Authenticate": 'Bearer realm="ollama-relay"'})


class Forbidden(RelayError):
    status = 403


class RateLimited(RelayError):
    """Over a key's rpm or tpm; headers say when to come back."""

    status = 429

    def __init__(self, message, kind, headers):
        super().__init__(message, code="rate_limit_exceeded", headers=headers)
        # OpenAI names the limit that was hit: "requests" or "tokens".
        self.type = kind


class UpstreamError(RelayError):
    """The remote answered with an error, or could not be reached."""

    status = 502


def openai_error_body(error):
    return openai_error(error.message, error.openai_type, error.param, error.code)


def ollama_error_body(error):
    return {"error": error.message}


# Anthropic's error types, by status (other 4xx: invalid_request_error, other 5xx: api_error).
_ANTHROPIC_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error",
                    529: "overloaded_error"}


def anthropic_type(status):
    default = "invalid_request_error" if status < 500 else "api_error"
    return _ANTHROPIC_TYPES.get(status, default)


def anthropic_error_body(error):
    # Anthropic's shape has no `param`: the message names the field instead.
    message = error.message
    if error.param and error.param not in message:
        message = f"{error.param}: {message}"
    return {"type": "error", "error": {"type": anthropic_type(error.status), "message": message}}


def _error_body(error):
    """The error shape of the surface this request is on."""
    path = request.path
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return anthropic_error_body(error)
    if path.startswith("/v1/"):
        return openai_error_body(error)
    return ollama_error_body(error)


def error_response(error):
    return jsonify(_error_body(error)), error.status, error.headers


def _from_http_exception(exc):
    messages = {
        404: f"{request.path} not found",
        405: f"method {request.method} not allowed on {request.path}",
        413: "request body too large (the limit is set by RELAY_MAX_BODY_BYTES)",
    }
    return RelayError(messages.get(exc.code) or exc.description or exc.name, status=exc.code)


def init_app(app):
    app.register_error_handler(RelayError, error_response)

    @app.errorhandler(HTTPException)
    def http_exception(exc):
        return error_response(_from_http_exception(exc))

    @app.errorhandler(DataError)
    def value_not_storable(exc):
        # The database refused a value (a NUL character, a number out of its
        # column's range): the request's fault, which the schemas should have
        # caught naming the field; the database is fine.
        # Only the class: the database's message may quote the value.
        log.warning("database refused a value on %s %s: %s", request.method, request.path,
                    exc.__class__.__name__)
        return error_response(BadRequest("the request holds a value the relay cannot store "
                                         "(a NUL character, or a number out of range)"))

    @app.errorhandler(PeeweeException)
    def database_unavailable(exc):
        # The client can retry; the operator reads the cause in the log.
        log.error("database error on %s %s: %s", request.method, request.path,
                  exc.__class__.__name__)
        return error_response(RelayError("the relay's database is unavailable; try again "
                                         "shortly", status=503))

    @app.errorhandler(Exception)
    def unexpected(exc):
        # The traceback goes to the log; the client gets no internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(RelayError("internal server error"))
