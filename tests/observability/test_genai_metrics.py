"""With tracing off: the caller's trace context passed on to the remote and
named in the log line, and the GenAI histograms on /metrics (recorded
whether tracing is on or not), summed across workers. And the attribute
names the relay pins (app/observability/semconv.py) are the conventions'."""

import importlib
import json
import os

import pytest
import requests

from app.observability import semconv
from tests.support.fake_upstream import Reply
from tests.support.models import create_model

CHAT = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def untraced(tmp_path_factory):
    """A relay with no OTLP endpoint (tracing off), two workers."""
    from tests.support.config import relay_settings
    from tests.support.servers import GunicornServer

    workdir = tmp_path_factory.mktemp("untraced")
    relay = GunicornServer(relay_settings(workdir, RELAY_COOLDOWN_FAILURES="1000000"), workdir)
    yield relay
    relay.stop()


def log_lines(relay):
    return [json.loads(line) for line in relay.log().splitlines() if line.startswith("{")]


def request_line(relay, request_id):
    return next(
        line
        for line in log_lines(relay)
        if line.get("message") == "request" and line["request_id"] == request_id
    )


def test_with_tracing_off_the_callers_trace_goes_on_to_the_remote(untraced, upstream):
    create_model(untraced, "m", upstream.url + "/v1")
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    header = f"00-{trace_id}-{parent}-01"
    response = requests.post(
        untraced.url + "/v1/chat/completions",
        json={"model": "m", "messages": CHAT},
        headers={"traceparent": header, "tracestate": "vendor=abc"},
        timeout=30,
    )
    assert response.status_code == 200
    # Unchanged: the relay takes no part in the trace, the remote joins the caller's.
    assert upstream.last.headers["traceparent"] == header
    assert upstream.last.headers["tracestate"] == "vendor=abc"
    line = request_line(untraced, response.headers["X-Request-ID"])
    assert (line["trace_id"], line["span_id"]) == (trace_id, parent)

    response = requests.post(
        untraced.url + "/v1/chat/completions", json={"model": "m", "messages": CHAT}, timeout=30
    )
    assert "traceparent" not in upstream.last.headers
    line = request_line(untraced, response.headers["X-Request-ID"])
    assert "trace_id" not in line and "span_id" not in line

    # A malformed traceparent is not passed on, and names no trace in the log.
    response = requests.post(
        untraced.url + "/v1/chat/completions",
        json={"model": "m", "messages": CHAT},
        headers={"traceparent": "not-a-trace"},
        timeout=30,
    )
    assert "traceparent" not in upstream.last.headers
    assert "trace_id" not in request_line(untraced, response.headers["X-Request-ID"])


def samples(relay, name):
    """{frozenset of label items: value} of metric sample `name`, from /metrics."""
    found = {}
    for line in requests.get(relay.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            items = frozenset(
                tuple(part.split("=", 1)) for part in labels.replace('"', "").split(",") if part
            )
            found[items] = float(value)
    return found


def value(found, **labels):
    wanted = set(labels.items())
    return sum(v for items, v in found.items() if wanted <= set(items))


def test_the_genai_histograms_count_every_call_across_workers(untraced, upstream):
    create_model(untraced, "metered", upstream.url + "/v1", **{"from": "metered-remote"})
    upstream.reply(
        Reply(status=429, json={"error": {"message": "slow"}}, headers={"Retry-After": "0"})
    )
    body = {"model": "metered", "messages": CHAT}
    calls = 6  # one worker alone seldom answers them all
    for index in range(calls):
        response = requests.post(
            untraced.url + "/v1/chat/completions",
            json=dict(body, stream=index % 2 == 1),
            timeout=30,
        )
        assert response.status_code == 200
    model = {"gen_ai_request_model": "metered-remote"}
    chat = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", **model}

    tokens = samples(untraced, "gen_ai_client_token_usage_count")
    assert value(tokens, gen_ai_token_type="input", **chat) == calls
    assert value(tokens, gen_ai_token_type="output", **chat) == calls
    sums = samples(untraced, "gen_ai_client_token_usage_sum")
    assert value(sums, gen_ai_token_type="input", **chat) == 11 * calls
    buckets = samples(untraced, "gen_ai_client_token_usage_bucket")
    assert value(buckets, le="6.7108864e+07", gen_ai_token_type="output", **chat) == calls

    durations = samples(untraced, "gen_ai_client_operation_duration_seconds_count")
    assert value(durations, error_type="", **chat) == calls
    assert value(durations, error_type="429", **chat) == 1  # the retried attempt
    buckets = samples(untraced, "gen_ai_client_operation_duration_seconds_bucket")
    assert value(buckets, le="81.92", error_type="", **chat) == calls

    first = samples(untraced, "gen_ai_client_operation_time_to_first_chunk_seconds_count")
    assert value(first, **chat) == calls // 2  # streams only


# gen_ai.* and the stable names the relay emits, as the conventions' package names them.
_REGISTRIES = {
    "gen_ai": "opentelemetry.semconv._incubating.attributes.gen_ai_attributes",
    "http": "opentelemetry.semconv.attributes.http_attributes",
    "url": "opentelemetry.semconv.attributes.url_attributes",
    "client": "opentelemetry.semconv.attributes.client_attributes",
    "server": "opentelemetry.semconv.attributes.server_attributes",
    "error": "opentelemetry.semconv.attributes.error_attributes",
    "user_agent": "opentelemetry.semconv.attributes.user_agent_attributes",
}


def test_every_attribute_name_is_the_conventions():
    names = [
        value
        for key, value in vars(semconv).items()
        if key.isupper() and isinstance(value, str) and "." in value and "/" not in value
    ]
    known = set()
    for module in _REGISTRIES.values():
        known |= {v for v in vars(importlib.import_module(module)).values() if isinstance(v, str)}
    emitted = [n for n in names if n.split(".")[0] in _REGISTRIES]
    assert emitted and [n for n in emitted if n not in known] == []


def test_current_ids_name_the_callers_trace_with_tracing_off(app):
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    from app.observability import tracing

    with app.test_request_context(
        "/api/tags", headers={"traceparent": f"00-{trace_id}-{parent}-01"}
    ):
        app.preprocess_request()
        assert tracing.current_ids() == (trace_id, parent)
    with app.test_request_context("/api/tags"):
        app.preprocess_request()
        assert tracing.current_ids() == (None, None)
    assert tracing.current_ids() == (None, None)  # outside a request


def test_with_tracing_off_the_sdk_is_never_loaded(tmp_path):
    # A process of its own: this one may have loaded OpenTelemetry for other tests.
    import subprocess
    import sys

    from tests.support.config import relay_settings
    from tests.support.paths import ROOT

    script = (
        "import sys\n"
        "from app import create_app\n"
        "client = create_app().test_client()\n"
        "assert client.get('/api/tags', headers={'traceparent': "
        "'00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'}).status_code == 200\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(relay_settings(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
