"""/v1/messages over a Chat Completions remote: conversion, events, errors.

The failures of peer bridges listed in DESIGN.md section 3b each have a test:
- thinking_delta inside a text block, reasoning and text in one chunk:
  test_thinking_and_text_in_one_chunk
- a block index reused after a tool call: test_text_then_several_tool_calls_in_one_chunk
- more than one message_delta: check_events (every stream test)
- tool ids outside ^[a-zA-Z0-9_-]+$: test_kimi_tool_ids_are_rewritten_and_restored
- every block closed by content_block_stop, event: lines: check_events, test_stream_over_http
"""

import glob
import json
import os

import pytest
import requests

from app.chat import forwarding
from app.chat.chunks import completion_as_chunk
from app.surfaces.anthropic import request as messages_request
from app.surfaces.anthropic.request import chat_request, estimate_tokens, tool_id_in, tool_id_out
from app.surfaces.anthropic.stream import MessagesStream
from tests.support.chunk_reading import Reading
from tests.support.fake_upstream import Reply, chunk, completion, text_stream
from tests.support.paths import DATA

HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
}
USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 9,
    "total_tokens": 129,
    "prompt_tokens_details": {"cached_tokens": 100},
}


def run(stream, chunks):
    """Every event of a stream: start, each chunk, finish."""
    events = stream.start()
    for item in chunks:
        events += stream.feed(item)
    return events + stream.finish()


def check_events(events):
    """Anthropic's grammar: message_start, ping, blocks one at a time with
    increasing indexes, one message_delta, message_stop. Returns the blocks'
    starts and the message_delta."""
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"] and kinds[-2:] == [
        "message_delta",
        "message_stop",
    ]
    assert kinds.count("message_delta") == 1 and kinds.count("message_start") == 1
    assert events[0]["message"]["usage"]["input_tokens"] == 0
    open_index, starts = None, []
    for event in events[2:-2]:
        if event["type"] == "content_block_start":
            assert open_index is None, "a block opened before the previous one closed"
            assert event["index"] == len(starts)
            open_index = event["index"]
            starts.append(event["content_block"])
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index
            kind = starts[-1]["type"]
            allowed = {
                "text": {"text_delta"},
                "tool_use": {"input_json_delta"},
                "thinking": {"thinking_delta", "signature_delta"},
            }[kind]
            assert event["delta"]["type"] in allowed, (kind, event)
        elif event["type"] == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
        else:
            raise AssertionError(f"unexpected event {event}")
    assert open_index is None
    return starts, events[-2]


def deltas(events, kind, index):
    field = {
        "text_delta": "text",
        "thinking_delta": "thinking",
        "input_json_delta": "partial_json",
    }[kind]
    return "".join(
        e["delta"][field]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == index and e["delta"]["type"] == kind
    )


# --- Request conversion ------------------------------------------------------


def test_request_conversion_of_every_block_type():
    body = {
        "model": "remote",
        "max_tokens": 1000,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "stream": True,
        "system": [
            {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be kind."},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "context_management": {"edits": []},
        "output_config": {"effort": "high"},
        "container": "c1",
        "mcp_servers": [],
        "service_tier": "auto",
        "tools": [
            {
                "name": "Bash",
                "description": "Run a command",
                "defer_loading": False,
                "cache_control": {"type": "ephemeral"},
                "input_schema": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                },
            },
            {"name": "DeferredToolPlaceholder", "defer_loading": True, "input_schema": {}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "system", "content": "cwd: /tmp"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:", "cache_control": {"type": "ephemeral"}},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run it.", "signature": ""},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Running."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    },
                    {
                        "type": "tool_use",
                        "id": tool_id_out("functions.Bash:1"),
                        "name": "Bash",
                        "input": {"command": "pwd"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"},
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_id_out("functions.Bash:1"),
                        "is_error": True,
                        "content": [{"type": "text", "text": "no such dir"}],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_3",
                        "content": [{"type": "tool_reference", "tool_name": "WebFetch"}],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_4",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/jpeg",
                                    "data": "BBBB",
                                },
                            }
                        ],
                    },
                    {"type": "text", "text": "Go on."},
                ],
            },
            {"role": "system", "content": [{"type": "text", "text": "Tools: Bash"}]},
        ],
    }
    # What a model of the default forwarding policy sends its remote.
    chat = forwarding.allowed(chat_request(body, "upstream-model"), None)
    assert chat["messages"] == [
        {"role": "system", "content": "You are terse.\nBe kind.\n\ncwd: /tmp\n\nTools: Bash"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Running.",
            "reasoning_content": "I should run it.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                },
                {
                    "id": "functions.Bash:1",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": '{"command": "pwd"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "a.txt"},
        {"role": "tool", "tool_call_id": "functions.Bash:1", "content": "Error: no such dir"},
        {"role": "tool", "tool_call_id": "toolu_3", "content": "Tool WebFetch is now available."},
        {
            "role": "tool",
            "tool_call_id": "toolu_4",
            "content": "(the tool returned an image; it follows in the next message)",
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Image returned by the tool:"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,BBBB"}},
                {"type": "text", "text": "Go on."},
            ],
        },
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Bash",
                "description": "Run a command",
                "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "DeferredToolPlaceholder",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("required", False)
    assert (
        chat["max_tokens"],
        chat["temperature"],
        chat["top_p"],
        chat["top_k"],
        chat["stop"],
        chat["user"],
        chat["reasoning_effort"],
        chat["model"],
    ) == (1000, 0.3, 0.9, 40, ["END"], "u-1", "medium", "upstream-model")
    for dropped in (
        "context_management",
        "output_config",
        "container",
        "mcp_servers",
        "service_tier",
        "metadata",
        "thinking",
        "stream",
    ):
        assert dropped not in chat


def test_users_left_side_by_side_by_a_system_message_merge():
    chat = chat_request(
        {
            "system": "S",
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "env"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
            ],
        },
        "m",
    )
    assert chat["messages"] == [
        {"role": "system", "content": "S\n\nenv"},
        {"role": "user", "content": "a\nb"},
    ]


@pytest.mark.parametrize(
    "thinking, output_config, effort",
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, None, "high"),
        ({"type": "adaptive", "display": "omitted"}, {"effort": "high"}, "high"),
        ({"type": "adaptive"}, {"effort": "max"}, "max"),
        ({"type": "adaptive"}, None, "medium"),
        ({"type": "disabled"}, None, "none"),
        (None, {"effort": "low"}, None),
    ],
)
def test_thinking_maps_to_reasoning_effort(thinking, output_config, effort):
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": thinking,
        "output_config": output_config,
    }
    assert chat_request(body, "m").get("reasoning_effort") == effort


@pytest.mark.parametrize(
    "choice, expected",
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}),
    ],
)
def test_tool_choice(choice, expected):
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": choice,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
    }
    chat = chat_request(body, "m")
    assert chat["tool_choice"] == expected and "parallel_tool_calls" not in chat


def test_long_user_ids_are_hashed_to_what_openai_takes():
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s" * 36})
    chat = chat_request(
        {"messages": [{"role": "user", "content": "hi"}], "metadata": {"user_id": user_id}}, "m"
    )
    assert len(chat["user"]) == 64 and chat["user"] != user_id[:64]


@pytest.mark.parametrize(
    "provider_id",
    ["call_abc", "functions.Bash:0", "a b/c+d=", "é", "toolu_relay_looks_like_ours", ""],
)
def test_tool_ids_round_trip(provider_id):
    client_id = tool_id_out(provider_id)
    assert messages_request._SAFE_ID.match(client_id)
    if provider_id:
        assert tool_id_in(client_id) == provider_id
    assert tool_id_in("toolu_01ABC") == "toolu_01ABC"


def test_count_estimate_is_characters_over_four_and_images_flat():
    chat = chat_request(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "x" * 4000},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": "A" * 400000,
                            },
                        },
                    ],
                }
            ]
        },
        "m",
    )
    estimate = estimate_tokens(chat)
    assert 1000 + messages_request.IMAGE_TOKENS < estimate < 1100 + messages_request.IMAGE_TOKENS


# --- Stream conversion -------------------------------------------------------


def test_thinking_and_text_in_one_chunk():
    stream = Reading(MessagesStream("remote"))
    events = run(
        stream,
        [
            chunk({"role": "assistant", "reasoning_content": "Hmm.", "content": "Hi"}),
            chunk({"reasoning": " more", "content": " there"}),
            chunk({}, finish_reason="stop"),
            chunk(choices=False, usage=USAGE),
        ],
    )
    starts, delta = check_events(events)
    # The second chunk again carries both: reasoning reopens after the text.
    assert [s["type"] for s in starts] == ["thinking", "text", "thinking", "text"]
    assert deltas(events, "thinking_delta", 0) == "Hmm."
    assert deltas(events, "text_delta", 1) == "Hi"
    signatures = [e for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert [e["index"] for e in signatures] == [0, 2]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 20,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
    }
    assert stream.message["content"][0] == {
        "type": "thinking",
        "thinking": "Hmm.",
        "signature": stream.message["content"][0]["signature"],
    }
    assert stream.usage == USAGE  # the chat usage, which telemetry counts


def test_text_then_several_tool_calls_in_one_chunk():
    stream = Reading(MessagesStream("remote"))
    events = run(
        stream,
        [
            chunk({"role": "assistant", "content": "Let me check."}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "Bash", "arguments": '{"command":'},
                        },
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "Read", "arguments": '{"path": "a"}'},
                        },
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "ls"}'}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 2,
                            "id": "call_c",
                            "type": "function",
                            "function": {"name": "Glob", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({}, finish_reason="tool_calls"),
            chunk(choices=False, usage=USAGE),
        ],
    )
    starts, delta = check_events(events)
    assert [s["type"] for s in starts] == ["text", "tool_use", "tool_use", "tool_use"]
    assert [(s.get("id"), s.get("name")) for s in starts[1:]] == [
        ("call_a", "Bash"),
        ("call_b", "Read"),
        ("call_c", "Glob"),
    ]
    assert deltas(events, "input_json_delta", 1) == '{"command": "ls"}'
    assert deltas(events, "input_json_delta", 2) == '{"path": "a"}'
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert [b.get("input") for b in stream.message["content"]] == [
        None,
        {"command": "ls"},
        {"path": "a"},
        {},
    ]


def test_tool_arguments_sent_as_an_object():
    stream = Reading(MessagesStream("remote"))
    events = run(
        stream,
        [
            chunk(
                {
                    "tool_calls": [
                        {"id": "c1", "function": {"name": "Bash", "arguments": {"command": "ls"}}}
                    ]
                }
            ),
            chunk({}, finish_reason="stop"),
        ],
    )
    check_events(events)
    assert stream.message["content"][0]["input"] == {"command": "ls"}
    assert stream.message["stop_reason"] == "tool_use"


def test_usage_only_final_chunk_and_empty_choices():
    stream = Reading(MessagesStream("remote"))
    events = run(stream, [chunk(choices=False), *text_stream("a", "b", usage=USAGE)])
    starts, delta = check_events(events)
    assert [s["type"] for s in starts] == ["text"]
    assert delta["usage"]["output_tokens"] == 9


def test_length_is_max_tokens_and_a_named_stop_string_is_stop_sequence():
    stream = Reading(MessagesStream("remote"))
    _, delta = check_events(run(stream, text_stream("cut", finish_reason="length")))
    assert delta["delta"]["stop_reason"] == "max_tokens"
    stream = Reading(MessagesStream("remote", stop_sequences=["END"]))
    events = stream.start() + stream.feed(chunk({"content": "done "}))
    final = chunk({})
    final["choices"][0].update(finish_reason="stop", stop_reason="END")  # vLLM names it
    _, delta = check_events(events + stream.feed(final) + stream.finish())
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    assert stream.message["stop_sequence"] == "END"


def test_a_stream_without_finish_reason_ends_with_an_error_event():
    stream = Reading(MessagesStream("remote"))
    events = run(stream, [chunk({"content": "half"})])
    assert events[-1] == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "the remote's stream ended before the answer was complete",
        },
    }


def test_non_streaming_answer_builds_the_same_message():
    answer = completion(
        content="Sure.",
        reasoning="Think.",
        tool_calls=[
            ("functions.Bash:0", "Bash", {"command": "echo hi"}),
            ("functions.Read:1", "Read", {"path": "x"}),
        ],
        usage=USAGE,
    )
    stream = Reading(MessagesStream("remote"))
    check_events(run(stream, [completion_as_chunk(answer)]))
    message = stream.message
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    ids = [b["id"] for b in message["content"][2:]]
    assert all(messages_request._SAFE_ID.match(i) for i in ids)
    assert [tool_id_in(i) for i in ids] == ["functions.Bash:0", "functions.Read:1"]
    assert message["stop_reason"] == "tool_use"


# --- Claude Code's own requests ---------------------------------------------

CAPTURES = sorted(glob.glob(os.path.join(DATA, "claude_code_request*.json")))


@pytest.mark.parametrize("path", CAPTURES, ids=os.path.basename)
def test_claude_code_requests_convert(path):
    with open(path) as handle:
        body = json.load(handle)
    chat = chat_request(body, "upstream-model")
    assert chat["messages"][0]["role"] == "system"
    assert [m["role"] for m in chat["messages"][1:]].count("system") == 0
    assert all("$schema" not in t["function"]["parameters"] for t in chat.get("tools", []))
    for message in chat["messages"]:
        for call in message.get("tool_calls") or []:
            assert json.loads(call["function"]["arguments"]) is not None
    # adaptive thinking with output_config.effort; the 12 tools, none dropped.
    assert chat["reasoning_effort"] == body["output_config"]["effort"]
    assert len(chat["tools"]) == len(body["tools"])
    assert len(chat["user"]) <= 64


@pytest.mark.parametrize("path", CAPTURES, ids=os.path.basename)
def test_claude_code_requests_are_answered(gateway, remote_model, upstream, path):
    """As sent (stream: true), and as Claude Code resends them after a failed stream."""
    remote_model()
    with open(path) as handle:
        body = dict(json.load(handle), model="remote")
    for streaming in (True, False):
        response = requests.post(
            gateway.url + "/v1/messages?beta=true",
            headers=HEADERS,
            json=dict(body, stream=streaming),
            timeout=30,
        )
        assert response.status_code == 200, response.text
    sent = upstream.last.body
    assert sent["max_tokens"] == 32000 and sent["messages"][0]["role"] == "system"
    if "tool_followup" in path:
        assert sent["messages"][-1] == {
            "role": "tool",
            "tool_call_id": "toolu_1",
            "content": "cc-ok",
        }


def test_a_models_num_predict_caps_max_tokens(gateway, remote_model, upstream):
    remote_model("capped", parameters={"num_predict": 8192})
    post(gateway, model="capped", max_tokens=32000)
    assert upstream.last.body["max_tokens"] == 8192
    post(gateway, model="capped", max_tokens=100)
    assert upstream.last.body["max_tokens"] == 100


# --- Over HTTP, through gunicorn ---------------------------------------------


def post(gateway, path="/v1/messages", headers=HEADERS, **body):
    return requests.post(
        gateway.url + path,
        headers=headers,
        timeout=30,
        json={
            "model": "remote",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}],
            **body,
        },
    )


def sse_events(response):
    """(event name, data) pairs; every event must have both."""
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        data = json.loads(lines[1][len("data: ") :])
        assert lines[0][len("event: ") :] == data["type"]
        events.append(data)
    return events


def test_non_streaming_over_http(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(json=completion(content="Hello!", usage=USAGE)))
    response = post(gateway, system="Be brief.", metadata={"user_id": "u"})
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["id"].startswith("msg_") and response.headers["request-id"]
    assert {
        k: message[k] for k in ("type", "role", "model", "stop_reason", "stop_sequence", "content")
    } == {
        "type": "message",
        "role": "assistant",
        "model": "remote",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "content": [{"type": "text", "text": "Hello!"}],
    }
    assert message["usage"]["cache_read_input_tokens"] == 100
    assert upstream.last.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert upstream.last.body["max_tokens"] == 100 and upstream.last.path == "/v1/chat/completions"


def test_stream_over_http(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("Hel", "lo", reasoning=["Th", "ink"], usage=USAGE)))
    response = post(gateway, stream=True)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(response)
    starts, delta = check_events(events)
    assert [s["type"] for s in starts] == ["thinking", "text"]
    assert deltas(events, "text_delta", 1) == "Hello"
    assert upstream.last.body["stream_options"] == {"include_usage": True}


def test_an_ollama_remote_is_reached_through_its_v1(gateway, remote_model, upstream):
    remote_model("local-ollama", remote_type="ollama", path="")
    response = post(gateway, model="local-ollama")
    assert response.status_code == 200, response.text
    assert upstream.last.path == "/v1/chat/completions"


def test_kimi_tool_ids_are_rewritten_and_restored(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            sse=[
                chunk(
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "functions.Bash:0",
                                "type": "function",
                                "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                            }
                        ],
                    }
                ),
                chunk({}, finish_reason="tool_calls"),
            ]
        )
    )
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    events = sse_events(post(gateway, stream=True, tools=tools))
    starts, _ = check_events(events)
    client_id = starts[0]["id"]
    assert client_id != "functions.Bash:0" and messages_request._SAFE_ID.match(client_id)
    post(
        gateway,
        tools=tools,
        messages=[
            {"role": "user", "content": "list"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": client_id,
                        "name": "Bash",
                        "input": {"command": "ls"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": client_id, "content": "a.txt"}],
            },
        ],
    )
    sent = upstream.last.body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "functions.Bash:0"
    assert sent[2] == {"role": "tool", "tool_call_id": "functions.Bash:0", "content": "a.txt"}


def test_count_tokens(gateway, remote_model, upstream):
    remote_model()
    response = requests.post(
        gateway.url + "/v1/messages/count_tokens?beta=true",
        headers=HEADERS,
        json={"model": "remote", "messages": [{"role": "user", "content": "x" * 400}]},
    )
    assert response.status_code == 200, response.text
    assert 100 < response.json()["input_tokens"] < 130
    assert upstream.requests == []  # counted here, not upstream


def anthropic_error(response, status, kind):
    assert response.status_code == status, response.text
    body = response.json() if callable(response.json) else response.json  # requests or Flask
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    return body["error"]["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "narrator", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop_sequences": [1]}, "stop_sequences"),
        (
            {
                "tools": [{"name": "a", "input_schema": {}}],
                "tool_choice": {"type": "tool", "name": "b"},
            },
            "tool_choice.name",
        ),
        ({"model": "bad name!"}, "model"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gateway, remote_model, upstream, body, field):
    remote_model()
    message = anthropic_error(post(gateway, **body), 400, "invalid_request_error")
    assert field in message


def test_unknown_model_is_a_404(gateway, remote_model, upstream):
    message = anthropic_error(post(gateway, model="no-such-model"), 404, "not_found_error")
    assert "no-such-model" in message
    anthropic_error(
        requests.post(gateway.url + "/v1/messages/nope", json={}), 404, "not_found_error"
    )


@pytest.mark.parametrize(
    "upstream_status, status, kind",
    [
        (400, 400, "invalid_request_error"),
        (404, 404, "not_found_error"),
        (429, 429, "rate_limit_error"),
        (500, 500, "api_error"),
        (503, 503, "overloaded_error"),
        (529, 529, "overloaded_error"),
        (502, 502, "api_error"),
        # The remote refused the operator's key: not the client's to fix (README).
        (401, 403, "permission_error"),
        (403, 403, "permission_error"),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
def test_upstream_errors_keep_their_status(
    gateway, remote_model, upstream, upstream_status, status, kind, streaming
):
    remote_model()
    # A Retry-After beyond RELAY_RETRY_MAX_WAIT: the relay passes the error on at once.
    upstream.reply(
        Reply(
            status=upstream_status,
            json={"error": {"message": "nope"}},
            headers={"Retry-After": "3600"},
        )
    )
    message = anthropic_error(post(gateway, stream=streaming), status, kind)
    assert message.startswith(f"API error ({upstream_status}): nope")


def test_failure_mid_stream_is_an_error_event(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("one", "two", "three"), cut_after=3))
    events = sse_events(post(gateway, stream=True))
    assert events[0]["type"] == "message_start"
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"
    assert "broke off" in events[-1]["error"]["message"]
    assert not [e for e in events if e["type"] in ("message_delta", "message_stop")]


def test_access_errors_take_anthropic_shape(make_app):
    """The access layer's 401/403/429, raised before the view."""
    admin = "admin-token-0123456789abcdef"
    app = make_app(RELAY_ADMIN_TOKEN=admin)
    try:
        check_access_errors(app.test_client(), admin)
    finally:
        # Written now, while this test's database exists, not at exit.
        app.extensions["relay.flush_usage"]()


def check_access_errors(client, admin):
    body = {"model": "remote", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    response = client.post("/v1/messages", json=body)
    anthropic_error(response, 401, "authentication_error")
    assert response.headers["request-id"] == response.headers["X-Request-ID"]
    anthropic_error(
        client.post("/v1/messages", json=body, headers={"x-api-key": "wrong"}),
        401,
        "authentication_error",
    )
    created = client.post(
        "/api/keys",
        headers={"Authorization": f"Bearer {admin}"},
        json={"name": "alice", "models": ["other"], "rpm": 1},
    )
    key = created.get_json()["key"]
    response = client.post("/v1/messages", json=body, headers={"x-api-key": key})
    assert "remote" in anthropic_error(response, 403, "permission_error")
    other = dict(body, model="other")
    # Key accepted as x-api-key and as a bearer token; the rpm of 1 is spent on the first.
    anthropic_error(
        client.post("/v1/messages", json=other, headers={"x-api-key": key}), 404, "not_found_error"
    )
    response = client.post("/v1/messages", json=other, headers={"Authorization": f"Bearer {key}"})
    anthropic_error(response, 429, "rate_limit_error")
    assert response.headers["Retry-After"]
