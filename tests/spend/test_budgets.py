"""Budgets in money per key and team: refused before the remote is called
when a request's worst case does not fit, settled to the real cost after,
never overspent by concurrent requests on two hosts, with a killed worker's
reservation released; soft alerts; a client key reads its own standing."""

import concurrent.futures
import datetime
import json
import os
import re
import signal
import time
import uuid
from decimal import Decimal

import anthropic
import ollama
import openai
import pytest
import requests

from app.spend.budgets import window
from tests.support.config import SECRET_KEY
from tests.support.fake_upstream import Reply, chunk, completion
from tests.support.postgres import postgres_schema_url
from tests.support.servers import GunicornServer

TOKEN = "admin-" + uuid.uuid4().hex
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CHAT = [{"role": "user", "content": "hi"}]
# Only output is priced, and every answer uses its whole max_tokens: a
# request costs exactly what it reserves, 100 x 1.00 per million.
PRICE = {"input": 0, "output": 1}
MAX_TOKENS = 100
COST = Decimal("0.0001")
USAGE = {"prompt_tokens": 12, "completion_tokens": MAX_TOKENS, "total_tokens": 112}


def admin(relay, method, path, **body):
    response = requests.request(method, relay.url + path, json=body, headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def model(relay, upstream, name="m"):
    admin(
        relay,
        "POST",
        "/api/create",
        name=name,
        **{"from": "x"},
        remote_type="openai",
        remote_host=upstream.url + "/v1",
        price=PRICE,
        stream=False,
    )


def key(relay, name, **fields):
    return admin(relay, "POST", "/api/keys", name=name, **fields)["key"]


def chat(url, secret, stream=False):
    body = {"model": "m", "messages": CHAT, "max_tokens": MAX_TOKENS, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    response = requests.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    if stream and response.status_code == 200:
        assert response.text.rstrip().endswith("data: [DONE]")
    return response


def whole():
    return Reply(json=completion(usage=USAGE))


def either(recorded):
    """The answer in the form the request asked for, using all its max_tokens."""
    if not recorded.body.get("stream"):
        return whole()
    return Reply(
        sse=[
            chunk({"content": "hi"}),
            chunk({}, finish_reason="length"),
            chunk(choices=False, usage=USAGE),
        ]
    )


@pytest.fixture
def secured(relay_with, upstream):
    relay = relay_with(workers=2, RELAY_ADMIN_TOKEN=TOKEN)
    model(relay, upstream)
    return relay


def test_a_request_over_budget_is_refused_before_the_remote_in_each_surfaces_shape(
    secured, upstream
):
    secret = key(secured, "tight", budget="0.00005", period="day")  # half a request
    calls = len(upstream.requests)
    client = openai.OpenAI(base_url=secured.url + "/v1", api_key=secret, max_retries=0)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="m", messages=CHAT, max_tokens=MAX_TOKENS)
    error = refused.value.body
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "day budget of key 'tight'" in error["message"]
    _, ends = window("day")
    wait = int(refused.value.response.headers["Retry-After"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert 0 < wait <= (ends - now).total_seconds() + 2
    with pytest.raises(anthropic.RateLimitError) as refused:
        anthropic.Anthropic(base_url=secured.url, api_key=secret, max_retries=0).messages.create(
            model="m", max_tokens=MAX_TOKENS, messages=CHAT
        )
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(ollama.ResponseError) as refused:
        ollama.Client(host=secured.url, headers={"Authorization": f"Bearer {secret}"}).chat(
            model="m", messages=CHAT, options={"num_predict": MAX_TOKENS}
        )
    assert refused.value.status_code == 429 and "budget" in refused.value.error
    # Without a limit of its own, a request is capped (RELAY_BUDGET_MAX_TOKENS)
    # and reserved at that cap: 4096 tokens do not fit either.
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="m", input="hi", store=False)
    assert len(upstream.requests) == calls  # none of them reached the remote


def test_a_request_for_n_choices_reserves_n_times_its_output(secured, upstream):
    admin(
        secured,
        "POST",
        "/api/create",
        name="many",
        **{"from": "x"},
        remote_type="openai",
        remote_host=upstream.url + "/v1",
        price=PRICE,
        max_n=4,
        stream=False,
    )
    secret = key(secured, "n", budget="0.0003", period="day")  # three answers' worth
    client = openai.OpenAI(base_url=secured.url + "/v1", api_key=secret, max_retries=0)
    calls = len(upstream.requests)
    # Four answers of up to 100 tokens each are billed as 400 tokens: they do not fit.
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="many", messages=CHAT, max_tokens=MAX_TOKENS, n=4)
    assert refused.value.body["code"] == "insufficient_quota"
    assert len(upstream.requests) == calls
    three = {"prompt_tokens": 12, "completion_tokens": 3 * MAX_TOKENS}
    upstream.reply(Reply(json=completion(usage=three)))
    client.chat.completions.create(model="many", messages=CHAT, max_tokens=MAX_TOKENS, n=3)
    assert upstream.last.body["n"] == 3


def test_the_reservation_is_settled_to_the_real_cost(secured, upstream):
    secret = key(secured, "k", budget="0.0003", period="month")  # three worst cases
    cheap = {"prompt_tokens": 5, "completion_tokens": 10}
    upstream.reply(*[Reply(json=completion(usage=cheap))] * 10)
    # Each costs a tenth of what it reserves: settled, the rest is free again.
    statuses = [chat(secured.url, secret).status_code for _ in range(10)]
    assert statuses == [200] * 10
    standing = requests.get(
        secured.url + "/api/usage", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    ).json()
    (budget,) = standing["budgets"]
    assert (budget["scope"], budget["name"], budget["period"]) == ("key", "k", "month")
    deadline = time.monotonic() + 10
    # Each worker writes what it spent within a second.
    while Decimal(budget["spent"]) < Decimal("0.0001") and time.monotonic() < deadline:
        time.sleep(0.3)
        budget = requests.get(
            secured.url + "/api/usage", headers={"Authorization": f"Bearer {secret}"}
        ).json()["budgets"][0]
    assert Decimal(budget["spent"]) == 10 * Decimal("0.00001")
    assert Decimal(budget["remaining"]) == Decimal("0.0003") - Decimal(budget["spent"])


def test_a_client_key_reads_its_own_usage_and_its_teams_budget(secured, upstream):
    admin(secured, "POST", "/api/teams", name="t", budget=5, period="total")
    mine = key(secured, "mine", team="t", budget="2.5", period="day")
    other = key(secured, "other")
    for secret in (mine, other):
        upstream.reply(whole())
        assert chat(secured.url, secret).status_code == 200
    standing = requests.get(
        secured.url + "/api/usage", headers={"Authorization": f"Bearer {mine}"}, timeout=10
    ).json()
    assert {row["key"] for row in standing["usage"]} <= {"mine"}
    assert [(b["scope"], b["name"], b["budget"], b["period"]) for b in standing["budgets"]] == [
        ("key", "mine", "2.5", "day"),
        ("team", "t", "5", "total"),
    ]
    assert standing["budgets"][1]["resets_at"] is None
    # Another key's rows stay out of reach whatever the query says.
    asked = requests.get(
        secured.url + "/api/usage",
        params={"key": "other"},
        headers={"Authorization": f"Bearer {mine}"},
        timeout=10,
    ).json()
    assert all(row["key"] == "mine" for row in asked["usage"])


def test_a_budget_of_a_past_month_does_not_hold_this_month(secured, upstream):
    secret = key(secured, "monthly", budget="0.0002", period="month")
    last_month = (window("month")[1] - datetime.timedelta(days=40)).strftime("%Y-%m")
    assert last_month != window("month")[0]
    # As if the key had spent all of last month's budget.
    from app import create_app
    from app.storage.models import BudgetSpend

    with create_app(dict(secured.settings, RELAY_AUTO_MIGRATE=False)).app_context():
        BudgetSpend.insert(
            scope="key", name="monthly", window=last_month, spent=2 * 10**8
        ).execute()
    upstream.reply(whole(), whole(), whole())
    assert [chat(secured.url, secret).status_code for _ in range(3)] == [200, 200, 429]
    assert window(
        "month", datetime.datetime(2026, 12, 31, 23, 59, tzinfo=datetime.timezone.utc)
    ) == ("2026-12", datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc))


def test_the_soft_alert_is_given_once(relay_with, upstream):
    relay = relay_with(workers=2, RELAY_ADMIN_TOKEN=TOKEN, RELAY_BUDGET_ALERT_SHARE="0.5")
    model(relay, upstream)
    secret = key(relay, "alerting", budget="0.0004", period="day")
    upstream.reply(*[whole()] * 4)
    assert [chat(relay.url, secret).status_code for _ in range(4)] == [200] * 4
    deadline = time.monotonic() + 10
    while "budget alert" not in relay.log() and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(2.5)  # a second flush on each worker may not alert again
    lines = [json.loads(line) for line in re.findall(r"^\{.*\}$", relay.log(), re.M)]
    alerts = [x for x in lines if x.get("message") == "budget alert"]
    audits = [x for x in lines if x.get("action") == "budget.alert"]
    assert len(alerts) == 1 and len(audits) == 1
    assert (alerts[0]["scope"], alerts[0]["name"]) == ("key", "alerting")
    text = requests.get(relay.url + "/metrics", headers=ADMIN, timeout=10).text
    (ratio,) = re.findall(
        r'^relay_budget_used_ratio\{name="alerting",scope="key"\} (\S+)$', text, re.M
    )
    assert float(ratio) >= 0.5


def _cluster(tmp_path, **settings):
    url, drop = postgres_schema_url()
    base = {
        "RELAY_DATABASE_URL": url,
        "RELAY_INSTANCE_PATH": str(tmp_path / "instance"),
        "RELAY_SECRET_KEY": SECRET_KEY,
        "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
        "RELAY_ADMIN_TOKEN": TOKEN,
        **settings,
    }
    hosts = [
        GunicornServer(dict(base, RELAY_INSTANCE_PATH=str(tmp_path / f"host{i}")), tmp_path)
        for i in range(2)
    ]
    return hosts, drop


def _spent_on_the_database(host, scope, name):
    from app import create_app
    from app.storage.models import BudgetSpend

    with create_app(dict(host.settings, RELAY_AUTO_MIGRATE=False)).app_context():
        return sum(
            row.spent
            for row in BudgetSpend.select().where(
                (BudgetSpend.scope == scope) & (BudgetSpend.name == name)
            )
        )


@pytest.mark.parametrize("kill", [False, True], ids=["all-end", "worker-killed"])
def test_concurrent_requests_on_two_hosts_never_overspend_a_team_budget(tmp_path, upstream, kill):
    # Leases of dead workers expire after 8 s: long enough for a live worker
    # on a busy machine to renew its own (every second), short for the test.
    hosts, drop = _cluster(tmp_path, RELAY_BUDGET_LEASE_SECONDS="8")
    try:
        model(hosts[0], upstream)
        admin(hosts[0], "POST", "/api/teams", name="squad", budget=str(10 * COST), period="day")
        secrets = [key(hosts[0], f"k{i}", team="squad") for i in range(4)]
        time.sleep(2.5)  # keys created on one host reach the other within 2 s
        held = None
        if kill:
            # One stream holds its reservation while its worker is killed.
            upstream.reply(Reply(sse=[chunk({"content": "a"})], hold=True))
            held = concurrent.futures.ThreadPoolExecutor(1).submit(
                chat, hosts[1].url, secrets[0], True
            )
            deadline = time.monotonic() + 10
            while not upstream.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            for pid in _workers(hosts[1]):
                os.kill(pid, signal.SIGKILL)
        upstream.reply(*[either] * 100)
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            results = list(
                pool.map(
                    lambda i: chat(hosts[i % 2].url, secrets[i % 4], stream=bool(i % 2 == 0)),
                    range(100),
                )
            )
        statuses = [r.status_code for r in results]
        refused = [r.json()["error"]["code"] for r in results if r.status_code == 429]
        assert set(statuses) <= {200, 429} and set(refused) <= {"insufficient_quota"}
        ok = statuses.count(200)
        assert ok >= (8 if kill else 9), statuses
        time.sleep(2.5)  # every worker writes its spend within a second
        total = Decimal(_spent_on_the_database(hosts[0], "team", "squad")) / 10**12
        if not kill:
            assert total == ok * COST <= 10 * COST
        else:
            # The dead worker's lease expires and is charged whole: its stream
            # reached the remote, and what that cost is not known.
            time.sleep(9)
            upstream.reply(*[whole()] * 3)
            late = [chat(hosts[0].url, secrets[1]).status_code for _ in range(3)]
            assert late.count(200) == 10 - ok - 1, late
            time.sleep(2.5)
            total = Decimal(_spent_on_the_database(hosts[0], "team", "squad")) / 10**12
            assert total == 10 * COST
            with pytest.raises(requests.RequestException):
                held.result(timeout=30)
    finally:
        upstream.release.set()
        for host in hosts:
            host.stop()
        drop()


def _workers(host):
    """The pids of a gunicorn master's workers."""
    children = f"/proc/{host.process.pid}/task/{host.process.pid}/children"
    with open(children) as handle:
        return [int(pid) for pid in handle.read().split()]
