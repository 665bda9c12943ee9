"""Long previous_response_id chains on SQLite and PostgreSQL: each turn is
stored once (storage grows linearly), the upstream still gets the whole
conversation, deleting or expiring earlier responses breaks no later one,
and prune removes what no live response needs."""

import datetime

import pytest
from peewee import fn

from app.storage.models import StoredResponse
from app.surfaces.responses import store as responses_store
from tests.support.fake_upstream import Reply, completion, text_stream
from tests.support.models import create_model

PAD = "x" * 300


@pytest.fixture
def chat(client, upstream):
    create_model(client, "remote", upstream.url + "/v1")
    return client


def turn(client, text, previous=None, stream=False):
    body = {"model": "remote", "input": text, "stream": stream}
    if previous:
        body["previous_response_id"] = previous
    response = client.post("/v1/responses", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    if not stream:
        return response.get_json()["id"]
    # The id is in every event; the response is stored before the last one.
    text = response.get_data(as_text=True)
    return text.split('"id":"', 1)[1].split('"', 1)[0]


def stored_size(app):
    """Characters stored for all responses (what grew quadratically before)."""
    R = StoredResponse
    with app.app_context():
        return R.select(
            fn.SUM(
                fn.LENGTH(R.input_items)
                + fn.COALESCE(fn.LENGTH(R.messages), 0)
                + fn.LENGTH(R.response)
            )
        ).scalar()


def rows(app):
    with app.app_context():
        return {r.id: r for r in StoredResponse.select()}


def test_a_long_chain_sends_every_turn_and_stores_each_once(chat, upstream, app):
    expected, previous, sizes = [], None, []
    for n in range(60):
        text = f"turn {n} {PAD}"
        # A third of the turns streamed: both ways of answering store the same.
        stream = n % 3 == 2
        if stream:
            upstream.reply(Reply(sse=text_stream(f"answer {n}")))
        else:
            upstream.reply(Reply(json=completion(f"answer {n}")))
        previous = turn(chat, text, previous, stream=stream)
        expected += [{"role": "user", "content": text}]
        assert upstream.last.body["messages"] == expected, f"turn {n}"
        expected += [{"role": "assistant", "content": f"answer {n}"}]
        sizes.append(stored_size(app))
    # Each turn adds about the same, whether it is the 2nd or the 60th.
    growth = [b - a for a, b in zip(sizes, sizes[1:])]
    assert max(growth) < 1.2 * min(growth), growth
    assert sizes[-1] < 60 * 1.2 * sizes[0]
    stored = rows(app)
    assert len(stored) == 60
    # Only the first turn keeps its chat messages: the others are exactly
    # what their input and output items convert back to.
    assert [r.messages is not None for r in stored.values()].count(True) == 1
    # Every response is readable, with only its own input listed.
    for response_id in stored:
        assert chat.get(f"/v1/responses/{response_id}").status_code == 200
        items = chat.get(f"/v1/responses/{response_id}/input_items").get_json()["data"]
        assert len(items) == 1


def test_tool_calls_and_reasoning_come_back_exactly(chat, upstream, app):
    upstream.reply(
        Reply(
            json=completion(
                None,
                reasoning="Need the tool.",
                tool_calls=[("call_1", "weather", {"city": "Oslo"})],
            )
        )
    )
    first = chat.post(
        "/v1/responses",
        json={
            "model": "remote",
            "input": "Weather in Oslo?",
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
        },
    )
    second = chat.post(
        "/v1/responses",
        json={
            "model": "remote",
            "previous_response_id": first.get_json()["id"],
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "Sunny"}],
        },
    )
    upstream.reply(Reply(sse=text_stream("Thanks!", reasoning=["Polite."])))
    third = turn(chat, "Thanks", second.get_json()["id"], stream=True)
    turn(chat, "Bye", third)
    assert upstream.last.body["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Need the tool.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "assistant", "content": "Hello from upstream"},
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": "Thanks!", "reasoning_content": "Polite."},
        {"role": "user", "content": "Bye"},
    ]


def test_deleting_a_middle_response_keeps_later_ones(chat, upstream, app):
    ids = []
    for n in range(5):
        ids.append(turn(chat, f"turn {n}", ids[-1] if ids else None))
    assert chat.delete(f"/v1/responses/{ids[2]}").status_code == 200
    for gone in (
        chat.get(f"/v1/responses/{ids[2]}"),
        chat.delete(f"/v1/responses/{ids[2]}"),
        chat.get(f"/v1/responses/{ids[2]}/input_items"),
        chat.post(
            "/v1/responses", json={"model": "remote", "input": "x", "previous_response_id": ids[2]}
        ),
    ):
        assert gone.status_code == 404
    for later in ids[3:]:
        assert chat.get(f"/v1/responses/{later}").status_code == 200
    last = turn(chat, "turn 5", ids[4])
    users = [m["content"] for m in upstream.last.body["messages"] if m["role"] == "user"]
    assert users == [f"turn {n}" for n in range(6)]
    # The deleted turn is kept (hidden) only while later turns need it:
    # deleting all of them, in any order, leaves nothing behind.
    assert ids[2] in rows(app) and rows(app)[ids[2]].deleted
    for response_id in (ids[0], ids[4], ids[1], ids[3]):
        assert chat.delete(f"/v1/responses/{response_id}").status_code == 200
    # Turn 5 continues them all.
    assert {i: r.deleted for i, r in rows(app).items()} == {**{i: True for i in ids}, last: False}
    assert chat.delete(f"/v1/responses/{last}").status_code == 200
    assert rows(app) == {}


def test_a_fork_shares_the_turns_before_it(chat, upstream):
    first = turn(chat, "start")
    left, right = turn(chat, "left", first), turn(chat, "right", first)
    assert chat.delete(f"/v1/responses/{first}").status_code == 200
    for branch, word in ((left, "left"), (right, "right")):
        turn(chat, "more", branch)
        users = [m["content"] for m in upstream.last.body["messages"] if m["role"] == "user"]
        assert users == ["start", word, "more"]


def test_prune_removes_only_what_no_live_response_needs(chat, upstream, app):
    a = turn(chat, "a")
    b = turn(chat, "b", a)
    c = turn(chat, "c", b)
    lone = turn(chat, "lone")
    old = datetime.datetime(2020, 1, 1)
    with app.app_context():
        StoredResponse.update(created_at=old).where(StoredResponse.id.in_([a, b])).execute()
        # Expired but continued by a live response: hidden, not removed.
        assert responses_store.prune(30) == 0
    for expired in (a, b):
        assert chat.get(f"/v1/responses/{expired}").status_code == 404
    turn(chat, "d", c)
    users = [m["content"] for m in upstream.last.body["messages"] if m["role"] == "user"]
    assert users == ["a", "b", "c", "d"]
    d = next(r for r in rows(app) if r not in (a, b, c, lone))
    assert chat.delete(f"/v1/responses/{c}").status_code == 200
    with app.app_context():
        StoredResponse.update(created_at=old).where(StoredResponse.id == d).execute()
        # d expired: nothing live descends from a, b or the tombstone c now.
        assert responses_store.prune(30) == 4
    assert set(rows(app)) == {lone}
    assert chat.get(f"/v1/responses/{lone}").status_code == 200
