"""OpenTelemetry traces: one SERVER span per request, one CLIENT span per
call to a remote (app/observability/attempts.py), exported over OTLP/HTTP.

Configured by the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER and _ARG, OTEL_SDK_DISABLED), which
the SDK reads itself. Off unless an endpoint is set, and then the SDK is
never imported: a request pays one `is None` test.

Each gunicorn worker builds its own app after the fork (no preload), so the
batch exporter's thread starts in the worker; under the gevent worker,
threads are greenlets (the worker patched them before loading the app), and
the export's socket waits yield to the requests. The spans still queued are
flushed when the worker exits (ops/gunicorn.conf.py's worker_exit).
"""

import os
import re

from app.observability import semconv

_tracer = None
_provider = None
_propagator = None
_SERVICE_NAME = "ollama-relay"
# Probes and scrapes come every few seconds from every prober: traced, they
# would bury the requests worth reading.
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def _flag(value):
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def wanted(environ=os.environ):
    """Whether the environment asks for traces."""
    if _flag(environ.get("OTEL_SDK_DISABLED")):
        return False
    return bool(
        (environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
        or (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    )


def on():
    return _tracer is not None


def configure():
    """Start exporting this process's spans, when the environment asks for it."""
    global _tracer, _provider, _propagator
    if _tracer is not None or not wanted():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        # OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) wins.
        resource = resource.merge(Resource({SERVICE_NAME: _SERVICE_NAME}))
    # The sampler comes from OTEL_TRACES_SAMPLER (default: parentbased_always_on).
    # No exit hook of the SDK's own: the worker's exit flushes (shutdown()).
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider, _propagator = provider, TraceContextTextMapPropagator()
    _tracer = provider.get_tracer("ollama-relay")


def shutdown():
    """Export what is still queued, then stop (a worker exiting)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def parse_traceparent(value):
    """(trace id, parent span id) of a W3C traceparent, in hex; (None, None) if not one."""
    found = _TRACEPARENT.match(value or "")
    if found is None or set(found.group(1)) == {"0"} or set(found.group(2)) == {"0"}:
        return None, None
    return found.group(1), found.group(2)


def ids(span):
    """(trace id, span id) of `span`, in hex."""
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def server_span(exchange, scheme, user_agent, traceparent, tracestate):
    """The SERVER span of a request, continuing the caller's trace if it sent one."""
    from opentelemetry.trace import SpanKind

    context = None
    if traceparent:
        carrier = {"traceparent": traceparent}
        if tracestate:
            carrier["tracestate"] = tracestate
        context = _propagator.extract(carrier)
    route = exchange.route if exchange.route != "unmatched" else None
    attributes = {
        semconv.HTTP_REQUEST_METHOD: exchange.method,
        semconv.URL_PATH: exchange.path,
        semconv.URL_SCHEME: scheme,
        semconv.RELAY_SURFACE: surface(exchange),
        semconv.RELAY_REQUEST_ID: exchange.request_id,
    }
    if route:
        attributes[semconv.HTTP_ROUTE] = route
    if exchange.client:
        attributes[semconv.CLIENT_ADDRESS] = exchange.client
    if user_agent:
        attributes[semconv.USER_AGENT_ORIGINAL] = user_agent
    name = f"{exchange.method} {route}" if route else exchange.method
    return _tracer.start_span(name, context=context, kind=SpanKind.SERVER, attributes=attributes)


def end_server_span(span, exchange):
    from opentelemetry.trace import Status, StatusCode

    status = exchange.status
    if span.is_recording():
        if status is not None:
            span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, status)
        for name, value in _relay_facts(exchange).items():
            span.set_attribute(name, value)
        if status is not None and status >= 500:
            # Server spans: only the 5xx are the server's errors.
            span.set_attribute(semconv.ERROR_TYPE, str(status))
            span.set_status(Status(StatusCode.ERROR))
        elif exchange.failed:
            span.set_attribute(semconv.ERROR_TYPE, exchange.error_type or semconv.OTHER_ERROR)
            span.set_status(Status(StatusCode.ERROR))
    span.end()


def surface(exchange):
    """relay.surface: the API the request spoke (`responses` apart from the rest of /v1)."""
    if exchange.path.startswith("/v1/responses"):
        return "responses"
    return exchange.surface


def _relay_facts(exchange):
    facts = {}
    if exchange.model:
        facts[semconv.RELAY_MODEL] = exchange.model
    if exchange.key != "-":
        # The key's name, chosen by the admin: never the key itself.
        facts[semconv.RELAY_KEY] = exchange.key
    if exchange.team != "-":
        facts[semconv.RELAY_TEAM] = exchange.team
    return facts


def client_span(parent, attempt, exchange):
    """The CLIENT span of `attempt`, a child of the request's SERVER span;
    returns the headers that carry it to the remote (traceparent, tracestate)."""
    from opentelemetry.trace import SpanKind, set_span_in_context

    attributes = dict(attempt.request_attributes())
    attributes[semconv.RELAY_SURFACE] = surface(exchange)
    attributes[semconv.RELAY_RETRY] = attempt.retry
    attributes.update(_relay_facts(exchange))
    if exchange.asked_model and exchange.model and exchange.asked_model != exchange.model:
        attributes[semconv.RELAY_FALLBACK_FROM] = exchange.asked_model
    name = f"{attempt.operation} {attempt.model}" if attempt.model else attempt.operation
    span = _tracer.start_span(
        name, context=set_span_in_context(parent), kind=SpanKind.CLIENT, attributes=attributes
    )
    headers = {}
    _propagator.inject(headers, context=set_span_in_context(span))
    return span, headers


def end_client_span(span, attributes, error_type):
    from opentelemetry.trace import Status, StatusCode

    if span.is_recording():
        span.set_attributes(attributes)
        if error_type:
            span.set_attribute(semconv.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR))
    span.end()


def current_ids():
    """(trace id, span id) in hex of the request being served, for its log
    line and request log row: its SERVER span's with tracing on; with it off,
    the caller's traceparent's (its trace, and its span: the relay's parent)
    if it sent one; else (None, None). (None, None) outside a request."""
    from app.observability import telemetry

    exchange = telemetry.current()
    return (None, None) if exchange is None else exchange.trace_ids()
