"""`item_reference` input items (the Vercel AI SDK's way of sending stored
output back) resolve to the stored output items, per key, on both databases."""

import requests

from tests.support.fake_upstream import Reply, completion

# The module's relay (one per database, shared by its tests) and model, as test_store's.
from tests.surfaces.responses.test_store import model, relay, respond  # noqa: F401

ADMIN = "admin-token-for-item-references"


def test_a_message_reference_becomes_the_assistant_turn(relay, model, upstream):
    upstream.reply(Reply(json=completion("Paris is the capital.")))
    first = respond(relay, input="Capital of France?")
    (message,) = [item for item in first["output"] if item["type"] == "message"]
    second = respond(
        relay,
        input=[
            {"role": "user", "content": "Capital of France?"},
            {"type": "item_reference", "id": message["id"]},
            {"role": "user", "content": "And its population?"},
        ],
    )
    assert second["status"] == "completed"
    sent = upstream.last.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "Paris is the capital."


def test_reasoning_and_function_call_references_resolve_too(relay, model, upstream):
    upstream.reply(
        Reply(
            json=completion(
                None,
                reasoning="Need the weather tool.",
                tool_calls=[("call_1", "weather", {"city": "Oslo"})],
            )
        )
    )
    first = respond(
        relay,
        input="Weather in Oslo?",
        tools=[
            {
                "type": "function",
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    )
    by_type = {item["type"]: item for item in first["output"]}
    respond(
        relay,
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"type": "item_reference", "id": by_type["reasoning"]["id"]},
            {"type": "item_reference", "id": by_type["function_call"]["id"]},
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
        ],
    )
    assistant, tool = upstream.last.body["messages"][1:3]
    assert assistant["reasoning_content"] == "Need the weather tool."
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "weather"
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}


def test_an_unknown_reference_is_a_400_naming_it(relay, model, upstream):
    response = requests.post(
        relay.url + "/v1/responses",
        json={
            "model": "remote",
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "item_reference", "id": "msg_nowhere"},
            ],
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "msg_nowhere" in error["message"] and error["param"] == "input[1].id"
    assert upstream.requests == []


def test_a_deleted_response_takes_its_items_with_it(relay, model, upstream):
    first = respond(relay, input="hi")
    item_id = first["output"][0]["id"]
    assert requests.delete(f"{relay.url}/v1/responses/{first['id']}").status_code == 200
    response = requests.post(
        relay.url + "/v1/responses",
        json={"model": "remote", "input": [{"type": "item_reference", "id": item_id}]},
    )
    assert response.status_code == 400 and item_id in response.json()["error"]["message"]


def test_another_keys_items_cannot_be_referenced(relay_with, upstream):
    relay = relay_with(RELAY_ADMIN_TOKEN=ADMIN)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert (
        requests.post(
            relay.url + "/api/create",
            headers=admin,
            json={
                "name": "remote",
                "from": "remote-model",
                "remote_type": "openai",
                "stream": False,
                "remote_host": upstream.url + "/v1",
            },
        ).status_code
        == 200
    )
    keys = {
        name: requests.post(relay.url + "/api/keys", headers=admin, json={"name": name}).json()[
            "key"
        ]
        for name in ("ann", "bob")
    }
    first = requests.post(
        relay.url + "/v1/responses",
        json={"model": "remote", "input": "hi"},
        headers={"Authorization": f"Bearer {keys['ann']}"},
    ).json()
    reference = {
        "model": "remote",
        "input": [{"type": "item_reference", "id": first["output"][0]["id"]}],
    }
    as_bob = requests.post(
        relay.url + "/v1/responses",
        json=reference,
        headers={"Authorization": f"Bearer {keys['bob']}"},
    )
    assert as_bob.status_code == 400
    as_ann = requests.post(
        relay.url + "/v1/responses",
        json=reference,
        headers={"Authorization": f"Bearer {keys['ann']}"},
    )
    assert as_ann.status_code == 200
