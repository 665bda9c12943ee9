"""Teams: keys in a team use what both lists allow, share the team's rpm and
tpm across workers, and their usage and cost can be read per team."""

import os
import subprocess
import time
import uuid

import openai
import pytest
import requests

from tests.support.fake_upstream import Reply, completion
from tests.support.paths import CLI

TOKEN = "admin-" + uuid.uuid4().hex
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CHAT = [{"role": "user", "content": "hi"}]


@pytest.fixture
def secured(relay_with, upstream):
    relay = relay_with(workers=2, RELAY_ADMIN_TOKEN=TOKEN)
    for name, price in (("a", {"input": 1, "output": 2}), ("b", None), ("c", None)):
        body = {
            "name": name,
            "from": "remote-model",
            "remote_type": "openai",
            "remote_host": upstream.url + "/v1",
            "stream": False,
        }
        if price:
            body["price"] = price
        assert requests.post(relay.url + "/api/create", json=body, headers=ADMIN).status_code == 200
    return relay


def admin(relay, method, path, **body):
    return requests.request(method, relay.url + path, json=body, headers=ADMIN, timeout=10)


def new_key(relay, name, **fields):
    response = admin(relay, "POST", "/api/keys", name=name, **fields)
    assert response.status_code == 200, response.text
    return response.json()["key"]


def chat(relay, key, model):
    return requests.post(
        relay.url + "/v1/chat/completions",
        json={"model": model, "messages": CHAT},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_a_key_in_a_team_uses_the_models_both_allow(secured):
    assert admin(secured, "POST", "/api/teams", name="search", models=["a", "b"]).status_code == 200
    key = new_key(secured, "ann", models=["b", "c"], team="search")
    assert chat(secured, key, "b").status_code == 200
    for refused in ("a", "c"):
        response = chat(secured, key, refused)
        assert response.status_code == 403, refused
        assert response.json()["error"]["code"] == "model_not_allowed"
    # The team's list changes: its keys see it at once on this host.
    assert admin(secured, "PATCH", "/api/teams", name="search", models=None).status_code == 200
    assert chat(secured, key, "c").status_code == 200


def test_two_keys_share_their_teams_rpm_across_workers(secured):
    admin(secured, "POST", "/api/teams", name="ops", rpm=3)
    first, second = new_key(secured, "k1", team="ops"), new_key(secured, "k2", team="ops")
    statuses = [chat(secured, key, "b").status_code for key in (first, second, first, second)]
    assert statuses == [200, 200, 200, 429]
    refused = chat(secured, first, "b")
    assert refused.status_code == 429
    assert "team 'ops'" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    # A key outside the team is not held back by it.
    assert chat(secured, new_key(secured, "solo"), "b").status_code == 200


def test_a_teams_tpm_counts_the_tokens_of_all_its_keys(secured, upstream):
    admin(secured, "POST", "/api/teams", name="batch", tpm=30)
    first, second = new_key(secured, "t1", team="batch"), new_key(secured, "t2", team="batch")
    upstream.reply(
        *[Reply(json=completion(usage={"prompt_tokens": 20, "completion_tokens": 20}))] * 4
    )
    assert chat(secured, first, "b").status_code == 200
    # The 40 tokens reach the shared bucket within the workers' sync.
    deadline = time.monotonic() + 15
    while (status := chat(secured, second, "b").status_code) == 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == 429


def test_usage_and_cost_per_team(secured, upstream):
    admin(secured, "POST", "/api/teams", name="red")
    admin(secured, "POST", "/api/teams", name="blue")
    keys = {
        "r1": new_key(secured, "r1", team="red"),
        "r2": new_key(secured, "r2", team="red"),
        "b1": new_key(secured, "b1", team="blue"),
        "x": new_key(secured, "x"),
    }
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    upstream.reply(*[Reply(json=completion(usage=usage))] * 4)
    for key in keys.values():
        assert chat(secured, key, "a").status_code == 200
    deadline = time.monotonic() + 15
    while True:
        rows = admin(secured, "GET", "/api/usage?by=team").json()["usage"]
        if sum(r["requests"] for r in rows) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    by_team = {row["team"]: (row["requests"], row["cost"]) for row in rows}
    # 10 x 1 + 5 x 2 per million = 0.00002 a request.
    assert by_team == {"-": (1, "0.00002"), "blue": (1, "0.00002"), "red": (2, "0.00004")}
    only_red = admin(secured, "GET", "/api/usage?team=red").json()["usage"]
    assert sorted(row["key"] for row in only_red) == ["r1", "r2"]
    # A key moving team keeps its past usage where it was spent.
    assert admin(secured, "PATCH", "/api/keys", name="r2", team="blue").status_code == 200
    assert admin(secured, "GET", "/api/keys").json()["keys"][2]["team"] == "blue"
    rows = admin(secured, "GET", "/api/usage?by=team").json()["usage"]
    assert {row["team"]: row["requests"] for row in rows}["red"] == 2


def test_teams_are_managed_like_keys(secured):
    assert admin(secured, "POST", "/api/teams", name="t", rpm=5).json()["rpm"] == 5
    assert admin(secured, "POST", "/api/teams", name="t").status_code == 409
    assert admin(secured, "POST", "/api/teams", name="bad\n").status_code == 400
    assert admin(secured, "POST", "/api/keys", name="k", team="ghost").status_code == 404
    new_key(secured, "k", team="t")
    refused = admin(secured, "DELETE", "/api/teams", name="t")
    assert refused.status_code == 409 and "1 keys" in refused.json()["error"]
    assert admin(secured, "PATCH", "/api/keys", name="k", team=None).json()["team"] is None
    assert admin(secured, "DELETE", "/api/teams", name="t").status_code == 200
    assert admin(secured, "GET", "/api/teams").json() == {"teams": []}
    # Client keys may not manage teams.
    key = new_key(secured, "client")
    listed = requests.get(secured.url + "/api/teams", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 403


def test_the_cli_manages_teams_and_moves_keys(secured):
    env = dict(os.environ, **secured.settings)

    def cli(*args):
        return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)

    assert cli("teams", "create", "data", "--model", "a", "--rpm", "7").returncode == 0
    listed = cli("teams", "list").stdout.splitlines()
    assert listed[1].split("\t")[:4] == ["data", "a:latest", "7", "-"]
    secret = cli("keys", "create", "dev", "--team", "data").stdout.strip()
    assert chat(secured, secret, "b").status_code == 403  # the team allows a only
    assert cli("teams", "update", "data", "--all-models", "--no-rpm").returncode == 0
    deadline = time.monotonic() + 5  # another process changed it: seen within 2 s
    while chat(secured, secret, "b").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert chat(secured, secret, "b").status_code == 200
    failed = cli("teams", "delete", "data")
    assert failed.returncode == 1 and "keys" in failed.stderr
    assert cli("keys", "update", "dev", "--no-team").returncode == 0
    assert cli("teams", "delete", "data").returncode == 0
    assert cli("keys", "update", "ghost", "--rpm", "3").returncode == 1
    client = openai.OpenAI(base_url=secured.url + "/v1", api_key=secret, max_retries=0)
    assert client.chat.completions.create(model="a", messages=CHAT).choices
