"""Pure conversion code: Ollama chat <-> Chat Completions, and passthrough streams."""

import base64

from app.chat.options import fill_defaults, options_to_fields, with_system
from app.surfaces.ollama import chat as ollama_chat
from app.surfaces.openai.chat import ChatChunks
from tests.support.chunk_reading import Reading
from tests.support.fake_upstream import chunk

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 30).decode()


def test_results_pair_with_calls_by_name_when_ids_are_missing():
    request = ollama_chat.chat_request(
        {
            "messages": [
                {"role": "user", "content": "two cities"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"function": {"name": "weather", "arguments": {"city": "Oslo"}}},
                        {"function": {"name": "time", "arguments": {"city": "Oslo"}}},
                    ],
                },
                {"role": "tool", "content": "09:00", "tool_name": "time"},
                {"role": "tool", "content": "cold", "tool_name": "weather"},
            ]
        },
        "m",
    )
    calls = request["messages"][1]["tool_calls"]
    ids = {c["function"]["name"]: c["id"] for c in calls}
    assert len(set(ids.values())) == 2
    assert [m["tool_call_id"] for m in request["messages"][2:]] == [ids["time"], ids["weather"]]


def test_jpeg_images_get_their_mime_type():
    request = ollama_chat.chat_request(
        {"messages": [{"role": "user", "content": "", "images": [JPEG]}]}, "m"
    )
    assert request["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}}
    ]


def test_think_false_is_effort_none_and_no_format_sends_nothing():
    request = ollama_chat.chat_request(
        {"messages": [{"role": "user", "content": "x"}], "think": False, "format": ""}, "m"
    )
    assert request["reasoning_effort"] == "none" and "response_format" not in request


def test_usage_only_chunk_does_not_break_the_stream():
    stream = Reading(ollama_chat.ChatStream("m"))
    assert stream.feed(chunk({"content": "hi"})) != []
    assert stream.feed(chunk({}, finish_reason="stop")) == []
    assert (
        stream.feed(chunk(choices=False, usage={"prompt_tokens": 3, "completion_tokens": 1})) == []
    )
    (last,) = stream.finish()
    assert last["done"] and (last["prompt_eval_count"], last["eval_count"]) == (3, 1)


def test_two_parallel_tool_calls_come_out_in_index_order():
    stream = Reading(ollama_chat.ChatStream("m"))
    stream.feed(
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "b", "function": {"name": "second", "arguments": "{}"}},
                    {"index": 0, "id": "a", "function": {"name": "first", "arguments": '{"x": 1}'}},
                ]
            }
        )
    )
    (line,) = stream.feed(chunk({}, finish_reason="tool_calls"))
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"])
        for c in line["message"]["tool_calls"]
    ] == [("a", "first", {"x": 1}), ("b", "second", {})]


def test_a_stream_that_ends_without_a_finish_reason_is_an_error():
    stream = Reading(ollama_chat.ChatStream("m"))
    stream.feed(chunk({"content": "half"}))
    assert stream.finish() == [
        {"error": "the remote's stream ended before the answer was complete"}
    ]
    chunks = Reading(ChatChunks("m", include_usage=False))
    chunks.feed(chunk({"content": "half"}))
    assert "error" in chunks.finish()[0]


def test_passthrough_keeps_usage_only_for_clients_that_asked():
    usage_only = chunk(choices=False, usage={"prompt_tokens": 1})
    assert Reading(ChatChunks("m", include_usage=False)).feed(usage_only) == []
    assert Reading(ChatChunks("m", include_usage=True)).feed(usage_only)[0]["usage"] == {
        "prompt_tokens": 1
    }


def test_options_and_defaults():
    assert options_to_fields({"num_predict": -1, "stop": "END", "mirostat": 1}) == {"stop": ["END"]}
    assert fill_defaults({"max_completion_tokens": 5}, {"num_predict": 9}) == {
        "max_completion_tokens": 5
    }
    assert fill_defaults({"temperature": None}, {"temperature": 0.3}) == {"temperature": 0.3}
    assert with_system([{"role": "developer", "content": "d"}], "s") == [
        {"role": "developer", "content": "d"}
    ]


def test_tool_call_deltas_without_an_index_continue_the_last_call():
    stream = Reading(ollama_chat.ChatStream("m"))
    stream.feed(
        chunk({"tool_calls": [{"id": "a", "function": {"name": "first", "arguments": ""}}]})
    )
    stream.feed(chunk({"tool_calls": [{"function": {"arguments": '{"x": 1}'}}]}))
    stream.feed(
        chunk({"tool_calls": [{"id": "b", "function": {"name": "second", "arguments": "{}"}}]})
    )
    (line,) = stream.feed(chunk({}, finish_reason="tool_calls"))
    assert [(c["id"], c["function"]["arguments"]) for c in line["message"]["tool_calls"]] == [
        ("a", {"x": 1}),
        ("b", {}),
    ]
