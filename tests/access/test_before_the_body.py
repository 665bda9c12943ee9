"""Issue 18, holes 4, 8 and 9: rate limits and keys decided before the body,
the body limit, Ollama embeddings counted, key names checked whole. Over
real sockets, to the relay under gunicorn."""

import json
import os
import socket
import subprocess
import time

import pytest
import requests

from tests.support.access import ADMIN, ADMIN_TOKEN, bearer, create_key
from tests.support.fake_upstream import Reply
from tests.support.paths import CLI

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def keyed(relay_with, **settings):
    return relay_with(workers=1, RELAY_ADMIN_TOKEN=ADMIN_TOKEN, **settings)


@pytest.fixture
def shared(module_relays):
    """One keyed relay for the module's tests whose keys and models have names
    of their own (the test of key names lists every key: it has its own)."""
    return module_relays.get(workers=1, RELAY_ADMIN_TOKEN=ADMIN_TOKEN)


def model_on(relay, upstream, name, remote_type="openai"):
    path = "/v1" if remote_type == "openai" else ""
    response = requests.post(
        relay.url + "/api/create",
        headers=ADMIN,
        timeout=10,
        json={
            "name": name,
            "from": "remote-model",
            "remote_type": remote_type,
            "remote_host": upstream.url + path,
            "stream": False,
        },
    )
    assert response.status_code == 200, response.text
    return name


def answer_before_the_body(relay, key, path="/v1/chat/completions", length=8_000_000):
    """Send the head of a POST announcing `length` bytes and only a start of
    them; return (status, body) of what the relay answers without the rest.
    A relay that waits for the body answers nothing: the read times out."""
    with socket.create_connection(("127.0.0.1", relay.port), timeout=20) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"model": "m", "messages": [')
        data = b""
        try:
            while not _whole(data):
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        except TimeoutError:
            return None, "no answer: the relay waited for the body"
    return int(data.split(b" ", 2)[1]), data.decode("utf-8", "replace")


def _whole(data):
    """Whether `data` holds an answer's head and all the body its Content-Length says."""
    head, _, body = data.partition(b"\r\n\r\n")
    if not _:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


# --- hole 4 ------------------------------------------------------------------


def test_a_key_over_its_rpm_is_refused_before_its_body(shared, upstream):
    relay = shared
    model = model_on(relay, upstream, "m")
    _, key = create_key(relay, "one-a-minute", rpm=1)
    spent = requests.post(
        relay.url + "/v1/chat/completions",
        headers=bearer(key),
        timeout=10,
        json={"model": model, **CHAT},
    )
    assert spent.status_code == 200, spent.text
    for path in ("/v1/chat/completions", "/api/chat", "/v1/messages", "/v1/responses"):
        status, text = answer_before_the_body(relay, key, path)
        assert status == 429, (path, text)
        assert "x-ratelimit-remaining-requests: 0" in text and "rpm" in text
    # A request that calls no model is not limited.
    assert requests.get(relay.url + "/api/tags", headers=bearer(key), timeout=10).ok


def test_unknown_and_revoked_keys_are_refused_before_their_body(shared):
    relay = shared
    name, key = create_key(relay, "soon-revoked")
    revoked = requests.delete(relay.url + "/api/keys", headers=ADMIN, json={"name": name})
    assert revoked.status_code == 200
    time.sleep(1.5)  # every worker's key cache sees the revocation (bound: 1s)
    for secret, said in ((key, "revoked"), ("orl-" + "x" * 43, "invalid API key")):
        status, text = answer_before_the_body(relay, secret)
        assert status == 401 and said in text, text


def test_the_default_body_limit_is_16_mib(shared):
    relay = shared
    _, key = create_key(relay, "big-bodies")
    status, text = answer_before_the_body(relay, key, length=16 * 1024 * 1024 + 1)
    assert status == 413, text
    limit = 16 * 1024 * 1024
    body = b'{"model": "nope", "messages": [], "pad": "' + b"x" * (limit - 200) + b'"}'
    answer = requests.post(
        relay.url + "/v1/chat/completions",
        headers={**bearer(key), "Content-Type": "application/json"},
        data=body,
        timeout=60,
    )
    assert answer.status_code != 413, answer.text[:300]


# --- hole 8 ------------------------------------------------------------------


def usage_of(relay, key_name):
    for _ in range(50):
        rows = requests.get(
            relay.url + "/api/usage", params={"key": key_name}, headers=ADMIN, timeout=10
        ).json()["usage"]
        if rows and rows[0]["input_tokens"]:
            return rows
        time.sleep(0.2)
    return rows


def test_ollama_embeddings_count_against_tpm(shared, upstream):
    relay = shared
    model = model_on(relay, upstream, "ollama-embed", remote_type="ollama")
    name, key = create_key(relay, "embedder", tpm=40)
    upstream.reply(
        Reply(json={"model": "remote-model", "embeddings": [[0.5]], "prompt_eval_count": 50})
    )
    embedded = requests.post(
        relay.url + "/api/embed",
        headers=bearer(key),
        timeout=10,
        json={"model": model, "input": "a long text"},
    )
    assert embedded.status_code == 200, embedded.text
    rows = usage_of(relay, name)
    assert [(r["requests"], r["input_tokens"]) for r in rows] == [(1, 50)]
    # 50 tokens are over the key's 40 a minute: the next embedding is refused.
    refused = requests.post(
        relay.url + "/api/embed",
        headers=bearer(key),
        timeout=10,
        json={"model": model, "input": "more"},
    )
    assert refused.status_code == 429 and "tpm" in refused.text


def test_ollama_legacy_embeddings_count_the_estimate(shared, upstream):
    relay = shared
    model = model_on(relay, upstream, "ollama-legacy", remote_type="ollama")
    name, key = create_key(relay, "legacy")
    answer = requests.post(
        relay.url + "/api/embeddings",
        headers=bearer(key),
        timeout=10,
        json={"model": model, "prompt": "x" * 400},
    )
    assert answer.status_code == 200 and answer.json() == {"embedding": [0.5, 0.25]}
    # Ollama's /api/embeddings reports no count: 400 characters, 100 tokens.
    assert [r["input_tokens"] for r in usage_of(relay, name)] == [100]


# --- hole 9 ------------------------------------------------------------------


def test_key_names_must_match_whole(relay_with):
    relay = keyed(relay_with)
    create_key(relay, "zed")
    for name in ("zed\n", "zed\r\n", "zed\n\n", "\nzed"):
        response = requests.post(relay.url + "/api/keys", headers=ADMIN, json={"name": name})
        assert response.status_code == 400, (name, response.text)
        assert "name" in response.json()["error"]
    env = dict(os.environ, **{k: str(v) for k, v in relay.settings.items()})
    made = subprocess.run(
        [CLI, "keys", "create", "zed\n"], env=env, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 2 and made.stdout == "" and "name" in made.stderr
    listed = subprocess.run(
        [CLI, "keys", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert [k["name"] for k in json.loads(listed.stdout)] == ["zed"]
    # The OpenAPI document shows the pattern.
    document = requests.get(relay.url + "/openapi.json", timeout=10).json()
    name = document["components"]["schemas"]["CreateKeyRequest"]["properties"]["name"]
    assert name["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
