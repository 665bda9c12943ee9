"""What POST /api/keys refuses and accepts (the Flask test client), the
expiry forms, on SQLite and PostgreSQL."""

import datetime
import json
import re

import pytest

from tests.support.access import ADMIN, ADMIN_TOKEN, bearer


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


@pytest.fixture
def api(make_app):
    """The relay on this test's database, with an admin token (migrated)."""
    return make_app(RELAY_ADMIN_TOKEN=ADMIN_TOKEN).test_client()


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
