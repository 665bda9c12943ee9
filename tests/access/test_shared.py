"""Client keys, rate limits and usage shared by workers and hosts.

Most tests run against a cluster: two relays under gunicorn, two gevent
workers each, on one PostgreSQL schema (as two hosts sharing a database).
Each relay writes gunicorn's access log with the worker's pid and the
request's X-Request-ID, so a test can show that its requests really reached
every worker. Bounds come from the README: a key created or revoked anywhere
takes effect everywhere within 2 seconds; workers write usage (and the tokens
that count against `tpm`) every second.
"""

import concurrent.futures
import datetime
import json
import os
import re
import time
import uuid

import ollama
import openai
import pytest
import requests

from tests.support.cli import cli_process
from tests.support.config import relay_settings
from tests.support.fake_upstream import Reply, chunk, completion, text_stream
from tests.support.models import create_model
from tests.support.postgres import postgres_schema_url
from tests.support.servers import GunicornServer

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex  # >= 16 characters
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
# Each key gets 401 on every worker of every relay within this bound.
KEY_SYNC_SECONDS = 2.0
# Usage rows (and last_used_at) are written every second: poll this long.
FLUSH_DEADLINE = 10.0


# --- servers -------------------------------------------------------------------


def start_relay(settings, workdir, workers=2):
    """A GunicornServer whose access log names the worker (pid) of each request id."""
    access_log = os.path.join(workdir, f"access-{uuid.uuid4().hex[:8]}.log")
    server = GunicornServer(
        settings,
        workdir,
        workers=workers,
        extra_env={
            "RELAY_ACCESS_LOG": access_log,
            "GUNICORN_CMD_ARGS": "--access-logformat "
            "'pid=%(p)s status=%(s)s rid=%({x-request-id}i)s'",
        },
    )
    server.access_log = access_log
    return server


def base_settings(database_url, workdir, **extra):
    return relay_settings(
        workdir,
        database_url,
        RELAY_READ_TIMEOUT="10",
        # An upstream 500 reaches the client as it is (the relay would
        # otherwise retry it): these tests count errors, not retries.
        RELAY_RETRIES="0",
        # 2 relays x 2 workers beside 3 other test processes: PostgreSQL
        # allows 100 connections in all.
        RELAY_DATABASE_MAX_CONNECTIONS="5",
        **extra,
    )


class Cluster:
    def __init__(self, relays, settings):
        self.relays = relays
        self.settings = settings


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, upstream_server):
    """Two relays (two gevent workers each) on one PostgreSQL schema, auth on."""
    url, drop = postgres_schema_url()
    workdir = tmp_path_factory.mktemp("cluster")
    settings = base_settings(url, workdir, RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    relays = []
    try:
        relays.append(start_relay(settings, workdir))
        relays.append(start_relay(settings, workdir))
        yield Cluster(relays, settings)
    finally:
        for relay in relays:
            relay.stop()
        drop()


@pytest.fixture
def sqlite_relay(tmp_path):
    """start(**settings): one relay (two gevent workers) on its own SQLite file."""
    started = []

    def start(**extra):
        settings = base_settings(f"sqlite:///{tmp_path}/relay.sqlite3", tmp_path, **extra)
        started.append(start_relay(settings, tmp_path))
        started[-1].settings = settings
        return started[-1]

    yield start
    for server in started:
        server.stop()


# --- helpers -------------------------------------------------------------------


def cli(settings, *args, expect=0):
    return cli_process(settings)(*args, expect=expect)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def model_for(relay, upstream, name, headers=None):
    """A model on `relay` calling the fake `upstream` with a remote key of its own."""
    create_model(
        relay, name, upstream.url + "/v1", headers=headers, remote_api_key="sk-upstream-123456"
    )
    return name


def create_key(relay, name, **fields):
    response = requests.post(
        relay.url + "/api/keys", headers=ADMIN, timeout=10, json={"name": name, **fields}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == name and body["key"].startswith("orl-")
    return body["key"]


def request_id(tag):
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def worker_of(relay, rids, deadline=10.0):
    """{request id: (pid, status)} from the relay's access log (gunicorn writes
    the line just after the answer, so wait for it)."""
    pattern = re.compile(r"pid=<?(\d+)>? status=(\d+) rid=(\S+)")
    end = time.monotonic() + deadline
    while True:
        found = {}
        with open(relay.access_log) as handle:
            for line in handle:
                match = pattern.search(line)
                if match and match.group(3) in rids:
                    found[match.group(3)] = (match.group(1), int(match.group(2)))
        if len(found) == len(rids) or time.monotonic() > end:
            assert len(found) == len(rids), f"{len(rids) - len(found)} requests not logged"
            return found
        time.sleep(0.05)


def fresh_get(relay, path, key, rid):
    """GET on a new connection (each requests.get opens its own)."""
    return requests.get(relay.url + path, timeout=10, headers={**bearer(key), "X-Request-ID": rid})


def every_worker_answers(relay, key, status, tag, send=None, check=None, at_least=20, at_most=300):
    """Send requests on fresh connections until both workers of `relay` have
    answered (at least `at_least` requests); every answer must have `status`
    (and pass `check`). By default the request is GET /v1/models, which uses
    no model (so no rate-limit token). Returns {pid: count}."""
    send = send or (lambda rid: fresh_get(relay, "/v1/models", key, rid))
    rids = set()
    pids = {}
    sent = 0
    while sent < at_most:
        rid = request_id(tag)
        response = send(rid)
        sent += 1
        assert response.status_code == status, (sent, response.status_code, response.text)
        if check is not None:
            check(response)
        rids.add(rid)
        if sent >= at_least and sent % 10 == 0:
            pids = {}
            for pid, logged in worker_of(relay, rids).values():
                assert logged == status
                pids[pid] = pids.get(pid, 0) + 1
            if len(pids) >= 2:
                return pids
    raise AssertionError(
        f"{sent} requests on fresh connections reached only the workers {pids} of {relay.url}"
    )


def known_everywhere(relays, key, created, verify=False):
    """Wait until the bound has passed since the key was created at `created`
    (time.monotonic()): then every worker of every relay accepts it (which
    `verify` checks on both workers of each relay)."""
    time.sleep(max(0.0, created + KEY_SYNC_SECONDS - time.monotonic()))
    for relay in relays if verify else ():
        every_worker_answers(relay, key, 200, "known", at_least=10)


def wait_until_accepted(relay, key, start, bound=KEY_SYNC_SECONDS + 0.5):
    """Poll until `relay` accepts `key` (on some worker), at most `bound` after `start`."""
    while True:
        response = requests.get(relay.url + "/v1/models", headers=bearer(key), timeout=10)
        if response.status_code == 200:
            return
        assert response.status_code == 401, response.text
        assert time.monotonic() - start < bound, f"{relay.url} still refuses a new key"
        time.sleep(0.05)


def poll(check, deadline=FLUSH_DEADLINE, interval=0.2):
    """Call `check` until it returns a truthy value; return its last value."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval)


def usage(relay, headers=ADMIN, **query):
    response = requests.get(relay.url + "/api/usage", params=query, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["usage"]


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def sdk(relay, key, **options):
    return openai.OpenAI(base_url=relay.url + "/v1/", api_key=key, max_retries=0, **options)


def ollama_client(relay, key):
    return ollama.Client(host=relay.url, headers=bearer(key))


def chat(relay, key, model, tag="chat"):
    return requests.post(
        relay.url + "/v1/chat/completions",
        timeout=30,
        headers={**bearer(key), "X-Request-ID": request_id(tag)},
        json={"model": model, **CHAT},
    )


def check_retry_headers(response, kind, limit):
    """The 429 headers OpenAI's clients read."""
    headers = response.headers
    assert re.fullmatch(r"[1-9]\d*", headers["Retry-After"]), headers["Retry-After"]
    assert headers[f"x-ratelimit-limit-{kind}"] == str(limit)
    remaining = headers[f"x-ratelimit-remaining-{kind}"]
    assert re.fullmatch(r"\d+", remaining) and int(remaining) <= limit
    assert re.fullmatch(r"\d+ms|\d+s|\d+m\d+s", headers[f"x-ratelimit-reset-{kind}"]), headers[
        f"x-ratelimit-reset-{kind}"
    ]


# --- revocation ----------------------------------------------------------------


def test_key_created_and_revoked_on_one_relay_takes_effect_on_every_worker_of_both(cluster):
    first, second = cluster.relays
    key = create_key(first, "revoke-me")
    created = time.monotonic()
    wait_until_accepted(second, key, created)
    # Every worker of both relays has the key cached as valid.
    known_everywhere(cluster.relays, key, created, verify=True)

    response = requests.delete(
        first.url + "/api/keys", headers=ADMIN, timeout=10, json={"name": "revoke-me"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "revoke-me", "revoked": True}
    revoked = time.monotonic()

    for relay in (first, second):
        while True:
            response = requests.get(relay.url + "/v1/models", headers=bearer(key), timeout=10)
            if response.status_code == 401:
                break
            assert response.status_code == 200
            assert time.monotonic() - revoked < KEY_SYNC_SECONDS + 0.5, (
                f"{relay.url} still accepts the revoked key"
            )
            time.sleep(0.05)
    # Past the bound, every worker of each relay refuses it, on both surfaces.
    time.sleep(max(0.0, revoked + KEY_SYNC_SECONDS - time.monotonic()))
    for relay in (first, second):
        every_worker_answers(relay, key, 401, "after-revoke")
        refused = requests.get(relay.url + "/v1/models", headers=bearer(key), timeout=10)
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        error = refused.json()["error"]
        assert error["code"] == "invalid_api_key" and "revoked" in error["message"]
        assert key not in refused.text
        native = requests.post(
            relay.url + "/api/chat", headers=bearer(key), timeout=10, json={"model": "any", **CHAT}
        )
        assert native.status_code == 401
        assert isinstance(native.json()["error"], str) and "revoked" in native.json()["error"]

    listed = requests.get(first.url + "/api/keys", headers=ADMIN, timeout=10).json()["keys"]
    assert [k["revoked"] for k in listed if k["name"] == "revoke-me"] == [True]


def test_cli_revocation_reaches_every_worker_on_sqlite(sqlite_relay):
    relay = sqlite_relay(RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    created = cli(relay.settings, "keys", "create", "cli-key")
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("orl-")
    known_everywhere([relay], key, time.monotonic(), verify=True)

    assert cli(relay.settings, "keys", "revoke", "cli-key").stdout == "revoked cli-key\n"
    time.sleep(KEY_SYNC_SECONDS)
    every_worker_answers(relay, key, 401, "sqlite-after")


# --- rate limits ---------------------------------------------------------------


def test_rpm_limit_holds_across_two_relays_of_two_workers(cluster, upstream):
    first, second = cluster.relays
    model = model_for(first, upstream, "rpm-model", ADMIN)
    created = cli(cluster.settings, "keys", "create", "burst", "--rpm", "20")
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("orl-")
    # For the clients' view below: one request a minute, so no refill comes in between.
    single = create_key(second, "single", rpm=1)
    # Both keys are known to every worker once the bound has passed.
    known_everywhere(cluster.relays, key, time.monotonic())
    upstream.reset()

    def call(index):
        relay = cluster.relays[index % 2]
        rid = request_id(f"burst{index % 2}")
        response = requests.post(
            relay.url + "/v1/chat/completions",
            timeout=30,
            headers={**bearer(key), "X-Request-ID": rid},
            json={"model": model, **CHAT},
        )
        return index % 2, rid, response

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(call, range(40)))

    statuses = [response.status_code for _, _, response in results]
    passed, limited = statuses.count(200), statuses.count(429)
    assert passed + limited == 40, statuses
    assert 18 <= passed <= 22, f"{passed} of 40 requests passed an rpm of 20"
    # Refused requests never reached the remote.
    assert len([r for r in upstream.requests if r.path == "/v1/chat/completions"]) == passed
    for _, _, response in results:
        if response.status_code != 429:
            continue
        check_retry_headers(response, "requests", 20)
        assert "x-ratelimit-limit-tokens" not in response.headers  # no tpm on this key
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        assert key not in response.text

    # The burst reached all four workers (a shared bucket, not one per worker).
    for index, relay in enumerate(cluster.relays):
        rids = {rid for host, rid, _ in results if host == index}
        pids = {pid for pid, _ in worker_of(relay, rids).values()}
        assert len(pids) == 2, f"the burst reached only workers {pids} of {relay.url}"

    # Over the limit, on each surface and through the clients.
    assert chat(first, single, model).status_code == 200
    refused = requests.post(
        second.url + "/api/chat",
        headers=bearer(single),
        timeout=10,
        json={"model": model, "stream": False, **CHAT},
    )
    assert refused.status_code == 429
    assert isinstance(refused.json()["error"], str) and "rpm" in refused.json()["error"]
    check_retry_headers(refused, "requests", 1)
    with pytest.raises(ollama.ResponseError) as native:
        ollama_client(first, single).chat(model=model, messages=CHAT["messages"])
    assert native.value.status_code == 429
    with pytest.raises(openai.RateLimitError) as excinfo:
        sdk(second, single).chat.completions.create(model=model, messages=CHAT["messages"])
    assert excinfo.value.body["type"] == "requests"
    assert excinfo.value.body["code"] == "rate_limit_exceeded"
    assert int(excinfo.value.response.headers["Retry-After"]) >= 1
    refused = requests.post(
        first.url + "/v1/responses",
        headers=bearer(single),
        timeout=10,
        json={"model": model, "input": "hi"},
    )
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "requests"
    refused = requests.post(
        second.url + "/api/generate",
        headers=bearer(single),
        timeout=10,
        json={"model": model, "prompt": "hi", "stream": False},
    )
    assert refused.status_code == 429 and isinstance(refused.json()["error"], str)
    refused = requests.post(
        first.url + "/api/embed",
        headers=bearer(single),
        timeout=10,
        json={"model": model, "input": "hi"},
    )
    assert refused.status_code == 429
    # What uses no model is not limited.
    assert (
        requests.get(second.url + "/api/tags", headers=bearer(single), timeout=10).status_code
        == 200
    )


def test_a_larger_burst_passes_no_more_than_the_limit_and_its_refill(cluster, upstream):
    """However many requests wait for the shared bucket at once, only the
    limit (plus what refills while they run) gets through."""
    model = model_for(cluster.relays[0], upstream, "big-burst-model", ADMIN)
    key = create_key(cluster.relays[1], "big-burst", rpm=20)
    known_everywhere(cluster.relays, key, time.monotonic())

    def call(index):
        return requests.post(
            cluster.relays[index % 2].url + "/v1/chat/completions",
            headers=bearer(key),
            timeout=30,
            json={"model": model, **CHAT},
        ).status_code

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=80) as pool:
        statuses = list(pool.map(call, range(80)))
    # Not a timing assertion: the time the burst took only widens the bound.
    refill = int((time.monotonic() - started) * 20 / 60) + 1
    assert statuses.count(200) + statuses.count(429) == 80, statuses
    assert 18 <= statuses.count(200) <= 20 + refill, (
        f"{statuses.count(200)} of 80 requests passed an rpm of 20 (+{refill} refill)"
    )


def test_tpm_limit_refuses_on_every_worker_once_usage_exceeds_it(cluster, upstream):
    first, second = cluster.relays
    model = model_for(first, upstream, "tpm-model", ADMIN)
    key = create_key(second, "tokens", tpm=10)
    known_everywhere(cluster.relays, key, time.monotonic())

    # The fake upstream reports 11 + 7 tokens: more than the key's 10 per minute.
    answer = sdk(first, key).chat.completions.create(model=model, messages=CHAT["messages"])
    assert answer.usage.total_tokens == 18
    used = time.monotonic()

    # A worker that has not yet seen those tokens may let a request through
    # (at most one sync bound); after that, every worker refuses.
    def refused_everywhere():
        statuses = [
            chat(relay, key, model, "tpm-poll").status_code
            for relay in cluster.relays
            for _ in range(4)
        ]
        assert set(statuses) <= {200, 429}, statuses
        return set(statuses) == {429}

    assert poll(refused_everywhere, deadline=6.0, interval=0.3), (
        "requests still pass a key whose usage exceeded its tpm"
    )
    time.sleep(max(0.0, used + 2 * KEY_SYNC_SECONDS - time.monotonic()))
    passed_before = len(upstream.requests)

    def over_tokens(response):
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
        assert "tpm" in error["message"] and key not in response.text
        check_retry_headers(response, "tokens", 10)
        assert response.headers["x-ratelimit-remaining-tokens"] == "0"
        assert "x-ratelimit-limit-requests" not in response.headers  # no rpm on this key

    for relay in cluster.relays:

        def send(rid, relay=relay):
            return requests.post(
                relay.url + "/v1/chat/completions",
                timeout=30,
                headers={**bearer(key), "X-Request-ID": rid},
                json={"model": model, **CHAT},
            )

        every_worker_answers(relay, key, 429, "tpm-after", send=send, check=over_tokens)
    assert len(upstream.requests) == passed_before, "a refused request reached the remote"

    native = requests.post(
        second.url + "/api/chat",
        headers=bearer(key),
        timeout=10,
        json={"model": model, "stream": False, **CHAT},
    )
    assert native.status_code == 429
    assert "tpm" in native.json()["error"]
    embeddings = requests.post(
        first.url + "/v1/embeddings",
        headers=bearer(key),
        timeout=10,
        json={"model": model, "input": "a"},
    )
    assert embeddings.status_code == 429


# --- usage ---------------------------------------------------------------------


@pytest.mark.slow
def test_usage_rows_count_every_surface_stream_error_and_abandoned_stream(cluster, upstream):
    first, second = cluster.relays
    model = model_for(first, upstream, "meter-a", ADMIN)
    other = model_for(first, upstream, "meter-b", ADMIN)
    admin_model = model_for(first, upstream, "meter-admin", ADMIN)
    key = create_key(first, "meter")
    known_everywhere(cluster.relays, key, time.monotonic())
    messages = CHAT["messages"]

    def usage_of(tokens_in, tokens_out):
        return {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }

    # 1. Chat Completions through the OpenAI SDK, whole and streamed.
    upstream.reply(Reply(json=completion(usage=usage_of(11, 7))))
    assert (
        sdk(first, key).chat.completions.create(model=model, messages=messages).usage.prompt_tokens
        == 11
    )
    upstream.reply(Reply(sse=text_stream("Hel", "lo", usage=usage_of(21, 2))))
    pieces = list(
        sdk(second, key).chat.completions.create(model=model, messages=messages, stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == "Hello"
    # 2. Ollama's /api/chat through ollama-python, whole and streamed.
    upstream.reply(Reply(json=completion(usage=usage_of(3, 5))))
    reply = ollama_client(first, key).chat(model=model, messages=messages, stream=False)
    assert (reply.prompt_eval_count, reply.eval_count) == (3, 5)
    upstream.reply(Reply(sse=text_stream("a", "b", usage=usage_of(13, 17))))
    parts = list(ollama_client(second, key).chat(model=model, messages=messages, stream=True))
    assert parts[-1].done and "".join(p.message.content for p in parts) == "ab"
    # 3. The Responses API, whole and streamed.
    upstream.reply(Reply(json=completion(usage=usage_of(100, 200))))
    response = sdk(first, key).responses.create(model=model, input="hi")
    assert response.usage.input_tokens == 100
    upstream.reply(Reply(sse=text_stream("x", usage=usage_of(1000, 2000))))
    events = list(sdk(second, key).responses.create(model=model, input="hi", stream=True))
    assert events[-1].type == "response.completed"
    # 4. Errors: the remote answers 500; a stream breaks off mid-way.
    upstream.reply(Reply(status=500, json={"error": {"message": "boom"}}))
    with pytest.raises(openai.APIStatusError):
        sdk(first, key).chat.completions.create(model=model, messages=messages)
    upstream.reply(
        Reply(sse=text_stream("one", "two", "three", usage=usage_of(50, 50)), cut_after=2)
    )
    with pytest.raises(openai.APIError):
        list(sdk(second, key).chat.completions.create(model=model, messages=messages, stream=True))
    # 5. A stream the client leaves while the remote is still sending.
    upstream.reply(Reply(sse=[chunk({"role": "assistant", "content": "Hel"})], hold=True))
    abandoned = requests.post(
        first.url + "/v1/chat/completions",
        stream=True,
        timeout=30,
        headers=bearer(key),
        json={"model": other, "stream": True, **CHAT},
    )
    assert abandoned.status_code == 200
    next(abandoned.iter_lines())
    abandoned.close()
    assert upstream.client_went_away.wait(20), "the relay kept the abandoned stream open"
    # 6. The admin token is a caller too.
    upstream.reply(Reply(json=completion(usage=usage_of(4, 6))))
    sdk(second, ADMIN_TOKEN).chat.completions.create(model=admin_model, messages=messages)

    today = utc_today().isoformat()
    # The streams cut before their usage (4 by the remote, 5 by the client)
    # count the relay's estimate (issue 18, hole 3): the messages and tools
    # sent as JSON, 63 characters, 16 tokens; "one" and "Hel", 1 token each.
    estimated_in, estimated_out = 16, 1
    expected = [
        {
            "key": "meter",
            "team": "-",
            "model": "meter-a:latest",
            "day": today,
            "requests": 8,
            "input_tokens": 11 + 21 + 3 + 13 + 100 + 1000 + estimated_in,
            "output_tokens": 7 + 2 + 5 + 17 + 200 + 2000 + estimated_out,
            "errors": 2,
            "cost": "0",
            "currency": "USD",
            "unpriced": True,
        },
        {
            "key": "meter",
            "team": "-",
            "model": "meter-b:latest",
            "day": today,
            "requests": 1,
            "input_tokens": estimated_in,
            "output_tokens": estimated_out,
            "cost": "0",
            "currency": "USD",
            "unpriced": True,
        },
    ]

    def comparable(rows):
        # Whether an abandoned stream is an error is not the contract: drop it.
        return [
            {
                k: v
                for k, v in row.items()
                if not (row["model"] == "meter-b:latest" and k == "errors")
            }
            for row in rows
        ]

    rows = poll(
        lambda: comparable(usage(second, key="meter")) == expected and usage(second, key="meter")
    )
    assert comparable(usage(second, key="meter")) == expected
    admin_rows = poll(
        lambda: [r for r in usage(first, key="admin") if r["model"] == "meter-admin:latest"]
    )
    assert admin_rows == [
        {
            "key": "admin",
            "team": "-",
            "model": "meter-admin:latest",
            "day": today,
            "requests": 1,
            "input_tokens": 4,
            "output_tokens": 6,
            "errors": 0,
            "cost": "0",
            "currency": "USD",
            "unpriced": True,
        }
    ]

    # The filters: `since` is a UTC day, inclusive; `key` one key.
    yesterday = (utc_today() - datetime.timedelta(days=1)).isoformat()
    tomorrow = (utc_today() + datetime.timedelta(days=1)).isoformat()
    assert usage(first, key="meter", since=today) == rows
    assert usage(first, key="meter", since=yesterday) == rows
    assert usage(first, key="meter", since=tomorrow) == []
    assert usage(first, key="nobody") == []
    assert {r["key"] for r in usage(first, since=today)} >= {"meter", "admin"}
    bad = requests.get(
        first.url + "/api/usage", params={"since": "yesterday"}, headers=ADMIN, timeout=10
    )
    assert bad.status_code == 400
    # A client key reads its own rows only (and where its budgets stand).
    own = requests.get(first.url + "/api/usage", headers=bearer(key), timeout=10).json()
    assert {row["key"] for row in own["usage"]} == {"meter"} and own["budgets"] == []

    # The CLI reads the same rows.
    def cli_rows(*args):
        return json.loads(cli(cluster.settings, "usage", "--json", *args).stdout)

    assert cli_rows("--key", "meter") == rows
    assert cli_rows("--key", "meter", "--since", today) == rows
    assert cli_rows("--key", "meter", "--since", tomorrow) == []
    # Everything: other tests' workers may still be writing, so until both agree.
    assert poll(lambda: cli_rows() == usage(first)), (cli_rows(), usage(first))
    table = cli(cluster.settings, "usage", "--key", "meter").stdout.splitlines()
    assert table[0].split("\t") == [
        "day",
        "key",
        "team",
        "model",
        "requests",
        "input_tokens",
        "output_tokens",
        "errors",
        "cost",
        "currency",
    ]
    # An unpriced model's rows cost nothing, marked `*`.
    counts = [today, "meter", "-", "meter-a:latest", "8", "1164", "2232", "2"]
    assert table[1].split("\t") == counts + ["0.000000*", "USD"]


def test_usage_without_auth_counts_under_dash_on_sqlite(sqlite_relay, upstream):
    relay = sqlite_relay()
    model = model_for(relay, upstream, "open-model")
    upstream.reply(
        Reply(
            json=completion(usage={"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
        ),
        Reply(
            sse=text_stream(
                "x", usage={"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}
            )
        ),
    )
    ollama.Client(host=relay.url).chat(model=model, messages=CHAT["messages"], stream=False)
    list(
        openai.OpenAI(
            base_url=relay.url + "/v1/", api_key="ollama", max_retries=0
        ).chat.completions.create(model=model, messages=CHAT["messages"], stream=True)
    )
    upstream.reply(Reply(status=500, json={"error": {"message": "boom"}}))
    failed = requests.post(
        relay.url + "/api/chat", json={"model": model, "stream": False, **CHAT}, timeout=30
    )
    assert failed.status_code >= 500

    expected = [
        {
            "key": "-",
            "team": "-",
            "model": "open-model:latest",
            "day": utc_today().isoformat(),
            "requests": 3,
            "input_tokens": 9,
            "output_tokens": 4,
            "errors": 1,
            "cost": "0",
            "currency": "USD",
            "unpriced": True,
        }
    ]
    rows = poll(lambda: usage(relay, headers=None) == expected and expected)
    assert usage(relay, headers=None) == expected
    assert rows == expected
    assert json.loads(cli(relay.settings, "usage", "--json", "--key", "-").stdout) == expected
    assert json.loads(cli(relay.settings, "usage", "--json").stdout) == expected


# --- last used -----------------------------------------------------------------


def _last_used(listing, name):
    [row] = [k for k in listing if k["name"] == name]
    return row["last_used_at"]


def _recent(timestamp):
    moment = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    return abs(datetime.datetime.now(datetime.timezone.utc) - moment) < datetime.timedelta(
        minutes=5
    )


def test_keys_list_shows_last_used_after_a_model_request(cluster, upstream):
    first, second = cluster.relays
    model = model_for(first, upstream, "seen-model", ADMIN)
    key = create_key(first, "seen")

    def listed():
        return requests.get(first.url + "/api/keys", headers=ADMIN, timeout=10).json()["keys"]

    assert _last_used(listed(), "seen") is None
    known_everywhere([second], key, time.monotonic())
    assert chat(second, key, model).status_code == 200

    stamp = poll(lambda: _last_used(listed(), "seen"))
    assert stamp and _recent(stamp), stamp
    from_cli = json.loads(cli(cluster.settings, "keys", "list", "--json").stdout)
    assert _last_used(from_cli, "seen") == stamp
    table = cli(cluster.settings, "keys", "list").stdout.splitlines()
    assert table[0].split("\t")[6] == "last_used_at"
    assert [line.split("\t")[6] for line in table[1:] if line.startswith("seen\t")] == [stamp]


def test_keys_list_shows_last_used_after_requests_that_use_no_model(sqlite_relay):
    # A key used only to list models (a client checking its setup) is used too.
    relay = sqlite_relay(RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    key = cli(relay.settings, "keys", "create", "lister").stdout.strip()
    known_everywhere([relay], key, time.monotonic(), verify=True)

    def stamp():
        return _last_used(
            json.loads(cli(relay.settings, "keys", "list", "--json").stdout), "lister"
        )

    value = poll(stamp)
    assert value and _recent(value), "keys list never showed last_used_at"
