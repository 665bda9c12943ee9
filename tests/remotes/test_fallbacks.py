"""Fallback models and cool-down: when a model's remote keeps failing, the
client is served by the next model in its list, under the name it asked for."""

import json

import openai
import pytest
import requests

from tests.support.cli import cli_process
from tests.support.fake_upstream import FakeUpstream, Reply, completion, text_stream
from tests.support.models import create_model

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def failure(status):
    return Reply(status=status, json={"error": {"message": f"primary says {status}"}})


@pytest.fixture(scope="module")
def backup():
    """A second provider (another region) that answers."""
    server = FakeUpstream()
    yield server
    server.close()


def create(relay, name, host, **fields):
    return create_model(relay, name, host + "/v1", expect=None, **fields)


@pytest.fixture
def relay(relay_with, upstream, backup):
    backup.reset()
    relay = relay_with(
        workers=1, RELAY_RETRIES="1", RELAY_COOLDOWN_FAILURES="3", RELAY_COOLDOWN_SECONDS="60"
    )
    assert create(relay, "backup", backup.url).status_code == 200
    assert create(relay, "main", upstream.url, fallbacks=["backup"]).status_code == 200
    return relay


def access_lines(relay):
    return [
        json.loads(line)
        for line in relay.log().splitlines()
        if line.startswith("{") and '"message": "request"' in line
    ]


def test_show_lists_the_fallbacks(relay):
    shown = requests.post(relay.url + "/api/show", json={"model": "main"}).json()
    assert shown["fallbacks"] == ["backup:latest"]
    assert shown["fallback_on_auth_errors"] is False


def test_a_failing_remote_is_served_by_its_fallback_under_the_asked_name(relay, upstream, backup):
    upstream.reply(failure(503), failure(503))
    backup.reply(Reply(json=completion("from the other region")))
    client = openai.OpenAI(
        base_url=relay.url + "/v1", api_key="x", max_retries=0, _strict_response_validation=True
    )
    answer = client.chat.completions.create(model="main", **CHAT)
    assert answer.choices[0].message.content == "from the other region"
    assert answer.model == "main"
    assert len(upstream.requests) == 2 and len(backup.requests) == 1
    assert access_lines(relay)[-1]["model"] == "backup:latest"


@pytest.mark.parametrize(
    "surface", ["/v1/chat/completions", "/api/chat", "/v1/responses", "/v1/messages"]
)
def test_every_surface_falls_back_streaming_too(relay, upstream, backup, surface):
    upstream.reply(failure(502), failure(502))
    backup.reply(Reply(sse=text_stream("streamed", " fallback")))
    body = {"model": "main", "stream": True, "max_tokens": 50, **CHAT}
    if surface == "/v1/responses":
        body = {"model": "main", "stream": True, "input": "hi"}
    response = requests.post(relay.url + surface, json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert "streamed" in response.text and "fallback" in response.text
    assert len(backup.requests) == 1


def test_the_requests_own_fault_is_not_passed_to_a_fallback(relay, upstream, backup):
    upstream.reply(failure(400))
    response = requests.post(relay.url + "/v1/chat/completions", json={"model": "main", **CHAT})
    assert response.status_code == 400
    assert backup.requests == []


def test_auth_errors_fall_back_only_when_the_model_says_so(relay, upstream, backup):
    upstream.reply(failure(401))
    response = requests.post(relay.url + "/v1/chat/completions", json={"model": "main", **CHAT})
    assert response.status_code == 401 and backup.requests == []
    assert (
        create(
            relay, "main", upstream.url, fallbacks=["backup"], fallback_on_auth_errors=True
        ).status_code
        == 200
    )
    upstream.reply(failure(401))
    response = requests.post(relay.url + "/v1/chat/completions", json={"model": "main", **CHAT})
    assert response.status_code == 200 and len(backup.requests) == 1


def test_when_every_model_fails_the_client_gets_the_error(relay, upstream, backup):
    upstream.reply(failure(503), failure(503))
    backup.reply(failure(500), failure(500))
    response = requests.post(
        relay.url + "/api/chat", json={"model": "main", "stream": False, **CHAT}
    )
    assert response.status_code == 500
    assert response.json() == {"error": "API error (500): primary says 500"}


def test_a_remote_that_keeps_failing_cools_down(relay, upstream, backup):
    for _ in range(3):
        upstream.reply(failure(503), failure(503))
        assert (
            requests.post(
                relay.url + "/v1/chat/completions", json={"model": "main", **CHAT}
            ).status_code
            == 200
        )
    tried = len(upstream.requests)
    assert tried == 6
    # Cooling down: the next requests go straight to the fallback.
    for _ in range(3):
        assert (
            requests.post(
                relay.url + "/v1/chat/completions", json={"model": "main", **CHAT}
            ).status_code
            == 200
        )
    assert len(upstream.requests) == tried and len(backup.requests) == 6
    metrics = requests.get(relay.url + "/metrics").text
    assert "relay_remotes_cooling_down 1.0" in metrics
    assert requests.get(relay.url + "/readyz").status_code == 200
    # A model whose only remote cools down answers 503 at once, with Retry-After.
    assert create(relay, "alone", upstream.url).status_code == 200
    for _ in range(3):
        upstream.reply(failure(503), failure(503))
        requests.post(relay.url + "/v1/chat/completions", json={"model": "alone", **CHAT})
    tried = len(upstream.requests)
    response = requests.post(relay.url + "/v1/chat/completions", json={"model": "alone", **CHAT})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert "cool" in response.json()["error"]["message"]
    assert len(upstream.requests) == tried


def test_fallback_chains_cannot_loop(relay, upstream):
    response = create(relay, "backup", upstream.url, fallbacks=["main"])
    assert response.status_code == 400
    assert "loop" in response.json()["error"] and "main:latest" in response.json()["error"]
    response = create(relay, "self", upstream.url, fallbacks=["self"])
    assert response.status_code == 400 and "loop" in response.json()["error"]
    response = create(relay, "x", upstream.url, fallbacks=["no-such-model"])
    assert response.status_code == 400 and "no-such-model" in response.json()["error"]


def test_the_cli_creates_fallbacks(relay, upstream, tmp_path):
    # The relay's own settings: the CLI works on the same database.
    cli_process(relay.settings)(
        "models",
        "create",
        "azure-east",
        "--from",
        "gpt-4o",
        "--remote-host",
        upstream.url + "/v1",
        "--remote-type",
        "openai",
        "--fallback",
        "backup",
    )
    shown = requests.post(relay.url + "/api/show", json={"model": "azure-east"}).json()
    assert shown["fallbacks"] == ["backup:latest"]
