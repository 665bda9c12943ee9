"""Retries before the first byte: what providers' 429s, 5xx and refused
connections look like to the client when the relay absorbs them, and when
it gives up."""

import json
import time

import openai
import pytest
import requests

from tests.support.fake_upstream import Reply, completion, text_stream
from tests.support.models import create_model
from tests.support.servers import free_port

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def failure(status, **headers):
    return Reply(
        status=status, json={"error": {"message": f"upstream says {status}"}}, headers=headers
    )


@pytest.fixture
def relay(module_relays, upstream):
    """One relay for the module: every test fails the same remote, so no
    cool-down may start in between (tests/remotes/test_fallbacks.py tests it)."""
    relay = module_relays.get(
        workers=1, RELAY_RETRIES="2", RELAY_RETRY_MAX_WAIT="5", RELAY_COOLDOWN_FAILURES="1000000"
    )
    create_model(relay, "m", upstream.url + "/v1")
    return relay


def chat(relay, stream=False, surface="/v1/chat/completions"):
    body = {"model": "m", "stream": stream, **CHAT}
    return requests.post(relay.url + surface, json=body, timeout=30)


def access_lines(relay):
    return [
        json.loads(line)
        for line in relay.log().splitlines()
        if line.startswith("{") and '"message": "request"' in line
    ]


def metric(relay, name, **labels):
    text = requests.get(relay.url + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_passing_failure_is_retried_and_the_client_sees_the_answer(relay, upstream, status):
    upstream.reply(failure(status), failure(status))
    response = chat(relay)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    assert len(upstream.requests) == 3
    assert access_lines(relay)[-1]["attempts"] == 3


def test_streams_and_the_ollama_surface_are_retried_too(relay, upstream):
    upstream.reply(failure(503), Reply(sse=text_stream("Hi", " there")))
    response = chat(relay, stream=True)
    assert response.status_code == 200 and "Hi" in response.text
    upstream.reply(failure(502), Reply(json=completion("Hallo")))
    response = chat(relay, surface="/api/chat")
    assert response.status_code == 200 and response.json()["message"]["content"] == "Hallo"
    assert len(upstream.requests) == 4


# 500s that came after a whole generation, as inference servers word them.
AFTER_A_GENERATION = [
    # llama.cpp, when the model's tool-call output does not parse (issue 22).
    "The model produced output that does not match the expected Gemma 3 format",
    # OpenAI.
    "The model produced invalid content. Consider modifying your prompt.",
    "Failed to parse tool call arguments as JSON: [json.exception.parse_error.101]",
    "Error parsing the model's output",
]


@pytest.mark.parametrize("message", AFTER_A_GENERATION)
def test_a_500_about_the_models_output_is_not_retried(relay, upstream, message):
    upstream.reply(
        Reply(status=500, json={"error": {"code": 500, "message": message, "type": "server_error"}})
    )
    response = chat(relay)
    assert response.status_code == 500
    assert response.json()["error"]["message"] == f"API error (500): {message}"
    assert len(upstream.requests) == 1
    assert access_lines(relay)[-1]["attempts"] == 1


def test_a_500_before_any_generation_is_still_retried(relay, upstream):
    """An internal error that says nothing of the model's output may be a
    passing one (a restarting worker, a full queue): retried, as before."""
    upstream.reply(
        Reply(status=500, text="Internal Server Error"),
        Reply(status=500, json={"error": {"message": "CUDA error: out of memory"}}),
    )
    response = chat(relay)
    assert response.status_code == 200, response.text
    assert len(upstream.requests) == 3


def test_other_4xx_are_never_retried(relay, upstream):
    upstream.reply(failure(400))
    response = chat(relay)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "API error (400): upstream says 400"
    assert len(upstream.requests) == 1


def test_after_its_retries_the_failure_reaches_the_client_and_is_counted(relay, upstream):
    host = upstream.url
    # The module's relay: earlier tests' retries are counted already.
    counted = {
        outcome: metric(relay, "relay_upstream_retries_total", remote_host=host, outcome=outcome)
        for outcome in ("retried", "gave_up")
    }
    upstream.reply(*[failure(503)] * 3)
    response = chat(relay)
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "API error (503): upstream says 503"
    assert len(upstream.requests) == 3
    retried = metric(relay, "relay_upstream_retries_total", remote_host=host, outcome="retried")
    gave_up = metric(relay, "relay_upstream_retries_total", remote_host=host, outcome="gave_up")
    assert (retried - counted["retried"], gave_up - counted["gave_up"]) == (2, 1)


def test_a_429_asking_for_a_short_wait_is_honoured(relay, upstream):
    upstream.reply(failure(429, **{"Retry-After": "1"}))
    response = chat(relay)
    assert response.status_code == 200
    assert len(upstream.requests) == 2


def test_a_429_asking_for_longer_than_the_limit_goes_to_the_client_at_once(relay, upstream):
    upstream.reply(failure(429, **{"Retry-After": "120"}))
    response = chat(relay)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "120"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert len(upstream.requests) == 1
    upstream.reply(failure(429, **{"Retry-After": "120"}))
    api = chat(relay, surface="/api/chat")
    assert api.status_code == 429 and api.headers["Retry-After"] == "120"
    assert api.json() == {"error": "API error (429): upstream says 429"}


def test_an_http_date_retry_after_is_understood(relay, upstream):
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    upstream.reply(failure(429, **{"Retry-After": later}))
    response = chat(relay)
    assert response.status_code == 429 and len(upstream.requests) == 1


def test_the_openai_sdk_gets_a_rate_limit_error_with_retry_after(relay, upstream):
    upstream.reply(failure(429, **{"Retry-After": "120"}))
    client = openai.OpenAI(base_url=relay.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", **CHAT)
    assert caught.value.response.headers["retry-after"] == "120"


def test_a_refused_connection_is_retried_then_reported(relay):
    host = f"http://127.0.0.1:{free_port()}"
    assert (
        requests.post(
            relay.url + "/api/create",
            json={
                "name": "gone",
                "from": "x",
                "remote_type": "openai",
                "stream": False,
                "remote_host": host + "/v1",
            },
        ).status_code
        == 200
    )
    response = requests.post(relay.url + "/v1/chat/completions", json={"model": "gone", **CHAT})
    assert response.status_code == 502
    assert response.json()["error"]["message"] == f"{host} refused the connection"
    assert access_lines(relay)[-1]["attempts"] == 3


def test_a_client_that_leaves_stops_the_retries(relay, upstream):
    # Each failure asks for a 2 s wait; the client gives up after 1 s.
    upstream.reply(*[failure(503, **{"Retry-After": "2"})] * 3)
    earlier = len(access_lines(relay))  # the module's relay has served other tests
    with pytest.raises(requests.ReadTimeout):
        requests.post(relay.url + "/v1/chat/completions", json={"model": "m", **CHAT}, timeout=1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        line.get("path") == "/v1/chat/completions" for line in access_lines(relay)[earlier:]
    ):
        time.sleep(0.2)
    (line,) = [
        line for line in access_lines(relay)[earlier:] if line["path"] == "/v1/chat/completions"
    ]
    # The first wait ended with the client gone: no second attempt was sent.
    assert len(upstream.requests) == 1 and line["attempts"] == 1
