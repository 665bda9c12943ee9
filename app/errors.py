"""Error types and the two error shapes (Ollama's /api, OpenAI's /v1)."""
import logging

from flask import jsonify, request
from peewee import PeeweeException
from werkzeug.exceptions import HTTPException

from app.convert.common import openai_error

log = logging.getLogger(__name__)


_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 403: "invalid_request_error", 404: "not_found_error"}


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


def _is_openai_surface():
    return request.path.startswith("/v1/")


def error_response(error):
    body = openai_error_body(error) if _is_openai_surface() else ollama_error_body(error)
    return jsonify(body), error.status, error.headers


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
