"""Errors as HTTP answers: each in the shape of the surface the request is on."""

import logging

from flask import jsonify, request
from peewee import DataError, PeeweeException
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException

from app.errors import BadRequest, RelayError
from app.observability import telemetry
from app.surfaces.anthropic import errors as anthropic
from app.surfaces.ollama import errors as ollama
from app.surfaces.openai import errors as openai

log = logging.getLogger(__name__)


def _error_body(error):
    """The error shape of the surface this request is on."""
    path = request.path
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return anthropic.error_body(error)
    if path.startswith("/v1/"):
        return openai.error_body(error)
    return ollama.error_body(error)


def error_response(error):
    exchange = telemetry.current()
    if exchange is not None:
        exchange.error_code = error.code or error.openai_type
        if exchange.error_type is None:
            exchange.error_type = telemetry.error_type(error)
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
        log.warning(
            "database refused a value on %s %s: %s",
            request.method,
            request.path,
            exc.__class__.__name__,
        )
        return error_response(
            BadRequest(
                "the request holds a value the relay cannot store "
                "(a NUL character, or a number out of range)"
            )
        )

    @app.errorhandler(PeeweeException)
    def database_unavailable(exc):
        # The client can retry; the operator reads the cause in the log.
        log.error(
            "database error on %s %s: %s", request.method, request.path, exc.__class__.__name__
        )
        return error_response(
            RelayError("the relay's database is unavailable; try again shortly", status=503)
        )

    # A pool with no connection free within its timeout: the database is as
    # unavailable to this request as when it is down.
    app.register_error_handler(MaxConnectionsExceeded, database_unavailable)

    @app.errorhandler(Exception)
    def unexpected(exc):
        # The traceback goes to the log; the client gets no internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(RelayError("internal server error"))
