"""A request's trace, opened when it starts and closed when its answer has
ended: its SERVER span, and the end of its last call to a remote (whose
metrics count whether tracing is on or not)."""

from flask import current_app

from app.observability import semconv, tracing
from app.spend import money


def start(exchange, req):
    """Open the SERVER span of the request `req` (tracing on)."""
    exchange.span = tracing.server_span(
        exchange,
        req.scheme,
        req.headers.get("User-Agent"),
        exchange.traceparent,
        exchange.tracestate,
    )
    exchange.currency = current_app.config["RELAY_CURRENCY"]
    if current_app.config["RELAY_TRACE_CONTENT"]:
        # The caller's credential and the relay's tokens, wherever a prompt
        # quotes them (the remote's key is added per call).
        presented = (
            req.headers.get("Authorization", "").partition(" ")[2],
            req.headers.get("x-api-key"),
            req.headers.get("api-key"),
        )
        exchange.content_secrets = tuple(
            secret
            for secret in (
                *presented,
                *current_app.config["RELAY_ADMIN_TOKEN"],
                *current_app.config["RELAY_METRICS_TOKEN"],
            )
            if secret
        )


def end(exchange):
    """End the last call to a remote (its metrics, its span) and the request's span."""
    attempt = exchange.attempt
    if attempt is not None and attempt.open:
        status = exchange.status or 0
        if exchange.failed:
            error = exchange.error_type or semconv.OTHER_ERROR
        elif attempt.answered or (attempt.stream and status < 400):
            error = None
        else:
            error = exchange.error_type or (str(status) if status else semconv.OTHER_ERROR)
        usage = None if error or exchange.estimated else exchange.usage
        cost = None
        if error is None and exchange.cost is not None:
            cost = exchange.cost / money.PICO
        attempt.end(error, usage, cost, exchange.currency)
    if exchange.span is not None:
        tracing.end_server_span(exchange.span, exchange)
