"""Tool-call ids on /api/chat (Ollama 0.12.6/0.12.10): `tool_calls[].id` and
`function.index` in answers, `tool_call_id` on tool messages, round-tripped to
the remote's own ids, with the real ollama client."""

import json

import ollama
import requests

from tests.support.fake_upstream import Reply, chunk, completion

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASK = [{"role": "user", "content": "weather in Paris and Rome?"}]


def test_answers_carry_the_remotes_ids_and_indexes(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            json=completion(
                content=None,
                tool_calls=[
                    ("call_paris_7", "get_weather", {"city": "Paris"}),
                    ("call_rome_8", "get_weather", {"city": "Rome"}),
                ],
            )
        )
    )
    answer = ollama.Client(host=gateway.url).chat(model="remote", messages=ASK, tools=[WEATHER])
    calls = answer.message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert upstream.last.body["tools"] == [WEATHER]


def test_streamed_calls_carry_ids_and_indexes_on_the_wire(gateway, remote_model, upstream):
    remote_model()
    call = {
        "index": 0,
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":'},
    }
    upstream.reply(
        Reply(
            sse=[
                chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": "call_def",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"city": "Rome"}',
                                },
                            }
                        ]
                    }
                ),
                chunk({}, finish_reason="tool_calls"),
            ]
        )
    )
    response = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": ASK, "tools": [WEATHER]},
        stream=True,
    )
    lines = [json.loads(line) for line in response.iter_lines() if line]
    (with_calls,) = [line for line in lines if line["message"].get("tool_calls")]
    assert with_calls["message"]["tool_calls"] == [
        {
            "id": "call_abc",
            "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}},
        },
        {
            "id": "call_def",
            "function": {"index": 1, "name": "get_weather", "arguments": {"city": "Rome"}},
        },
    ]
    assert lines[-1]["done"] is True


def test_whole_answer_wire_shape(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            json=completion(content="", tool_calls=[("call_xyz", "get_weather", {"city": "Oslo"})])
        )
    )
    raw = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": ASK, "tools": [WEATHER], "stream": False},
    ).json()
    assert raw["message"]["tool_calls"] == [
        {
            "id": "call_xyz",
            "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}},
        }
    ]


def test_a_call_without_an_id_has_no_id_key(gateway, remote_model, upstream):
    remote_model()
    answer = completion(content="", tool_calls=[("", "get_weather", {"city": "Oslo"})])
    del answer["choices"][0]["message"]["tool_calls"][0]["id"]
    upstream.reply(Reply(json=answer))
    raw = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": ASK, "tools": [WEATHER], "stream": False},
    ).json()
    (call,) = raw["message"]["tool_calls"]
    assert "id" not in call and call["function"]["index"] == 0


def test_ids_and_tool_call_ids_go_back_to_the_remote(gateway, remote_model, upstream):
    remote_model()
    history = ASK + [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_rome_8",
                    "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Rome"}},
                },
                {
                    "id": "call_paris_7",
                    "function": {"index": 1, "name": "get_weather", "arguments": {"city": "Paris"}},
                },
            ],
        },
        # Answered in the other order: only the ids say which is which.
        {"role": "tool", "tool_call_id": "call_paris_7", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_rome_8", "content": "rain"},
    ]
    answer = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": history, "tools": [WEATHER], "stream": False},
    )
    assert answer.status_code == 200, answer.text
    sent = upstream.last.body["messages"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_rome_8", "call_paris_7"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [
        ("call_paris_7", "sunny"),
        ("call_rome_8", "rain"),
    ]


def test_a_tool_call_id_that_is_not_a_string_is_a_400(gateway, remote_model, upstream):
    remote_model()
    answer = requests.post(
        gateway.url + "/api/chat",
        json={
            "model": "remote",
            "messages": ASK + [{"role": "tool", "tool_call_id": 5, "content": "x"}],
        },
    )
    assert answer.status_code == 400
    assert "tool_call_id" in answer.json()["error"]
