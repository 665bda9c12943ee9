"""Stored responses on SQLite and PostgreSQL: previous_response_id, GET, DELETE,
input_items, store: false, expiry."""

import datetime
import json

import openai
import pytest
import requests

from app.storage.models import StoredResponse
from tests.support.cli import cli_in
from tests.support.fake_upstream import Reply, completion, text_stream
from tests.support.models import create_model
from tests.support.openai_schema import validate


@pytest.fixture
def relay(module_relays, module_database):
    """One relay per database for the whole module: no test here needs a fresh
    one, and each looks only at the responses it stored. Two workers: a
    conversation goes on across them."""
    return module_relays.get(module_database, workers=2)


@pytest.fixture
def settings(relay):
    """The shared relay's settings: `make_app` opens its database."""
    return relay.settings


@pytest.fixture
def model(relay, upstream):
    create_model(relay, "remote", upstream.url + "/v1")
    requests.post(relay.url + "/api/copy", json={"source": "remote", "destination": "other"})
    return "remote"


def sdk(relay):
    return openai.OpenAI(
        base_url=relay.url + "/v1/", api_key="x", _strict_response_validation=True, max_retries=0
    )


def respond(relay, **body):
    response = requests.post(relay.url + "/v1/responses", json={"model": "remote", **body})
    assert response.status_code == 200, response.text
    return response.json()


def stored_ids(make_app):
    """The ids of every stored response, those of earlier tests included."""
    with make_app().app_context():
        return {row.id for row in StoredResponse.select(StoredResponse.id)}


def test_get_returns_the_stored_response(relay, model):
    created = sdk(relay).responses.create(model="remote", input="hi", metadata={"k": "v"})
    fetched = sdk(relay).responses.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    validate(requests.get(f"{relay.url}/v1/responses/{created.id}").json(), "Response")


def test_an_immediate_follow_up_to_a_stream_continues_it(relay, model, upstream):
    upstream.reply(Reply(sse=text_stream("Paris.")))
    response = requests.post(
        relay.url + "/v1/responses",
        stream=True,
        json={
            "model": "remote",
            "stream": True,
            "instructions": "Be brief.",
            "input": "Capital of France?",
        },
    )
    for line in response.iter_lines():
        if line.startswith(b"data: ") and b'"response.completed"' in line:
            first_id = json.loads(line[6:])["response"]["id"]
            break
    # Still inside the stream: the follow-up goes out before it is closed.
    follow = respond(relay, input="And of Italy?", previous_response_id=first_id)
    response.close()
    assert follow["previous_response_id"] == first_id
    # Instructions are not carried over.
    assert upstream.last.body["messages"] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]


def test_a_conversation_continues_across_workers_and_connections(relay, model, upstream):
    previous = None
    for turn in range(6):
        body = {"input": f"turn {turn}"}
        if previous:
            body["previous_response_id"] = previous
        with requests.Session() as fresh_connection:
            answer = fresh_connection.post(
                relay.url + "/v1/responses", json={"model": "remote", **body}
            ).json()
        previous = answer["id"]
        messages = upstream.last.body["messages"]
        assert len(messages) == 2 * turn + 1
        assert [m["content"] for m in messages if m["role"] == "user"] == [
            f"turn {t}" for t in range(turn + 1)
        ]


def test_a_tool_loop_continues_through_previous_response_id(relay, model, upstream):
    upstream.reply(
        Reply(
            json=completion(content=None, tool_calls=[("call_7", "get_weather", {"city": "Oslo"})])
        )
    )
    first = respond(
        relay,
        input="Weather in Oslo?",
        tools=[{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
    )
    call = first["output"][0]
    second = respond(
        relay,
        previous_response_id=first["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "-3 C"}],
    )
    assert second["status"] == "completed"
    assistant, tool = upstream.last.body["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == "call_7"
    assert tool == {"role": "tool", "tool_call_id": "call_7", "content": "-3 C"}


def test_unknown_previous_response_id_is_404(relay, model, upstream):
    response = requests.post(
        relay.url + "/v1/responses",
        json={"model": "remote", "input": "x", "previous_response_id": "resp_nope"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "previous_response_id"
    assert response.json()["error"]["type"] == "not_found_error"
    assert upstream.requests == []


def test_previous_response_of_another_model_is_400(relay, model, upstream):
    first = respond(relay, input="hi")
    response = requests.post(
        relay.url + "/v1/responses",
        json={"model": "other", "input": "x", "previous_response_id": first["id"]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "previous_response_id"


def test_delete_then_get_is_404_not_500(relay, model):
    first = respond(relay, input="hi")
    url = f"{relay.url}/v1/responses/{first['id']}"
    deleted = requests.delete(url)
    assert deleted.json() == {"id": first["id"], "object": "response", "deleted": True}
    for response in (requests.get(url), requests.delete(url), requests.get(url + "/input_items")):
        assert response.status_code == 404
        validate(response.json(), "ErrorResponse")
    with pytest.raises(openai.NotFoundError):
        sdk(relay).responses.retrieve(first["id"])


def test_input_items_are_paginated(relay, model):
    items = [{"type": "message", "role": "user", "content": f"m{i}"} for i in range(5)]
    first = respond(relay, input=items)
    url = f"{relay.url}/v1/responses/{first['id']}/input_items"
    page = requests.get(url, params={"limit": 2, "order": "asc"}).json()
    validate(page, "ResponseItemList")
    assert [i["content"][0]["text"] for i in page["data"]] == ["m0", "m1"]
    assert page["has_more"] is True
    page = requests.get(url, params={"limit": 2, "order": "asc", "after": page["last_id"]}).json()
    assert [i["content"][0]["text"] for i in page["data"]] == ["m2", "m3"]
    newest = requests.get(url).json()
    assert [i["content"][0]["text"] for i in newest["data"]] == ["m4", "m3", "m2", "m1", "m0"]
    assert newest["has_more"] is False
    listed = sdk(relay).responses.input_items.list(first["id"], order="asc")
    assert len(listed.data) == 5
    bad = requests.get(url, params={"limit": 1000})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_store_false_keeps_nothing(relay, model, make_app):
    before = stored_ids(make_app)
    first = respond(relay, input="secret", store=False)
    assert first["store"] is False
    assert requests.get(f"{relay.url}/v1/responses/{first['id']}").status_code == 404
    assert stored_ids(make_app) == before


def test_failed_answers_leave_nothing_in_the_database(relay, model, upstream, make_app):
    before = stored_ids(make_app)
    upstream.reply(Reply(status=401, json={"error": {"message": "bad key"}}))
    assert (
        requests.post(
            relay.url + "/v1/responses", json={"model": "remote", "input": "x"}
        ).status_code
        == 401
    )
    upstream.reply(Reply(sse=text_stream("a", "b", "c"), cut_after=2))
    lines = requests.post(
        relay.url + "/v1/responses", json={"model": "remote", "input": "x", "stream": True}
    ).text
    assert "response.failed" in lines
    assert stored_ids(make_app) == before


def test_expired_responses_are_gone_and_pruned(relay, model, make_app, settings):
    first = respond(relay, input="old")
    before = stored_ids(make_app)
    assert first["id"] in before
    with make_app().app_context():
        old = datetime.datetime(2020, 1, 1)
        StoredResponse.update(created_at=old).where(StoredResponse.id == first["id"]).execute()
    assert requests.get(f"{relay.url}/v1/responses/{first['id']}").status_code == 404
    result = cli_in(make_app())("responses", "prune")
    assert result.stdout.strip() == "pruned 1 expired responses"
    assert stored_ids(make_app) == before - {first["id"]}
