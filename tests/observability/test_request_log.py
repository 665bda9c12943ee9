"""The request log (issue 20): a row per request that named a model, on every
surface, stream or not, failed or cut; its filters and cursor pages over
HTTP and on the CLI; a client key's own rows only; payload capture, scrubbed
and cut, for the admin's eyes only. One relay under gunicorn per database."""

import json
import time

import pytest
import requests

from tests.support.access import (
    ADMIN,
    ADMIN_TOKEN,
    REMOTE_KEY,
    audit_lines,
    bearer,
    cli_runner,
    create_key,
    start_relay,
    unique,
)
from tests.support.fake_upstream import Reply, chunk, completion
from tests.support.postgres import postgres_schema_url

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
# What each surface is sent; /api/generate needs an Ollama remote.
BODIES = {
    "/v1/chat/completions": CHAT,
    "/api/chat": CHAT,
    "/api/generate": {"prompt": "hi"},
    "/v1/responses": {"input": "hi"},
    "/v1/messages": {"max_tokens": 50, **CHAT},
    "/v1/embeddings": {"input": "hi"},
    "/api/embed": {"input": "hi"},
}
CAPTURE_MAX = 4096


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def relay(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reqlog")
    drop = None
    url = None
    if request.param == "postgresql":
        url, drop = postgres_schema_url()
    server = start_relay(
        workdir,
        RELAY_ADMIN_TOKEN=ADMIN_TOKEN,
        RELAY_RETRIES="0",
        RELAY_COOLDOWN_FAILURES="1000000",
        RELAY_CAPTURE_MAX_BYTES=str(CAPTURE_MAX),
        **({"RELAY_DATABASE_URL": url} if url else {}),
    )
    yield server
    server.stop()
    if drop:
        drop()


def model_on(relay, upstream, ollama=False, **fields):
    name = unique("logged")
    response = requests.post(
        relay.url + "/api/create",
        headers=ADMIN,
        timeout=10,
        json={
            "name": name,
            "from": "remote-model",
            "remote_type": "ollama" if ollama else "openai",
            "remote_host": upstream.url + ("" if ollama else "/v1"),
            "remote_api_key": REMOTE_KEY,
            "stream": False,
            **fields,
        },
    )
    assert response.status_code == 200, response.text
    return name


def call(relay, key, path, model, stream=False, request_id=None, headers=None, **extra):
    body = {"model": model, "stream": stream, **BODIES[path], **extra}
    if path in ("/v1/embeddings", "/api/embed"):
        body.pop("stream")
    sent = {**bearer(key), **(headers or {})}
    if request_id:
        sent["X-Request-ID"] = request_id
    response = requests.post(relay.url + path, headers=sent, json=body, timeout=30)
    return response


def rows(relay, count, headers=ADMIN, **params):
    """The rows /api/requests gives for `params` once there are `count` of
    them (workers write theirs every second; a generous bound for a busy machine)."""
    deadline = time.monotonic() + 60
    while True:
        response = requests.get(
            relay.url + "/api/requests",
            params={"limit": 1000, **params},
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        found = response.json()["requests"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def cut_stream(relay, upstream, key, model, request_id):
    upstream.client_went_away.clear()
    upstream.reply(Reply(sse=[chunk({"role": "assistant", "content": "Hello"})], hold=True))
    body = {"model": model, "stream": True, **CHAT}
    sent = {**bearer(key), "X-Request-ID": request_id}
    response = requests.post(
        relay.url + "/v1/chat/completions", headers=sent, json=body, stream=True, timeout=30
    )
    assert response.status_code == 200
    next(response.iter_lines())
    response.close()
    assert upstream.client_went_away.wait(20), "the relay kept the cut stream open"


def test_every_request_that_names_a_model_leaves_one_row(relay, upstream):
    model = model_on(relay, upstream, price={"input": 1, "output": 2})
    native = model_on(relay, upstream, ollama=True)
    name, key = create_key(relay, unique("every"))
    traced = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
    expected = {}

    def sent(path, stream=False, target=None, **extra):
        request_id = unique("req")
        response = call(relay, key, path, target or model, stream, request_id, **extra)
        response.content  # the whole answer, streams to their end
        expected[request_id] = (path, stream, response.status_code)
        return response

    assert sent("/v1/chat/completions", headers=traced).status_code == 200
    for path in ("/v1/chat/completions", "/api/chat", "/v1/responses", "/v1/messages"):
        for stream in (False, True):
            assert sent(path, stream).status_code == 200, path
    assert sent("/api/generate", target=native).status_code == 200
    assert sent("/v1/embeddings").status_code == 200
    assert sent("/api/embed").status_code == 200
    upstream.reply(Reply(status=400, json={"error": {"message": "bad temperature"}}))
    assert sent("/v1/chat/completions").status_code == 400
    missing = unique("missing")
    assert sent("/v1/chat/completions", target=missing).status_code == 404
    cut = unique("cut")
    cut_stream(relay, upstream, key, model, cut)
    # A model whose remote fails, served by its fallback.
    failing = model_on(relay, upstream, fallbacks=[model])
    upstream.reply(Reply(status=503, json={"error": {"message": "overloaded"}}))
    assert sent("/v1/chat/completions", target=failing).status_code == 200
    # Refused before a model was named: no row.
    assert requests.get(relay.url + "/api/requests", timeout=10).status_code == 401

    found = {row["request_id"]: row for row in rows(relay, len(expected) + 1, key=name)}
    assert set(found) == set(expected) | {cut}
    surfaces = {
        "/v1/chat/completions": "openai",
        "/v1/embeddings": "openai",
        "/api/chat": "ollama",
        "/api/generate": "ollama",
        "/api/embed": "ollama",
        "/v1/responses": "responses",
        "/v1/messages": "anthropic",
    }
    for request_id, (path, stream, status) in expected.items():
        row = found[request_id]
        assert (row["route"], row["surface"], row["stream"], row["status"]) == (
            path,
            surfaces[path],
            stream,
            status,
        ), row
        assert (row["key"], row["team"]) == (name, "-")
        assert row["latency_ms"] >= 0 and row["retries"] == 0
        if status == 200:
            assert row["error_code"] is None and row["ttfb_ms"] is not None
            assert row["input_tokens"] is not None
        if status == 200 and path != "/api/generate" and not row["fallback"]:
            assert row["model"] == model + ":latest" and row["remote_model"] == "remote-model"
    first = found[next(iter(expected))]
    assert first["trace_id"] == TRACE
    assert (first["input_tokens"], first["output_tokens"]) == (11, 7)
    # 11 tokens at 1 per million, 7 at 2 per million.
    assert first["cost"] == "0.000025" and first["currency"] == "USD"
    assert found[list(expected)[1]]["trace_id"] is None
    generated = [found[r] for r, (p, _, _) in expected.items() if p == "/api/generate"]
    assert generated[0]["model"] == native + ":latest"
    failed = [found[r] for r, (_, _, s) in expected.items() if s == 400]
    assert failed[0]["error_code"] is not None
    unknown = [found[r] for r, (_, _, s) in expected.items() if s == 404]
    assert unknown[0]["model"] == missing + ":latest"
    assert unknown[0]["remote_model"] is None and unknown[0]["input_tokens"] is None
    assert found[cut]["status"] == 200 and found[cut]["error_code"] == "client_gone"
    assert found[cut]["stream"] is True
    (fell_back,) = [found[r] for r, (_, _, s) in expected.items() if found[r]["fallback"]]
    assert (fell_back["model"], fell_back["fallback"]) == (failing + ":latest", model + ":latest")
    assert fell_back["status"] == 200 and fell_back["retries"] == 0
    # No prompt or answer text in a row.
    assert "Hello" not in json.dumps(found) and '"hi"' not in json.dumps(found)


def test_filters_pages_and_a_client_keys_own_rows(relay, upstream):
    fast, slow = model_on(relay, upstream), model_on(relay, upstream)
    team = unique("team")
    assert (
        requests.post(
            relay.url + "/api/teams", headers=ADMIN, json={"name": team}, timeout=10
        ).status_code
        == 200
    )
    alice, alice_key = create_key(relay, unique("alice"), team=team)
    bob, bob_key = create_key(relay, unique("bob"))
    for _ in range(3):
        assert call(relay, alice_key, "/v1/chat/completions", fast).status_code == 200
    upstream.reply(Reply(status=503, json={"error": {"message": "overloaded"}}))
    assert call(relay, alice_key, "/v1/chat/completions", slow).status_code == 503
    upstream.reply(Reply(json=completion(), delay=1.5))
    assert call(relay, alice_key, "/v1/chat/completions", slow).status_code == 200
    for _ in range(2):
        assert call(relay, bob_key, "/v1/chat/completions", fast).status_code == 200

    mine = rows(relay, 5, key=alice)
    assert len(mine) == 5
    stamps = [(row["time"], row["id"]) for row in mine]
    assert stamps == sorted(stamps, reverse=True)
    assert len(rows(relay, 2, key=bob)) == 2
    assert {row["key"] for row in rows(relay, 5, team=team)} == {alice}
    assert [r["status"] for r in rows(relay, 1, key=alice, status="5xx")] == [503]
    assert [r["status"] for r in rows(relay, 1, key=alice, status="503")] == [503]
    assert rows(relay, 0, key=alice, status="4xx") == []
    assert len(rows(relay, 2, key=alice, model=slow)) == 2
    (slowest,) = rows(relay, 1, key=alice, slower_than="1s")
    assert slowest["latency_ms"] >= 1500 and slowest["model"] == slow + ":latest"
    assert rows(relay, 0, key=alice, since="2999-01-01") == []
    assert len(rows(relay, 5, key=alice, until="2999-01-01T00:00:00Z", since="1d")) == 5

    # Pages of two: every row once, newest first, then no cursor.
    seen, cursor = [], None
    for _ in range(4):
        params = {"key": alice, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = requests.get(relay.url + "/api/requests", params=params, headers=ADMIN, timeout=10)
        assert page.status_code == 200, page.text
        seen += page.json()["requests"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [row["id"] for row in seen] == [row["id"] for row in mine]
    assert cursor is None

    # A client key reads its own rows only, whatever it asks for.
    own = rows(relay, 5, headers=bearer(alice_key), key=bob)
    assert {row["key"] for row in own} == {alice} and len(own) == 5
    assert rows(relay, 0, headers=bearer(bob_key), team=team) == []
    detail = requests.get(
        relay.url + f"/api/requests/{own[0]['id']}", headers=bearer(alice_key), timeout=10
    )
    assert detail.status_code == 403

    # Bad filter values: 400 naming the field.
    for field, value in (
        ("status", "6xx"),
        ("slower_than", "fast"),
        ("since", "yesterday"),
        ("cursor", "not-a-cursor"),
        ("limit", "0"),
    ):
        bad = requests.get(
            relay.url + "/api/requests", params={field: value}, headers=ADMIN, timeout=10
        )
        assert bad.status_code == 400, (field, bad.text)
        assert field in bad.json()["error"]

    run = cli_runner(relay.settings, secrets=(alice_key, bob_key))
    printed = json.loads(run("requests", "--key", alice, "--status", "5xx", "--json").stdout)
    assert [row["status"] for row in printed["requests"]] == [503]
    table = run("requests", "--key", alice, "--slower-than", "1.2s", "--limit", "10").stdout
    lines = table.splitlines()
    assert lines[0].startswith("id\ttime\tkey") and len(lines) == 2 and slow in lines[1]
    wrong = run("requests", "--slower-than", "soon", expect=2)
    assert "--slower-than" in wrong.stderr


SECRET_BODY_KEY = "orl-" + "Q" * 43


def test_capture_per_key_scrubbed_cut_and_for_the_admin_only(relay, upstream):
    model = model_on(relay, upstream)
    name, key = create_key(relay, unique("captured"))
    run = cli_runner(relay.settings, secrets=(key, SECRET_BODY_KEY))

    def patch(capture):
        answer = requests.patch(
            relay.url + "/api/keys",
            headers=ADMIN,
            json={"name": name, "capture": capture},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["capture"] == capture

    # Off by default: nothing captured.
    assert call(relay, key, "/v1/chat/completions", model).status_code == 200
    (plain,) = rows(relay, 1, key=name)
    assert plain["captured"] is False

    patch("all")
    upstream.reply(Reply(json=completion(f"the remote key is {REMOTE_KEY}, keep it")))
    text = f"my key is {SECRET_BODY_KEY}; Authorization: Bearer abc.def-ghi " + "x" * 10000
    response = call(
        relay,
        key,
        "/v1/chat/completions",
        model,
        messages=[{"role": "user", "content": text}],
        api_key="hunter2-in-a-field",
    )
    assert response.status_code == 200
    kept = next(row for row in rows(relay, 2, key=name) if row["captured"])
    shown = requests.get(relay.url + f"/api/requests/{kept['id']}", headers=ADMIN, timeout=10)
    assert shown.status_code == 200, shown.text
    capture = shown.json()["capture"]
    whole = json.dumps(capture)
    for secret in (SECRET_BODY_KEY, REMOTE_KEY, "abc.def-ghi", "hunter2-in-a-field", key):
        assert secret not in whole
    assert "my key is orl-***" in capture["request"]
    assert "the remote key is ***" in capture["answer"]
    assert len(capture["request"].encode()) <= CAPTURE_MAX < capture["request_bytes"]
    # The CLI shows it too, by request id, and the reading is audited.
    request_id = shown.json()["request_id"]
    printed = json.loads(run("requests", "show", request_id).stdout)
    assert printed["capture"] == capture
    assert run("requests", "show", "no-such-request", expect=1).stderr

    patch("errors")
    assert call(relay, key, "/v1/chat/completions", model).status_code == 200
    upstream.reply(Reply(status=400, json={"error": {"message": "bad request"}}))
    assert call(relay, key, "/v1/chat/completions", model).status_code == 400
    latest = rows(relay, 4, key=name)[:2]
    assert [(row["status"], row["captured"]) for row in latest] == [(400, True), (200, False)]

    # From the CLI, audited there (the CLI's process writes its own audit line).
    updated = run("keys", "update", name, "--capture", "off")
    (line,) = [json.loads(x) for x in updated.stderr.splitlines() if '"key.capture"' in x]
    assert (line["actor"], line["capture"], line["was"]) == ("admin", "off", "errors")
    upstream.reply(Reply(status=400, json={"error": {"message": "bad request"}}))
    assert call(relay, key, "/v1/chat/completions", model).status_code == 400
    assert rows(relay, 5, key=name)[0]["captured"] is False

    changes = [
        (line["capture"], line["was"])
        for line in audit_lines(relay, name)
        if line["action"] == "key.capture"
    ]
    assert changes == [("all", None), ("errors", "all")]
    assert [line for line in audit_lines(relay) if line["action"] == "request.show"]
