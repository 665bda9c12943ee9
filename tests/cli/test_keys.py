"""The `ollama-relay keys` commands, in this process on the test's app
(Flask's test_cli_runner), on SQLite and PostgreSQL: the relay on the same
database takes the keys they make and refuses those they revoke."""

import datetime
import json
import re

import pytest

from app import create_app
from tests.support.access import (
    ADMIN,
    ADMIN_TOKEN,
    KEY_FIELDS,
    REMOTE_KEY,
    bearer,
    json_lines,
    until,
)
from tests.support.cli import cli_in
from tests.support.config import relay_settings


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


@pytest.fixture
def api(make_app):
    """The relay on this test's database, with an admin token (migrated)."""
    return make_app(RELAY_ADMIN_TOKEN=ADMIN_TOKEN).test_client()


@pytest.fixture
def cli(api):
    return cli_in(api.application, secrets=(ADMIN_TOKEN, REMOTE_KEY))


@pytest.fixture
def sqlite_cli(tmp_path):
    """For what does not depend on the database: usage errors."""
    return cli_in(create_app(relay_settings(tmp_path)), secrets=(ADMIN_TOKEN, REMOTE_KEY))


def listed(api):
    response = api.get("/api/keys", headers=ADMIN)
    assert response.status_code == 200
    return response.get_json()["keys"]


def test_keys_create_list_revoke(cli, api):
    expires = utc_today() + datetime.timedelta(days=1)
    created = cli(
        "keys",
        "create",
        "ci-bot",
        "--model",
        "alpha",
        "--model",
        "beta:7b",
        "--rpm",
        "30",
        "--tpm",
        "5000",
        "--expires",
        expires.isoformat(),
    )
    assert re.fullmatch(r"orl-[A-Za-z0-9_-]{40,}\n", created.stdout)
    key = created.stdout.strip()
    audit = [line for line in json_lines(created.log) if line.get("audit")]
    assert [(a["actor"], a["action"], a["object"]) for a in audit] == [
        ("admin", "key.create", "ci-bot")
    ]
    assert key not in created.stderr + created.log
    # The relay on the same database takes the key, limited as asked.
    assert api.get("/v1/models", headers=bearer(key)).status_code == 200
    assert api.post("/api/show", json={"model": "gamma"}, headers=bearer(key)).status_code == 403

    text = cli("keys", "list").stdout
    lines = [line.split("\t") for line in text.splitlines()]
    assert lines[0] == [
        "name",
        "models",
        "rpm",
        "tpm",
        "expires",
        "created_at",
        "last_used_at",
        "revoked",
        "team",
        "budget",
        "period",
        "capture",
    ]
    day_after = expires + datetime.timedelta(days=1)
    assert lines[1][:5] == [
        "ci-bot",
        "alpha:latest,beta:7b",
        "30",
        "5000",
        f"{day_after.isoformat()}T00:00:00Z",
    ]
    assert lines[1][lines[0].index("revoked")] == "False" and len(lines) == 2
    as_json = cli("keys", "list", "--json").stdout
    for output in (text, as_json):
        assert key not in output and "orl-" not in output
    (entry,) = json.loads(as_json)
    assert set(entry) == KEY_FIELDS

    # The same as GET /api/keys, but for last use: the relay writes it every
    # second, and may have written the use above between the two reads.
    def but_last_use(keys):
        return [{k: v for k, v in key.items() if k != "last_used_at"} for key in keys]

    assert but_last_use(json.loads(as_json)) == but_last_use(listed(api))

    revoked = cli("keys", "revoke", "ci-bot")
    assert revoked.stdout == "revoked ci-bot\n"
    assert [(a["action"], a["object"]) for a in json_lines(revoked.log) if a.get("audit")] == [
        ("key.revoke", "ci-bot")
    ]
    until(
        lambda: api.get("/v1/models", headers=bearer(key)).status_code == 401,
        "the relay refuses the key the CLI revoked",
    )
    assert "already revoked" in cli("keys", "revoke", "ci-bot", expect=1).stderr
    assert "not found" in cli("keys", "revoke", "nobody", expect=1).stderr

    again = cli("keys", "create", "ci-bot").stdout.strip()
    assert again != key
    assert api.get("/v1/models", headers=bearer(again)).status_code == 200
    taken = cli("keys", "create", "ci-bot", expect=1)
    assert taken.stdout == "" and "exists" in taken.stderr


def test_keys_create_bad_usage_exits_2_naming_the_option(sqlite_cli):
    for args, names in (
        (["bad name!"], "name"),
        (["ok", "--rpm", "0"], "--rpm"),
        (["ok", "--tpm", "many"], "--tpm"),
        (["ok", "--expires", "2000-01-01"], "expires"),
        (["ok", "--expires", "soon"], "expires"),
        (["ok", "--model", "bad name!"], "model"),
    ):
        result = sqlite_cli("keys", "create", *args, expect=2)
        assert result.stdout == "" and names in result.stderr, args
    assert json.loads(sqlite_cli("keys", "list", "--json").stdout) == []


def test_keys_create_with_a_far_expiry_does_not_crash(cli):
    result = cli("keys", "create", "forever", "--expires", "9999-12-31", expect=(0, 2))
    if result.returncode == 2:
        assert "expires" in result.stderr
