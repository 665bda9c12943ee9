"""A model's digest tells apart every way of calling a remote, its key included.

Clients that follow Ollama's rule "one digest, one model" merge models that
share one: llm-ollama sent `llm -m ollama/team-b` as another model's name, so
the call went out on that model's key, quota and usage. The key counts as an
HMAC under the instance secret: the digest never lets anyone test a guess.
"""

import hashlib
import json

import pytest

from tests.support.cli import cli_in
from tests.surfaces.admin.test_models_api import create

TEAM_A_KEY = "sk-team-a-0123456789abcdef"
TEAM_B_KEY = "sk-team-b-fedcba9876543210"


def digest(client, name):
    (entry,) = [
        m for m in client.get("/api/tags").get_json()["models"] if m["name"] == f"{name}:latest"
    ]
    return entry["digest"]


def test_models_that_differ_only_in_their_key_have_different_digests(client):
    create(client, name="team-a", remote_api_key=TEAM_A_KEY)
    create(client, name="team-b", remote_api_key=TEAM_B_KEY)
    create(client, name="keyless", remote_api_key=None)
    digests = {digest(client, name) for name in ("team-a", "team-b", "keyless")}
    assert len(digests) == 3


def test_the_digest_does_not_reveal_the_key(client):
    create(client, name="team-a", remote_api_key=TEAM_A_KEY)
    shown = digest(client, "team-a")
    # Nor a plain hash of it, which would let anyone test guessed keys.
    for guess in (TEAM_A_KEY, hashlib.sha256(TEAM_A_KEY.encode()).hexdigest()):
        assert guess not in shown
    everything = json.dumps(
        [
            client.get("/api/tags").get_json(),
            client.post("/api/show", json={"model": "team-a"}).get_json(),
        ]
    )
    assert TEAM_A_KEY not in everything


def test_the_same_model_created_again_keeps_its_digest_and_a_copy_shares_it(client):
    create(client, name="team-a", remote_api_key=TEAM_A_KEY)
    before = digest(client, "team-a")
    create(client, name="team-a", remote_api_key=TEAM_A_KEY)
    assert digest(client, "team-a") == before
    assert client.post("/api/copy", json={"source": "team-a", "destination": "twin"}).status_code
    assert digest(client, "twin") == before


@pytest.mark.parametrize(
    "change",
    [
        {"remote_host": "https://api.example.com/v1"},
        {"remote_type": "ollama"},
        {"from": "qwen-max"},
        {"system": "You are terse."},
        {"parameters": {"temperature": 0.2}},
        {"capabilities": ["completion"]},
    ],
)
def test_anything_that_changes_how_the_model_calls_changes_its_digest(client, change):
    create(client, name="base")
    create(client, name="changed", **change)
    assert digest(client, "changed") != digest(client, "base")


def test_a_repriced_model_keeps_a_digest_that_knows_its_key(app, client, tmp_path):
    create(client, name="team-a", remote_api_key=TEAM_A_KEY)
    create(client, name="team-b", remote_api_key=TEAM_B_KEY)
    prices = tmp_path / "prices.json"
    price = {"input": 1, "output": 2}
    prices.write_text(json.dumps({"team-a": price, "team-b": price}))
    cli_in(app, secrets=(TEAM_A_KEY, TEAM_B_KEY))("prices", "load", str(prices))
    assert digest(client, "team-a") != digest(client, "team-b")
