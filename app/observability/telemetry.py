"""Per-request telemetry: the request id, one JSON log line per request, and
the request metrics — recorded when the answer has really ended, which for a
stream is long after the view returned."""

import contextlib
import functools
import json
import logging
import os
import re
import select
import socket
import time

from flask import current_app, g, has_request_context, request

from app.chat import estimate
from app.fast import log_line
from app.observability import metrics, request_trace, tracing
from app.observability.attempts import Attempt
from app.spend import money
from app.web import client_watch

access_log = logging.getLogger("app.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ENVIRON_KEY = "relay.exchange"


class Exchange:
    """What one request did, filled in by whoever learns it (views, the
    remote client, the stream relay), logged and counted once at the end."""

    def __init__(self, request_id, method, path, surface, client):
        self.request_id, self.method, self.path, self.surface = request_id, method, path, surface
        self.client = client
        self.route = "unmatched"
        self.started = time.monotonic()
        self.model = ""
        self.status = None
        self.remote_host = None
        self.upstream_status = None
        self.usage = None
        # The last request body sent to a remote, and the characters of the
        # text its answer held so far: the estimate, when the remote's usage
        # never came (app.chat.estimate).
        self.sent = None
        self.characters = 0
        self.estimated = False
        self.price = None  # the serving model's Price (app/spend/prices.py), if it has one
        self.cost = None  # pico-units, once accounted; None: no price
        self.reservation = None  # held against budgets until the request ends
        self.key = "-"  # the caller's key name ("admin"; "-" with auth off)
        self.team = "-"  # the key's team ("-": none)
        self.failed = False  # a stream that ended with an in-band error
        self.attempts = 0  # calls to remotes, retries included
        self.client_gone = lambda: False
        # A context the remote client waits in for a whole answer: it ends
        # the wait when the client leaves (app.web.client_watch).
        self.waiting_on = lambda host: contextlib.nullcontext()
        self.abandoned = False  # the client left while the remote worked on its request
        self.finish_hooks = ()
        self.finished = False
        self.attempt = None  # the last call to a remote (app/observability/attempts.py)
        self.error_type = None  # what went wrong, for error.type (an error's code or status)
        self.span = None  # the SERVER span, with tracing on
        self.content_secrets = None  # with RELAY_TRACE_CONTENT: what never goes in a span
        self.currency = None  # RELAY_CURRENCY, for relay.cost
        # The caller's W3C trace context: continued with tracing on, passed on
        # to the remote as it came with tracing off (if it is one).
        self.traceparent = self.tracestate = None
        # For the request log (app/observability/request_log.py):
        self.wall_started = time.time()
        self.calls_model = False  # the view calls a model (access.calls_a_model)
        self.asked_model = None  # the model asked for (a fallback may serve)
        self.remote_model = None
        self.fallback = None  # the fallback model that served, if one did
        self.models_called = 0  # models whose remote was called (fallbacks included)
        self.stream = False
        self.first_byte = None  # time.monotonic() of a stream's first byte out
        self.error_code = None
        # Payload capture (app/observability/capture.py): the mode for this
        # request ("errors", "all"; None: off), its raw body, the answer's
        # bytes, and secrets to scrub from them (the remote's key).
        self.capture = None
        self.raw_body = None
        self.answer = None
        self.answer_limit = 0
        self.secrets = []

    def record_usage(self, usage):
        if isinstance(usage, dict):
            self.usage = usage

    def begin_attempt(self, operation, provider, url, body, stream, retry, secret=None):
        """A call to a remote starts (app/remotes/http): its Attempt, with the
        headers that carry the trace to the remote."""
        previous = self.attempt
        if previous is not None and previous.open:
            # Its answer came but could not be used, and a fallback follows.
            previous.fail(self.error_type)
        attempt = self.attempt = Attempt(operation, provider, url, body, stream, retry)
        if self.span is not None:
            attempt.span, attempt.headers = tracing.client_span(self.span, attempt, self)
            attempt.recording = attempt.span.is_recording()
            if attempt.recording and self.content_secrets is not None:
                attempt.record_content((secret, *self.content_secrets))
        elif self.traceparent is not None and tracing.parse_traceparent(self.traceparent)[0]:
            attempt.headers = {"traceparent": self.traceparent}
            if self.tracestate:
                attempt.headers["tracestate"] = self.tracestate
        return attempt

    def attempt_failed(self, error):
        """The last call's answer was refused (app/routing.py falls back)."""
        if self.attempt is not None:
            self.attempt.fail(error_type(error))

    def trace_ids(self):
        """(trace id, span id) in hex: see tracing.current_ids()."""
        if self.span is not None:
            return tracing.ids(self.span)
        if self.traceparent is not None:
            return tracing.parse_traceparent(self.traceparent)
        return None, None


def error_type(error):
    """error.type of a RelayError: its code, else its status."""
    return getattr(error, "code", None) or str(getattr(error, "status", "")) or None


def current():
    """This request's Exchange (None outside a request)."""
    return request.environ.get(_ENVIRON_KEY) if has_request_context() else None


def streaming(environ):
    """The Exchange of a streamed answer about to begin (None outside one)."""
    exchange = environ.get(_ENVIRON_KEY)
    if exchange is not None:
        exchange.stream = True
        if exchange.capture:
            exchange.answer = bytearray()
    return exchange


def stream_ended(environ, usage, failed=False, error=None):
    """A streamed answer produced its last item (or broke off: `error`, if
    the remote's stream failed, its error)."""
    exchange = environ.get(_ENVIRON_KEY)
    if exchange is not None:
        exchange.record_usage(usage)
        exchange.failed = exchange.failed or failed
        if failed and exchange.error_type is None:
            exchange.error_type = error_type(error) if error is not None else None
        finish(exchange)


def _client_gone_probe(environ):
    """A function telling, without blocking, whether the client closed its
    connection (under gunicorn's gevent worker, which hands us the socket)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def gone():
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            # Readable with nothing to read: the client closed. (Readable
            # with data: a pipelined next request; the client is there.)
            return bool(readable) and not sock.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    return gone


def _surface(path):
    if path.startswith("/api/"):
        return "ollama"
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return "service"


def _begin():
    # The request itself, not its context-local proxy: every attribute read
    # through the proxy costs a context lookup, on every request.
    req = request._get_current_object()
    given = req.headers.get("X-Request-ID", "")
    # 128 random bits, as uuid4().hex has, for a fraction of its cost.
    request_id = given if _REQUEST_ID.match(given) else os.urandom(16).hex()
    path = req.path
    exchange = Exchange(request_id, req.method, path, _surface(path), req.remote_addr)
    if req.url_rule is not None:
        exchange.route = req.url_rule.rule
        view = current_app.view_functions.get(req.endpoint)
        exchange.calls_model = getattr(view, "calls_a_model", False)
    exchange.capture = current_app.extensions.get("relay.capture_default")
    exchange.answer_limit = current_app.config["RELAY_CAPTURE_MAX_BYTES"]
    exchange.finish_hooks = current_app.extensions.get("relay.finish_hooks", ())
    exchange.client_gone = _client_gone_probe(req.environ)
    exchange.waiting_on = functools.partial(client_watch.interrupting, req.environ)
    environ = req.environ
    exchange.traceparent = environ.get("HTTP_TRACEPARENT")
    if exchange.traceparent is not None:
        exchange.tracestate = environ.get("HTTP_TRACESTATE")
    if tracing.on() and path not in tracing.UNTRACED:
        request_trace.start(exchange, req)
    environ[_ENVIRON_KEY] = exchange
    g.request_id = request_id


def finish(exchange):
    """Count and log `exchange`, once: for a plain answer before it is sent,
    for a stream when its last item has been produced (both before the
    client can see the end, so a scrape right after never misses it)."""
    if exchange is None or exchange.finished:
        return
    exchange.finished = True
    _estimate_missing_usage(exchange)
    duration = time.monotonic() - exchange.started
    labels = (exchange.surface, exchange.route)
    metrics.child(
        metrics.REQUESTS, *labels, exchange.model, str(exchange.status), exchange.key
    ).inc()
    metrics.child(metrics.DURATION, *labels).observe(duration)
    metrics.count_tokens(exchange.model, exchange.usage, exchange.key)
    for hook in exchange.finish_hooks:
        try:
            hook(exchange)
        except Exception:
            access_log.exception("accounting for request %s failed", exchange.request_id)
    if exchange.attempt is not None or exchange.span is not None:
        try:
            request_trace.end(exchange)
        except Exception:
            access_log.exception("tracing request %s failed", exchange.request_id)
    trace_id, span_id = exchange.trace_ids()
    usage = exchange.usage or {}
    _log_request(
        {
            "request_id": exchange.request_id,
            "method": exchange.method,
            "path": exchange.path,
            "client": exchange.client,
            "key": exchange.key,
            "team": exchange.team,
            "model": exchange.model or None,
            "status": exchange.status,
            "duration_ms": round(duration * 1000, 1),
            "remote_host": exchange.remote_host,
            "upstream_status": exchange.upstream_status,
            "tokens_in": usage.get("prompt_tokens"),
            "tokens_out": usage.get("completion_tokens"),
            "cost": None if exchange.cost is None else money.exact(exchange.cost),
            "attempts": exchange.attempts,
            **({"tokens_estimated": True} if exchange.estimated else {}),
            **({"trace_id": trace_id, "span_id": span_id} if trace_id else {}),
        }
    )


def _estimate_missing_usage(exchange):
    """A remote took the request (it answered with a status below 400, or
    the client left while it worked on it) but its usage never came: the
    client or the remote cut the stream before the usage chunk, the client
    gave up on a whole answer, or the remote sends none. The provider bills it all the same,
    so it counts, in tokens, tpm and cost, as the relay's own estimate."""
    if exchange.usage is not None or exchange.sent is None:
        return
    answered = exchange.upstream_status is not None and exchange.upstream_status < 400
    if not (answered or exchange.abandoned):
        return
    exchange.usage = estimate.usage(exchange.sent, exchange.characters)
    exchange.estimated = True


def _log_request(fields):
    """The request's line: what access_log.info("request", extra={"fields":
    fields}) writes, written directly to the JSON handler's stream when
    that fast path is on (app.fast.log_line)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    if log_line.active() and log_line.write(access_log, _JSON_HANDLER, JSONFormatter, fields):
        return
    access_log.info("request", extra={"fields": fields})


def init_app(app):
    app.before_request(_begin)

    @app.after_request
    def finish_later(response):
        exchange = current()
        exchange.status = response.status_code
        response.headers["X-Request-ID"] = exchange.request_id
        if not response.is_streamed:
            if exchange.capture and exchange.calls_model:
                exchange.answer = response.get_data()
            finish(exchange)
        # A stream the client left before it began never reaches the relay's
        # own finish; closing the response is the last chance.
        response.call_on_close(lambda: finish(exchange))
        return response


class JSONFormatter(logging.Formatter):
    """One JSON object per line: what log shippers index without parsing rules."""

    # json.dumps(line, default=str) would build an encoder for every line.
    encode = json.JSONEncoder(default=str).encode
    _second, _stamp = None, ""

    def stamp(self, created):
        """`created` (a time.time()) as lines show it: whole seconds, local
        time (formatted once a second, not once a line)."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(second))
            self._second = second
        return self._stamp

    def format(self, record):
        line = {
            "time": self.stamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if has_request_context() and "request_id" not in line and "request_id" in g:
            line["request_id"] = g.request_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return self.encode(line)


_JSON_HANDLER = None  # the handler configure_logging installed on "app"


def configure_logging(level):
    global _JSON_HANDLER
    # Where a log call was made, and from which thread, is not in our lines:
    # looking it up for every record costs a stack walk (the logging HOWTO's
    # "Optimization"). The process id stays: gunicorn's own lines show it.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = _JSON_HANDLER = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("app")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    # gunicorn and the root logger have their own format; ours stays JSON.
    logger.propagate = False
