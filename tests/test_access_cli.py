"""Client keys on SQLite and PostgreSQL: what POST /api/keys refuses (the Flask
test client), the expiry forms, and the `ollama-relay keys` commands."""

import datetime
import json
import re

import pytest

from tests.access_helpers import (
    ADMIN,
    ADMIN_TOKEN,
    base_settings,
    bearer,
    cli_runner,
    json_lines,
    until,
)

KEY_FIELDS = {
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
}


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


@pytest.fixture
def api(make_app):
    """The relay on this test's database, with an admin token (migrated)."""
    return make_app(RELAY_ADMIN_TOKEN=ADMIN_TOKEN).test_client()


@pytest.fixture
def cli(settings, api):
    return cli_runner(settings)


@pytest.fixture
def sqlite_cli(tmp_path):
    """For what does not depend on the database: usage errors."""
    run = cli_runner(base_settings(tmp_path))
    run("db", "upgrade")
    return run


def create(api, **body):
    return api.post("/api/keys", json=body, headers=ADMIN)


def listed(api):
    response = api.get("/api/keys", headers=ADMIN)
    assert response.status_code == 200
    return response.get_json()["keys"]


# --- POST /api/keys input ----------------------------------------------------------


def test_bad_key_bodies_are_400_naming_the_field(api):
    yesterday = (utc_today() - datetime.timedelta(days=1)).isoformat()

    def named(**fields):
        return {"name": "ok-name", **fields}

    bad = [
        ({"rpm": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "two words"}, "name"),
        ({"name": "admin"}, "name"),
        ({"name": "-"}, "name"),
        ({"name": ".hidden"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": 7}, "name"),
        (named(rpm=0), "rpm"),
        (named(rpm=-1), "rpm"),
        (named(rpm=1.5), "rpm"),
        (named(rpm="60"), "rpm"),
        (named(rpm=True), "rpm"),
        (named(tpm=0), "tpm"),
        (named(tpm="1000"), "tpm"),
        (named(models="alpha"), "models"),
        (named(models=["bad name!"]), "models"),
        (named(models=[1]), "models"),
        (named(models=[None]), "models"),
        (named(models={"alpha": True}), "models"),
        (named(expires="2000-01-01"), "expires"),
        (named(expires=yesterday), "expires"),
        (named(expires="2000-01-01T00:00:00Z"), "expires"),
        (named(expires="next week"), "expires"),
        (named(expires="2099-02-30"), "expires"),
        (named(expires=20990101), "expires"),
    ]
    answers = {}
    for body, field in bad:
        response = create(api, **body)
        message = (response.get_json() or {}).get("error", "")
        answers[json.dumps(body)] = (
            response.status_code,
            bool(re.search(rf"\b{field}\b", message)),
        )
    assert answers == {json.dumps(body): (400, True) for body, _ in bad}
    for body in ([], "ok-name", None):
        assert api.post("/api/keys", json=body, headers=ADMIN).status_code == 400
    assert listed(api) == []


def test_boundary_values_are_accepted(api):
    for body in (
        {"name": "a" * 64},
        {"name": "ci.bot_2@team-x", "rpm": 1, "tpm": 1},
        {"name": "Admin2", "models": None, "expires": None},
        {"name": "ns", "models": ["team/model:7b", "plain"]},
    ):
        response = create(api, **body)
        assert response.status_code == 200, (body, response.get_json())
    models = {k["name"]: k["models"] for k in listed(api)}
    assert models["ns"] == ["plain:latest", "team/model:7b"] and models["Admin2"] is None


def test_a_date_works_through_that_utc_day(api):
    today = utc_today()
    response = create(api, name="today-only", expires=today.isoformat())
    assert response.status_code == 200, response.get_json()
    tomorrow = today + datetime.timedelta(days=1)
    assert response.get_json()["expires"] == f"{tomorrow.isoformat()}T00:00:00Z"
    key = response.get_json()["key"]
    assert api.get("/v1/models", headers=bearer(key)).status_code == 200

    offset = create(api, name="offset", expires="2099-06-30T23:30:00-02:00")
    assert offset.get_json()["expires"] == "2099-07-01T01:30:00Z"


def test_a_far_expiry_date_is_not_a_server_error(api):
    # "Never, really": an admin may well type the last day there is.
    for expires in ("9999-12-31", "9999-12-31T23:00:00-05:00"):
        response = create(api, name="forever", expires=expires)
        assert response.status_code in (200, 400), (expires, response.get_json())
        if response.status_code == 400:
            assert "expires" in response.get_json()["error"]
        else:
            api.delete("/api/keys", json={"name": "forever"}, headers=ADMIN)


# --- ollama-relay keys --------------------------------------------------------------


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
    audit = [line for line in json_lines(created.stderr) if line.get("audit")]
    assert [(a["actor"], a["action"], a["object"]) for a in audit] == [
        ("admin", "key.create", "ci-bot")
    ]
    assert key not in created.stderr
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
    ]
    day_after = expires + datetime.timedelta(days=1)
    assert lines[1][:5] == [
        "ci-bot",
        "alpha:latest,beta:7b",
        "30",
        "5000",
        f"{day_after.isoformat()}T00:00:00Z",
    ]
    assert lines[1][-1] == "False" and len(lines) == 2
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
    assert [(a["action"], a["object"]) for a in json_lines(revoked.stderr) if a.get("audit")] == [
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
