"""Issue 22: a non-streamed call the client gives up on ends the remote's work.

A client that timed out on a whole answer used to leave the remote
generating to the end (235 s of llama-server for a 3 s client timeout), and
the relay logged and charged it as a success. Now, while the relay waits for
a whole answer, it watches the client's connection: when the client leaves,
the remote's connection is closed at once, the request is logged as the
client leaving (499), and what the remote did is counted as the relay's
estimate, as for a cut stream. Over real sockets, to the relay under
gunicorn, with a fake remote that holds its answer until its client leaves.
(tests/real_server/test_breakages.py does the same against llama-server.)
"""

import threading
import time
import uuid

import pytest
import requests

from tests.support.access import ADMIN, ADMIN_TOKEN, bearer, create_key, log_lines, unique, until
from tests.support.fake_upstream import Reply, completion

PROMPT = "word " * 800  # 4,000 characters: over 1,000 tokens, as the estimate counts them
MESSAGES = [{"role": "user", "content": PROMPT}]
SURFACES = {
    "/v1/chat/completions": {"messages": MESSAGES},
    "/v1/responses": {"input": PROMPT},
    "/v1/messages": {"max_tokens": 100, "messages": MESSAGES},
    "/api/chat": {"messages": MESSAGES},
}
# The client's patience: far below the fake remote's (it holds until its client leaves).
CLIENT_TIMEOUT = 3


@pytest.fixture
def relay(relay_with):
    return relay_with(workers=2, RELAY_ADMIN_TOKEN=ADMIN_TOKEN)


def model_on(relay, upstream, remote_type="openai"):
    name = unique("patient")
    response = requests.post(
        relay.url + "/api/create",
        headers=ADMIN,
        timeout=10,
        json={
            "name": name,
            "from": "remote-model",
            "remote_type": remote_type,
            "remote_host": upstream.url + ("/v1" if remote_type == "openai" else ""),
            "price": {"input": 1, "output": 1},
            "stream": False,
        },
    )
    assert response.status_code == 200, response.text
    return name


def give_up(relay, key, path, model):
    """A whole-answer call the client abandons after CLIENT_TIMEOUT seconds: its request id."""
    request_id = uuid.uuid4().hex
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            relay.url + path,
            headers={**bearer(key), "X-Request-ID": request_id},
            json={"model": model, "stream": False, **SURFACES[path]},
            timeout=(10, CLIENT_TIMEOUT),
        )
    return request_id


def line_of(relay, request_id):
    found = []

    def logged():
        found[:] = [line for line in log_lines(relay) if line.get("request_id") == request_id]
        return bool(found) and "status" in found[-1]

    until(logged, "the abandoned request's log line", deadline=60)
    return found[-1]


def usage_rows(relay, key_name):
    deadline = time.monotonic() + 60
    while True:
        rows = requests.get(
            relay.url + "/api/usage", params={"key": key_name}, headers=ADMIN, timeout=10
        ).json()["usage"]
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.mark.parametrize("path", SURFACES)
def test_a_client_that_gives_up_closes_the_remote_and_is_logged_as_gone(relay, upstream, path):
    model = model_on(relay, upstream)
    key_name, key = create_key(relay, unique("impatient"))
    upstream.reply(Reply(hold=True))
    request_id = give_up(relay, key, path, model)

    # The remote saw its connection closed: a real one stops generating.
    assert upstream.client_went_away.wait(30), "the relay kept waiting on the remote"
    line = line_of(relay, request_id)
    assert line["status"] == 499
    assert line["upstream_status"] is None
    assert line["tokens_estimated"] is True
    assert line["tokens_in"] >= 1000 and line["tokens_out"] == 0
    # The provider bills what it did: the prompt counts (and costs), as for a cut stream.
    (row,) = usage_rows(relay, key_name)
    assert row["requests"] == 1 and row["input_tokens"] >= 1000
    assert float(row["cost"]) > 0


def test_an_ollama_remote_is_closed_too(relay, upstream):
    model = model_on(relay, upstream, remote_type="ollama")
    _, key = create_key(relay, unique("impatient"))
    upstream.reply(Reply(hold=True))
    request_id = give_up(relay, key, "/api/chat", model)
    assert upstream.client_went_away.wait(30), "the relay kept waiting on the remote"
    assert line_of(relay, request_id)["status"] == 499


def test_a_client_that_waits_gets_the_whole_answer(relay, upstream):
    """The watch costs a patient client nothing: the held answer, released
    once the remote has the request, is its."""
    model = model_on(relay, upstream)
    _, key = create_key(relay, unique("patient"))
    upstream.reply(Reply(hold=True, json=completion("Worth the wait")))

    def release_once_asked():
        until(lambda: upstream.requests, "the remote got the request", deadline=60)
        upstream.release.set()

    threading.Thread(target=release_once_asked, daemon=True).start()
    response = requests.post(
        relay.url + "/v1/chat/completions",
        headers=bearer(key),
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Worth the wait"
    assert not upstream.client_went_away.is_set()
