"""Prometheus metrics. Under gunicorn every worker writes its own files in
PROMETHEUS_MULTIPROC_DIR (ops/gunicorn.conf.py sets it) and /metrics sums them,
so a scrape sees the whole server whichever worker answers it."""

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.observability import semconv

# Streams last minutes: the buckets reach well past a single request's usual span.
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

# `key` is a client key's name ("admin"; "-" with auth off): names are chosen
# by the admin, so the label set stays bounded.
REQUESTS = Counter(
    "relay_requests_total",
    "Requests answered, by API surface, route, model, status and client key.",
    ["surface", "route", "model", "status", "key"],
)
DURATION = Histogram(
    "relay_request_duration_seconds",
    "Time from request to the end of the answer (streams included).",
    ["surface", "route"],
    buckets=_SECONDS,
)
UPSTREAM_REQUESTS = Counter(
    "relay_upstream_requests_total",
    "Calls to remotes, by remote host and outcome (HTTP status or error kind).",
    ["remote_host", "outcome"],
)
UPSTREAM_RETRIES = Counter(
    "relay_upstream_retries_total",
    "Failed calls to remotes before "
    "the first byte, by remote host and outcome (retried: sent "
    "again; gave_up: the failure went on to the client or a fallback).",
    ["remote_host", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "relay_upstream_response_seconds",
    "Time until a remote's response headers.",
    ["remote_host"],
    buckets=_SECONDS,
)
UPSTREAM_FIRST_BYTE = Histogram(
    "relay_upstream_first_byte_seconds",
    "Time until the first item of a remote's streamed answer.",
    ["remote_host"],
    buckets=_SECONDS,
)
TOKENS = Counter(
    "relay_tokens_total",
    "Tokens reported by remotes, by model, direction (in: prompt, out: completion) and client key.",
    ["model", "direction", "key"],
)
COST = Counter(
    "relay_cost_total",
    "Cost of requests in RELAY_CURRENCY (priced models only), by client key, team and model.",
    ["key", "team", "model"],
)
BUDGET_USED = Gauge(
    "relay_budget_used_ratio",
    "Share of a budget's current period spent (1: all of it), by scope (key, team) and name.",
    ["scope", "name"],
    multiprocess_mode="max",
)
REMOTES_COOLING_DOWN = Gauge(
    "relay_remotes_cooling_down",
    "Remotes skipped after repeated failures (app/remotes/cooldown.py), summed over workers.",
    multiprocess_mode="livesum",
)
OPEN_STREAMS = Gauge(
    "relay_open_streams", "Streamed answers in progress.", multiprocess_mode="livesum"
)
REQUEST_LOG_DROPPED = Counter(
    "relay_request_log_dropped_total",
    "Request log rows (row) or their captured payloads (capture) dropped before they were "
    "written, oldest first, while a worker's buffer was full (the database slow or down).",
    ["kind"],
)

# The GenAI client metrics (app/observability/semconv.py): one observation per
# call to a remote (each retry and fallback its own), whether tracing is on or not.
_GENAI = (semconv.LABEL_OPERATION_NAME, semconv.LABEL_PROVIDER_NAME, semconv.LABEL_REQUEST_MODEL)
GENAI_TOKENS = Histogram(
    semconv.METRIC_TOKEN_USAGE,
    "Number of input and output tokens used, by token type, operation, provider and remote model.",
    [semconv.LABEL_TOKEN_TYPE, *_GENAI],
    buckets=semconv.TOKEN_BUCKETS,
)
GENAI_DURATION = Histogram(
    semconv.METRIC_OPERATION_DURATION,
    "GenAI operation duration: a call to a remote, until its answer has ended (streams included).",
    [*_GENAI, semconv.LABEL_ERROR_TYPE],
    buckets=semconv.SECONDS_BUCKETS,
)
GENAI_FIRST_CHUNK = Histogram(
    semconv.METRIC_TIME_TO_FIRST_CHUNK,
    "Time from a streamed call to a remote until its first chunk.",
    list(_GENAI),
    buckets=semconv.SECONDS_BUCKETS,
)


_children = {}


def child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, from a dict after the first time: labels()
    checks and converts its arguments and takes a lock on every call, a
    measurable share of a request's CPU when several metrics count each one.
    The label sets are bounded (routes, models and keys the admin made)."""
    found = _children.get((metric, values))
    if found is None:
        found = _children[metric, values] = metric.labels(*values)
    return found


def count_tokens(model, usage, key):
    if not usage:
        return
    child(TOKENS, model, "in", key).inc(usage.get("prompt_tokens") or 0)
    child(TOKENS, model, "out", key).inc(usage.get("completion_tokens") or 0)


def exposition():
    """(body, content type) of the current metrics, across workers when there are several."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
