"""OpenTelemetry traces, as a collector receives them: the relay under gunicorn
exports over OTLP/HTTP to a receiver the test runs (tests/support/otlp.py).

One trace per request, continuing the caller's traceparent: a SERVER span,
and a CLIENT span per call to a remote (retries and fallbacks each their
own), with the GenAI attributes; traceparent reaches the remote; no content
unless RELAY_TRACE_CONTENT=1, and never a key or token; spans still queued
are exported when a worker stops gracefully."""

import os
import signal

import pytest
import requests

from tests.support.access import ADMIN, ADMIN_TOKEN, REMOTE_KEY, create_key
from tests.support.config import relay_settings
from tests.support.fake_upstream import Reply
from tests.support.models import create_model
from tests.support.otlp import Receiver
from tests.support.servers import GunicornServer

# Spans leave a worker in batches: every tenth of a second here, so that a
# test waits for them a moment, not the SDK's default five seconds.
QUICK_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}
PRICE = {"input": 1, "output": 2}


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def traced(receiver, tmp_path_factory):
    """A relay with keys on, exporting its spans to `receiver`; a client key in a team."""
    workdir = tmp_path_factory.mktemp("traced")
    relay = GunicornServer(
        relay_settings(workdir, RELAY_ADMIN_TOKEN=ADMIN_TOKEN, RELAY_COOLDOWN_FAILURES="1000000"),
        workdir,
        extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **QUICK_EXPORT},
    )
    response = requests.post(relay.url + "/api/teams", json={"name": "search"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    relay.key_name, relay.key = create_key(relay, team="search")
    yield relay
    relay.stop()


def new_traceparent():
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    return f"00-{trace_id}-{parent}-01", trace_id, parent


def model(relay, upstream, name, remote_type="openai", **fields):
    path = "/v1" if remote_type == "openai" else ""
    create_model(
        relay,
        name,
        upstream.url + path,
        headers=ADMIN,
        remote_type=remote_type,
        remote_api_key=REMOTE_KEY,
        **fields,
    )
    return name


def call(relay, path, body, traceparent, key):
    headers = {"Authorization": f"Bearer {key}", "traceparent": traceparent}
    if path.startswith("/v1/messages"):
        headers["anthropic-version"] = "2023-06-01"
    return requests.post(relay.url + path, json=body, headers=headers, timeout=30)


def split(spans):
    servers = [s for s in spans if s.kind == "server"]
    clients = [s for s in spans if s.kind == "client"]
    assert len(servers) == 1, spans
    return servers[0], clients


CHAT = [{"role": "user", "content": "hi"}]
CASES = {
    # path, body (model added), remote type, operation, provider, finish reason
    "chat_completions": ("/v1/chat/completions", {"messages": CHAT}, "openai", "chat", "openai"),
    "api_chat": ("/api/chat", {"messages": CHAT}, "openai", "chat", "openai"),
    "api_chat_ollama": ("/api/chat", {"messages": CHAT}, "ollama", "chat", "ollama"),
    "responses": ("/v1/responses", {"input": "hi"}, "openai", "chat", "openai"),
    "messages": ("/v1/messages", {"messages": CHAT, "max_tokens": 64}, "openai", "chat", "openai"),
}
SURFACES = {"/v1/responses": "responses", "/v1/messages": "anthropic", "/api/chat": "ollama"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_chat_request_is_one_trace_with_a_server_and_a_client_span(
    traced, receiver, upstream, case, stream
):
    path, body, remote_type, operation, provider = CASES[case]
    name = model(traced, upstream, f"{case}-m", remote_type=remote_type, price=PRICE)
    header, trace_id, parent = new_traceparent()
    response = call(traced, path, dict(body, model=name, stream=stream), header, traced.key)
    assert response.status_code == 200, response.text

    server, clients = split(receiver.trace(trace_id, 2))
    assert server.parent_id == parent  # the caller's span
    assert server.service == "ollama-relay"
    assert server.name == f"POST {path}"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.route"] == path
    assert server.attributes["url.path"] == path
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["client.address"] == "127.0.0.1"
    assert server.attributes["relay.surface"] == SURFACES.get(path, "openai")
    assert not server.error

    (client,) = clients
    assert client.parent_id == server.span_id
    assert client.name == f"{operation} remote-model"
    attributes = client.attributes
    assert attributes["gen_ai.operation.name"] == operation
    assert attributes["gen_ai.provider.name"] == provider
    assert attributes["gen_ai.request.model"] == "remote-model"
    assert attributes["gen_ai.response.model"] == "remote-model"
    assert attributes["gen_ai.request.stream"] is stream
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == upstream.port
    assert attributes["relay.model"] == f"{name}:latest"
    assert attributes["relay.key"] == traced.key_name
    assert attributes["relay.team"] == "search"
    assert attributes["relay.surface"] == SURFACES.get(path, "openai")
    assert attributes["relay.retry"] == 0
    assert "relay.fallback_from" not in attributes
    assert "error.type" not in attributes and not client.error
    if remote_type == "ollama":
        assert (
            attributes["gen_ai.usage.input_tokens"],
            attributes["gen_ai.usage.output_tokens"],
        ) == (5, 3)
    else:
        assert attributes["gen_ai.response.id"] == "chatcmpl-upstream1"
        assert (
            attributes["gen_ai.usage.input_tokens"],
            attributes["gen_ai.usage.output_tokens"],
        ) == (11, 7)
    tokens = attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]
    assert attributes["relay.cost"] == pytest.approx((tokens[0] * 1 + tokens[1] * 2) / 1e6)
    assert attributes["relay.currency"] == "USD"
    if stream:
        assert 0 < attributes["gen_ai.response.time_to_first_chunk"] < 60
    else:
        assert "gen_ai.response.time_to_first_chunk" not in attributes
    if path == "/v1/messages":
        assert attributes["gen_ai.request.max_tokens"] == 64
    assert "gen_ai.input.messages" not in attributes
    assert "gen_ai.output.messages" not in attributes
    # The remote joins the trace, as the child of the relay's CLIENT span.
    assert upstream.last.headers["traceparent"] == f"00-{trace_id}-{client.span_id}-01"


@pytest.mark.parametrize(
    "path,body,remote_type",
    [("/v1/embeddings", {"input": ["a", "b"]}, "openai"), ("/api/embed", {"input": "a"}, "ollama")],
)
def test_embeddings_are_an_embeddings_span(traced, receiver, upstream, path, body, remote_type):
    name = model(traced, upstream, f"embed-{remote_type}", remote_type=remote_type)
    header, trace_id, _ = new_traceparent()
    response = call(traced, path, dict(body, model=name), header, traced.key)
    assert response.status_code == 200, response.text
    _, (client,) = split(receiver.trace(trace_id, 2))
    assert client.name == "embeddings remote-model"
    assert client.attributes["gen_ai.operation.name"] == "embeddings"
    assert client.attributes["gen_ai.provider.name"] == remote_type
    assert client.attributes["gen_ai.request.stream"] is False
    assert client.attributes["gen_ai.response.model"] == "remote-model"
    if remote_type == "openai":
        assert client.attributes["gen_ai.usage.input_tokens"] == 4


def test_a_retried_call_is_two_client_spans(traced, receiver, upstream):
    name = model(traced, upstream, "retried")
    upstream.reply(
        Reply(status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "0"})
    )
    header, trace_id, _ = new_traceparent()
    response = call(
        traced, "/v1/chat/completions", {"model": name, "messages": CHAT}, header, traced.key
    )
    assert response.status_code == 200, response.text

    server, clients = split(receiver.trace(trace_id, 3))
    first, second = sorted(clients, key=lambda s: s.start)
    assert first.attributes["relay.retry"] == 0
    assert first.attributes["error.type"] == "429" and first.error
    assert "gen_ai.usage.input_tokens" not in first.attributes
    assert second.attributes["relay.retry"] == 1
    assert "error.type" not in second.attributes and not second.error
    assert second.attributes["gen_ai.usage.input_tokens"] == 11
    # Each attempt carried its own span to the remote.
    sent = [r.headers["traceparent"] for r in upstream.requests[-2:]]
    assert sent == [f"00-{trace_id}-{s.span_id}-01" for s in (first, second)]
    assert not server.error


def test_a_fallback_is_a_span_on_the_fallback_model(traced, receiver, upstream):
    backup = model(traced, upstream, "backup", **{"from": "backup-remote"})
    main = model(traced, upstream, "main", fallbacks=[backup], **{"from": "main-remote"})
    failing = Reply(status=503, json={"error": {"message": "down"}}, headers={"Retry-After": "0"})
    upstream.reply(failing, failing, failing)  # the first try and RELAY_RETRIES (2) retries
    header, trace_id, _ = new_traceparent()
    response = call(
        traced, "/v1/chat/completions", {"model": main, "messages": CHAT}, header, traced.key
    )
    assert response.status_code == 200, response.text

    _, clients = split(receiver.trace(trace_id, 5))
    clients.sort(key=lambda s: s.start)
    assert [c.name for c in clients] == ["chat main-remote"] * 3 + ["chat backup-remote"]
    assert [c.attributes["relay.retry"] for c in clients] == [0, 1, 2, 0]
    assert [c.attributes.get("error.type") for c in clients] == ["503", "503", "503", None]
    assert {c.attributes["relay.model"] for c in clients[:3]} == {"main:latest"}
    assert clients[3].attributes["relay.model"] == "backup:latest"
    assert clients[3].attributes["relay.fallback_from"] == "main:latest"
    assert "relay.fallback_from" not in clients[0].attributes


def test_a_remote_that_fails_makes_a_failed_client_span(traced, receiver, upstream):
    name = model(traced, upstream, "refusing")
    upstream.reply(Reply(status=400, json={"error": {"message": "bad"}}))
    header, trace_id, _ = new_traceparent()
    response = call(
        traced, "/v1/chat/completions", {"model": name, "messages": CHAT}, header, traced.key
    )
    assert response.status_code == 400
    server, (client,) = split(receiver.trace(trace_id, 2))
    assert client.error and client.attributes["error.type"] == "400"
    assert server.attributes["http.response.status_code"] == 400
    assert not server.error  # a 4xx is the client's, not the server's, error


def test_no_content_and_no_secret_in_any_span_by_default(traced, receiver, upstream):
    name = model(traced, upstream, "quiet")
    words = f"tell-nobody {traced.key} {ADMIN_TOKEN} {REMOTE_KEY}"
    header, trace_id, _ = new_traceparent()
    body = {"model": name, "messages": [{"role": "user", "content": words}], "stream": True}
    assert call(traced, "/v1/chat/completions", body, header, traced.key).status_code == 200
    receiver.trace(trace_id, 2)
    raw = receiver.raw()
    assert raw  # every test of this module exported through here
    for secret in (traced.key, ADMIN_TOKEN, REMOTE_KEY, "tell-nobody"):
        assert secret.encode() not in raw
    assert b"gen_ai.input.messages" not in raw and b"gen_ai.output.messages" not in raw


def test_content_is_recorded_with_secrets_scrubbed_when_asked(relay_with, receiver, upstream):
    relay = relay_with(
        RELAY_ADMIN_TOKEN=ADMIN_TOKEN,
        RELAY_TRACE_CONTENT="1",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **QUICK_EXPORT},
    )
    name = model(relay, upstream, "chatty")
    _, key = create_key(relay)
    words = (
        f"the-prompt {key} {ADMIN_TOKEN} {REMOTE_KEY} Authorization: Bearer abcdefghijklmnop12345"
    )
    for stream in (False, True):
        header, trace_id, _ = new_traceparent()
        body = {"model": name, "messages": [{"role": "user", "content": words}], "stream": stream}
        assert call(relay, "/v1/chat/completions", body, header, key).status_code == 200
        _, (client,) = split(receiver.trace(trace_id, 2))
        sent = client.attributes["gen_ai.input.messages"]
        assert '"role": "user"' in sent and "the-prompt" in sent
        answer = client.attributes["gen_ai.output.messages"]
        assert '"content": "Hello from upstream"' in answer
        assert '"finish_reason": "stop"' in answer
    raw = receiver.raw()
    for secret in (key, ADMIN_TOKEN, REMOTE_KEY, "abcdefghijklmnop12345"):
        assert secret.encode() not in raw


def test_spans_still_queued_are_exported_when_the_relay_stops(relay_with, receiver, upstream):
    # Batches every ten minutes: only the shutdown can send these. The
    # traces' own endpoint variable, and the service's name, are taken too.
    relay = relay_with(
        workers=1,
        env={
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url + "/v1/traces",
            "OTEL_SERVICE_NAME": "relay-eu",
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        },
    )
    create_model(relay, "m", upstream.url + "/v1", remote_api_key=REMOTE_KEY)
    header, trace_id, _ = new_traceparent()
    response = requests.post(
        relay.url + "/v1/chat/completions",
        json={"model": "m", "messages": CHAT},
        headers={"traceparent": header},
        timeout=30,
    )
    assert response.status_code == 200
    assert receiver.trace(trace_id, 1, deadline=1) == []
    relay.process.send_signal(signal.SIGTERM)
    relay.process.wait(timeout=120)
    server, clients = split(receiver.trace(trace_id, 2, deadline=10))
    assert len(clients) == 1
    assert server.service == "relay-eu"
