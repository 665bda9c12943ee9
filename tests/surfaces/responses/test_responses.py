"""/v1/responses over a Chat Completions remote: conversion, output, streaming.

Each failure of peer gateways listed in DESIGN.md section 4 has its test here
or in test_store.py:
- previous_response_id stored late: test_an_immediate_follow_up_to_a_stream_continues_it
- created id differs from completed id: check_sequence (every stream test)
- reasoning without a summary list / as empty text deltas: test_text_stream_events
- usage-only final chunk: test_text_before_a_tool_call_gets_its_own_closed_item
- no response.failed on a mid-stream error: test_failure_mid_stream_ends_with_response_failed
- json_schema dropped: test_json_schema_format_reaches_the_remote
- GET after DELETE is 500: test_delete_then_get_is_404_not_500
- tool-call id only in the first chunk: test_text_before_a_tool_call_gets_its_own_closed_item
- text before a tool call shares its output_index: the same test
- function_call_output as a list of parts: test_request_conversion
- cached/reasoning tokens always 0: test_non_streaming_output_items_and_usage
"""

import gzip
import json
import os
import shlex
import subprocess

import openai
import pytest
import requests
import zstandard

from tests.support.fake_upstream import Reply, chunk, completion, text_stream
from tests.support.openai_schema import validate, validate_stream_event
from tests.support.paths import DATA

SEED_CURL = """curl http://localhost:11434/v1/responses -d '{
  "model": "dashscope-model",
  "input": "Write a short poem about the color blue"
}'"""

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": False,
}


def sdk(gateway):
    return openai.OpenAI(
        base_url=gateway.url + "/v1/",
        api_key="ollama",
        _strict_response_validation=True,
        max_retries=0,
    )


def post(gateway, **body):
    return requests.post(gateway.url + "/v1/responses", json={"model": "remote", **body})


def events_of(response):
    """The JSON events of a streamed Responses answer, checked against the spec."""
    events = []
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            event = json.loads(line[len(b"data: ") :])
            validate_stream_event(event)
            events.append(event)
    return events


def stream(gateway, **body):
    response = requests.post(
        gateway.url + "/v1/responses", stream=True, json={"model": "remote", "stream": True, **body}
    )
    assert response.status_code == 200, response.text
    return events_of(response)


def test_seed_curl_example(gateway, remote_model, upstream):
    remote_model("dashscope-model")
    command = SEED_CURL.replace("http://localhost:11434", gateway.url)
    body = json.loads(
        subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30).stdout
    )
    validate(body, "Response")
    assert body["status"] == "completed" and body["id"].startswith("resp_")
    assert body["output"][0]["content"][0]["text"] == "Hello from upstream"
    assert upstream.last.body["messages"] == [
        {"role": "user", "content": "Write a short poem about the color blue"}
    ]


def test_seed_python_example(gateway, remote_model, upstream):
    remote_model("dashscope-model")
    response = sdk(gateway).responses.create(
        model="dashscope-model", input="Explain quantum computing in simple terms"
    )
    assert response.output_text == "Hello from upstream"


def test_request_conversion(gateway, remote_model, upstream):
    remote_model()
    post(
        gateway,
        instructions="Be brief.",
        input=[
            {"type": "message", "role": "developer", "content": "Use metric units."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather here? "},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "I should call the tool."}],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Oslo"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city": "Bergen"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "wet"}],
            },
        ],
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        max_output_tokens=300,
        temperature=0.4,
        top_p=0.9,
        safety_identifier="user-7",
        metadata={"ticket": "42"},
    )
    sent = upstream.last.body
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief.\n\nUse metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here? "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "I should call the tool.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Bergen"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "cold"},
        {"role": "tool", "tool_call_id": "call_2", "content": "wet"},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER["parameters"],
                "strict": False,
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (
        sent["parallel_tool_calls"],
        sent["max_tokens"],
        sent["temperature"],
        sent["top_p"],
        sent["user"],
    ) == (False, 300, 0.4, 0.9, "user-7")
    assert "metadata" not in sent


def test_json_schema_format_reaches_the_remote(gateway, remote_model, upstream):
    remote_model()
    schema = {
        "type": "object",
        "properties": {"color": {"type": "string"}},
        "required": ["color"],
        "additionalProperties": False,
    }
    response = sdk(gateway).responses.create(
        model="remote",
        input="a color",
        text={"format": {"type": "json_schema", "name": "color", "schema": schema, "strict": True}},
    )
    assert upstream.last.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "color", "schema": schema, "strict": True},
    }
    assert response.text.format.type == "json_schema"
    post(gateway, input="x", text={"format": {"type": "json_object"}})
    assert upstream.last.body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh"])
def test_every_reasoning_effort_is_accepted(gateway, remote_model, upstream, effort):
    remote_model()
    response = sdk(gateway).responses.create(
        model="remote", input="x", reasoning={"effort": effort}
    )
    assert response.reasoning.effort == effort
    # The fake upstream is not OpenAI: it gets the nearest level it knows.
    expected = {"minimal": "low", "xhigh": "high"}.get(effort, effort)
    assert upstream.last.body.get("reasoning_effort") == expected


def test_namespace_tools_flatten_and_come_back_split(gateway, remote_model, upstream):
    remote_model()
    namespace = {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "agents",
        "tools": [
            {
                "type": "function",
                "name": "close_agent",
                "parameters": {"type": "object", "properties": {}},
            }
        ],
    }
    upstream.reply(
        Reply(
            json=completion(
                content=None, tool_calls=[("call_9", "multi_agent_v1__close_agent", {"id": "a1"})]
            )
        )
    )
    body = post(gateway, input="close it", tools=[namespace, {"type": "web_search"}]).json()
    assert [t["function"]["name"] for t in upstream.last.body["tools"]] == [
        "multi_agent_v1__close_agent"
    ]
    (call,) = body["output"]
    assert (call["type"], call["namespace"], call["name"], call["call_id"]) == (
        "function_call",
        "multi_agent_v1",
        "close_agent",
        "call_9",
    )
    assert json.loads(call["arguments"]) == {"id": "a1"}
    validate(body, "Response")


def test_hosted_tool_required_by_tool_choice_is_refused(gateway, remote_model, upstream):
    remote_model()
    response = post(
        gateway, input="x", tools=[{"type": "web_search"}], tool_choice={"type": "web_search"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tool_choice"
    assert upstream.requests == []


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compressed_request_bodies(gateway, remote_model, upstream, encoding):
    remote_model()
    raw = json.dumps({"model": "remote", "input": "compressed hello"}).encode()
    data = gzip.compress(raw) if encoding == "gzip" else zstandard.ZstdCompressor().compress(raw)
    response = requests.post(
        gateway.url + "/v1/responses",
        data=data,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status_code == 200, response.text
    assert upstream.last.body["messages"][0]["content"] == "compressed hello"


def test_non_streaming_output_items_and_usage(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            json=completion(
                content="Checking.",
                reasoning="Need weather.",
                tool_calls=[
                    ("call_a", "get_weather", {"city": "Oslo"}),
                    ("call_b", "get_weather", {"city": "Rome"}),
                ],
                usage={
                    "prompt_tokens": 100,
                    "completion_tokens": 40,
                    "total_tokens": 140,
                    "prompt_tokens_details": {"cached_tokens": 64},
                    "completion_tokens_details": {"reasoning_tokens": 25},
                },
            )
        )
    )
    response = sdk(gateway).responses.create(model="remote", input="weather?", tools=[WEATHER])
    assert [item.type for item in response.output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    reasoning, message, first, second = response.output
    assert reasoning.summary[0].text == "Need weather."
    assert message.content[0].text == "Checking."
    assert (first.call_id, first.name, json.loads(first.arguments)) == (
        "call_a",
        "get_weather",
        {"city": "Oslo"},
    )
    assert first.id != second.id and second.call_id == "call_b"
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (100, 40, 140)
    assert usage.input_tokens_details.cached_tokens == 64
    assert usage.output_tokens_details.reasoning_tokens == 25


def test_length_stop_is_incomplete(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(json=completion(content="partial", finish_reason="length")))
    body = post(gateway, input="long", max_output_tokens=5).json()
    validate(body, "Response")
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}


def check_sequence(events):
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[0]["response"]["id"] == events[-1]["response"]["id"]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert [e["output_index"] for e in added] == list(range(len(added)))
    assert [e["item"]["id"] for e in added] == [e["item"]["id"] for e in done]
    return done


def test_text_stream_events(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("Hel", "lo", reasoning=["Think", "ing."])))
    events = stream(gateway, input="hi")
    done = check_sequence(events)
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] == "response.completed"
    assert [d["item"]["type"] for d in done] == ["reasoning", "message"]
    assert done[0]["item"]["summary"] == [{"type": "summary_text", "text": "Thinking."}]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Hel", "lo"]
    assert not any(e["type"] == "response.output_text.delta" and e["delta"] == "" for e in events)
    final = events[-1]["response"]
    assert final["output"] == [d["item"] for d in done]
    assert final["usage"]["total_tokens"] == 18


def test_text_before_a_tool_call_gets_its_own_closed_item(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            sse=[
                chunk({"role": "assistant", "content": "Let me look."}),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_x",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ]
                    }
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}),
                chunk({}, finish_reason="tool_calls"),
                chunk(
                    choices=False,
                    usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
                ),
            ]
        )
    )
    events = stream(gateway, input="weather?", tools=[WEATHER])
    done = check_sequence(events)
    message, call = (d["item"] for d in done)
    assert message["type"] == "message" and message["status"] == "completed"
    assert (call["call_id"], call["name"], call["arguments"]) == (
        "call_x",
        "get_weather",
        '{"city": "Oslo"}',
    )
    arguments_done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert arguments_done[0]["arguments"] == '{"city": "Oslo"}'
    assert events[-1]["response"]["usage"]["output_tokens"] == 4


def test_sdk_stream_helper_returns_the_final_response(gateway, remote_model, upstream):
    remote_model()
    client = sdk(gateway)
    upstream.reply(Reply(sse=text_stream("Blue ", "sky.", reasoning=["Poem..."])))
    with client.responses.stream(model="remote", input="poem") as events:
        texts = [e.delta for e in events if e.type == "response.output_text.delta"]
        final = events.get_final_response()
    assert texts == ["Blue ", "sky."] and final.output_text == "Blue sky."
    assert final.output[0].type == "reasoning"

    upstream.reply(
        Reply(
            sse=[
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_s",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ]
                    }
                ),
                chunk(
                    {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Nice"}'}}]}
                ),
                chunk({}, finish_reason="tool_calls"),
            ]
        )
    )
    with client.responses.stream(model="remote", input="weather", tools=[WEATHER]) as events:
        final = events.get_final_response()
    (call,) = final.output
    assert (call.type, call.name, call.arguments) == (
        "function_call",
        "get_weather",
        '{"city": "Nice"}',
    )


def test_failure_mid_stream_ends_with_response_failed(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("one", "two", "three"), cut_after=3))
    events = stream(gateway, input="hi")
    check_sequence(events)
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert "broke off" in failed["response"]["error"]["message"]


def test_client_disconnect_closes_the_upstream(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=[chunk({"role": "assistant", "content": "Hel"})], hold=True))
    response = requests.post(
        gateway.url + "/v1/responses",
        stream=True,
        json={"model": "remote", "stream": True, "input": "hi"},
    )
    lines = response.iter_lines()
    while b"output_text.delta" not in next(lines):
        pass
    response.close()
    assert upstream.client_went_away.wait(20), "the relay kept the upstream stream open"


@pytest.mark.parametrize(
    "status, error", [(401, openai.AuthenticationError), (404, openai.NotFoundError)]
)
def test_upstream_errors(gateway, remote_model, upstream, status, error):
    remote_model()
    upstream.reply(Reply(status=status, json={"error": {"message": "no such model"}}))
    with pytest.raises(error) as excinfo:
        sdk(gateway).responses.create(model="remote", input="hi")
    assert excinfo.value.body["message"] == f"API error ({status}): no such model"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"input": [{"type": "telepathy"}]}, "input[0].type"),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"input": [{"type": "message", "role": "narrator", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"type": "message", "role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": 42}, "input"),
        ({}, "input"),
        ({"input": "x", "tools": [{"type": "teleport"}]}, "tools[0].type"),
        ({"input": "x", "reasoning": {"effort": "maximum"}}, "reasoning.effort"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "temperature": "hot"}, "temperature"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ],
)
def test_bad_input_names_the_parameter(gateway, remote_model, upstream, body, param):
    remote_model()
    response = post(gateway, **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    validate(response.json(), "ErrorResponse")
    assert upstream.requests == []


@pytest.mark.parametrize(
    "capture",
    [
        "codex_request",
        "codex_request_tool_followup",
        "codex_request_reasoning_followup",
        "codex_request_catalog_model",
    ],
)
def test_codex_requests_convert(gateway, remote_model, upstream, capture):
    """Requests Codex CLI 0.169 sent (tests/support/data): 40 KB, nine tools, a namespace,
    web_search."""
    remote_model()
    with open(os.path.join(DATA, f"{capture}.json")) as handle:
        body = json.load(handle)
    response = requests.post(
        gateway.url + "/v1/responses", stream=True, json=dict(body, model="remote")
    )
    assert response.status_code == 200, response.text
    events = events_of(response)
    assert events[-1]["type"] == "response.completed"
    sent = upstream.last.body
    names = {tool["function"]["name"] for tool in sent["tools"]}
    assert "exec_command" in names
    assert not names & {"web_search", "tool_search"}
    custom = [t for t in body["tools"] if t["type"] == "custom"]
    assert {t["name"] for t in custom} <= names  # apply_patch, as a function taking `input`
    assert sent["messages"][0]["role"] == "system"
    assert [m["role"] for m in sent["messages"]].count("system") == 1
    calls = [i for i in body["input"] if i.get("type") == "function_call"]
    if calls:
        assistant = next(m for m in sent["messages"] if m.get("tool_calls"))
        assert assistant["tool_calls"][0]["id"] == calls[0]["call_id"]
        assert sent["messages"][-1]["role"] == "tool"
    if any(i.get("type") == "reasoning" for i in body["input"]):
        assert assistant.get("reasoning_content")


def test_length_stop_in_a_stream_ends_with_response_incomplete(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("cut sh", finish_reason="length")))
    events = stream(gateway, input="long story", max_output_tokens=3)
    check_sequence(events)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files.",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}


def test_custom_tools_travel_as_one_string_argument(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            sse=[
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_p",
                                "type": "function",
                                "function": {"name": "apply_patch", "arguments": ""},
                            }
                        ]
                    }
                ),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "function": {"arguments": json.dumps({"input": PATCH})[:20]},
                            }
                        ]
                    }
                ),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "function": {"arguments": json.dumps({"input": PATCH})[20:]},
                            }
                        ]
                    }
                ),
                chunk({}, finish_reason="tool_calls"),
            ]
        )
    )
    events = stream(gateway, input="add hello.txt", tools=[APPLY_PATCH])
    (done,) = check_sequence(events)
    assert done["item"]["type"] == "custom_tool_call"
    assert (done["item"]["call_id"], done["item"]["name"], done["item"]["input"]) == (
        "call_p",
        "apply_patch",
        PATCH,
    )
    assert [e["input"] for e in events if e["type"] == "response.custom_tool_call_input.done"] == [
        PATCH
    ]
    (tool,) = upstream.last.body["tools"]
    assert tool["function"]["name"] == "apply_patch"
    assert tool["function"]["parameters"]["required"] == ["input"]
    assert "start: /.+/" in tool["function"]["description"]

    post(
        gateway,
        tools=[APPLY_PATCH],
        input=[
            {
                "type": "custom_tool_call",
                "call_id": "call_p",
                "name": "apply_patch",
                "input": PATCH,
            },
            {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"},
        ],
    )
    assistant, result = upstream.last.body["messages"]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"input": PATCH}
    assert result == {"role": "tool", "tool_call_id": "call_p", "content": "Done!"}


def test_echoed_request_fields_keep_the_response_valid(gateway, remote_model, upstream):
    remote_model()
    namespace = {
        "type": "namespace",
        "name": "agents",
        "tools": [{"type": "function", "name": "close", "parameters": {"type": "object"}}],
    }
    bare = {"type": "function", "name": "ping"}
    response = sdk(gateway).responses.create(
        model="remote",
        input="x",
        tools=[bare, namespace, {"type": "web_search"}],
        text={"format": None},
        truncation="auto",
    )
    assert response.tools[0].strict is True and response.text.format.type == "text"
    events = stream(gateway, input="x", tools=[bare, namespace], text={"format": None})
    validate(events[-1]["response"], "Response")


@pytest.mark.parametrize(
    "body, param",
    [
        ({"tools": [1]}, "tools[0]"),
        ({"tools": [{"type": ["function"]}]}, "tools[0].type"),
        ({"tools": [{"type": "namespace", "name": "ns", "tools": "x"}]}, "tools[0].tools"),
        ({"tools": [{"type": "namespace", "name": "ns", "tools": [1]}]}, "tools[0].tools[0]"),
        (
            {"tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "function"}]}]},
            "tools[0].tools[0].name",
        ),
        ({"tools": [{"type": "custom", "name": "p", "format": "bad"}]}, "tools[0].format"),
        ({"tools": [{"type": "custom", "name": "p", "description": 5}]}, "tools[0].description"),
        ({"tools": [{"type": "function", "name": "f", "parameters": "x"}]}, "tools[0].parameters"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"tool_choice": {"type": "function", "name": 5}}, "tool_choice.name"),
        ({"tool_choice": 7}, "tool_choice"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]},
            "input[0].content[0].text",
        ),
        (
            {
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_text", "text": 5}],
                    }
                ]
            },
            "input[0].output[0].text",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "c", "output": [1]}]},
            "input[0].output[0]",
        ),
        ({"input": [{"type": "reasoning", "summary": "x"}]}, "input[0].summary"),
        ({"input": [{"type": "reasoning", "summary": [1]}]}, "input[0].summary[0]"),
        (
            {"input": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": 5}]}]},
            "input[0].summary[0].text",
        ),
        (
            {
                "input": [
                    {
                        "type": "function_call",
                        "call_id": "c",
                        "name": "f",
                        "arguments": "{}",
                        "namespace": ["x"],
                    }
                ]
            },
            "input[0].namespace",
        ),
        ({"input": [{"type": 5}]}, "input[0].type"),
        ({"truncation": "sometimes"}, "truncation"),
    ],
)
def test_malformed_items_and_tools_are_400_not_500(gateway, remote_model, upstream, body, param):
    remote_model()
    response = post(gateway, **{"input": "x", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert upstream.requests == []
