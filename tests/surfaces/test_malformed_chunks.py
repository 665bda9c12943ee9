"""A remote's malformed tool call, on every surface (issue 18, hole 7).

A Chat Completions remote whose `tool_calls` holds an item that is not an
object (a string, null, a list) used to give 500 and a traceback on
/v1/responses, /v1/messages and /api/chat, and "internal error" on their
streams. The item says nothing a client could act on (no id, no name), so it
is dropped where the remote's answer is read (app/chat/chunks.py), as items
of `choices` that are not objects always were: every surface answers 200 with
the rest of the answer, the well-formed tool call beside it included.
Through gunicorn, with the real clients.
"""

import json

import anthropic
import ollama
import openai
import pytest
import requests

from tests.support.fake_upstream import Reply, chunk, completion

BAD_ITEMS = {"a string": "get_weather", "null": None, "a list": ["get_weather", "{}"]}
GOOD_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}
TOOL = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
USAGE = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}


def whole_answer(bad):
    answer = completion(content="Let me check.", finish_reason="tool_calls", usage=USAGE)
    answer["choices"][0]["message"]["tool_calls"] = [bad, GOOD_CALL]
    return Reply(json=answer)


def streamed_answer(bad):
    good = dict(GOOD_CALL, index=1)
    return Reply(
        sse=[
            chunk({"role": "assistant", "content": "Let me check."}),
            chunk({"tool_calls": [bad, good]}),
            chunk({"tool_calls": [bad]}),
            chunk({}, finish_reason="tool_calls"),
            chunk(choices=False, usage=USAGE),
        ]
    )


def openai_sdk(gateway):
    return openai.OpenAI(
        base_url=gateway.url + "/v1/",
        api_key="ollama",
        _strict_response_validation=True,
        max_retries=0,
    )


def chat_completions(gateway, stream):
    client = openai_sdk(gateway)
    tools = [{"type": "function", "function": TOOL}]
    messages = [{"role": "user", "content": "Oslo?"}]
    if not stream:
        message = client.chat.completions.create(
            model="remote", messages=messages, tools=tools
        ).choices[0]
        message = message.message
        return message.content, [
            (c.function.name, c.function.arguments) for c in message.tool_calls
        ]
    text, calls = "", {}
    for part in client.chat.completions.create(
        model="remote", messages=messages, tools=tools, stream=True
    ):
        for choice in part.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                name, arguments = calls.get(call.index, ("", ""))
                calls[call.index] = (
                    name + (call.function.name or ""),
                    arguments + (call.function.arguments or ""),
                )
    return text, [calls[index] for index in sorted(calls)]


def responses(gateway, stream):
    client = openai_sdk(gateway)
    tools = [{"type": "function", "strict": False, **TOOL}]
    if stream:
        with client.responses.stream(model="remote", input="Oslo?", tools=tools) as events:
            for _ in events:
                pass
            response = events.get_final_response()
    else:
        response = client.responses.create(model="remote", input="Oslo?", tools=tools)
    assert response.status == "completed"
    calls = [(i.name, i.arguments) for i in response.output if i.type == "function_call"]
    return response.output_text, calls


def messages(gateway, stream):
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key="sk-ant-any", max_retries=0, _strict_response_validation=True
    )
    body = {
        "model": "remote",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Oslo?"}],
        "tools": [{"name": TOOL["name"], "input_schema": TOOL["parameters"]}],
    }
    if stream:
        with client.messages.stream(**body) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**body)
    assert message.stop_reason == "tool_use"
    text = "".join(b.text for b in message.content if b.type == "text")
    calls = [(b.name, json.dumps(b.input)) for b in message.content if b.type == "tool_use"]
    return text, calls


def api_chat(gateway, stream):
    client = ollama.Client(host=gateway.url)
    body = {
        "model": "remote",
        "messages": [{"role": "user", "content": "Oslo?"}],
        "tools": [{"type": "function", "function": TOOL}],
    }
    parts = list(client.chat(**body, stream=True)) if stream else [client.chat(**body)]
    assert parts[-1].done
    text = "".join(p.message.content or "" for p in parts)
    calls = [
        (c.function.name, json.dumps(c.function.arguments))
        for p in parts
        for c in p.message.tool_calls or []
    ]
    return text, calls


SURFACES = {
    "chat-completions": chat_completions,
    "responses": responses,
    "messages": messages,
    "api-chat": api_chat,
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("bad", BAD_ITEMS, ids=str)
@pytest.mark.parametrize("surface", SURFACES)
def test_a_tool_call_that_is_not_an_object_is_dropped(
    gateway, remote_model, upstream, surface, bad, stream
):
    remote_model()
    upstream.reply((streamed_answer if stream else whole_answer)(BAD_ITEMS[bad]))
    start = len(gateway.log())
    text, calls = SURFACES[surface](gateway, stream)
    assert text == "Let me check."
    assert calls == [("get_weather", '{"city": "Oslo"}')]
    log = gateway.log()[start:]
    assert "Traceback" not in log and "internal error" not in log


STREAMED = {
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/api/chat": {"messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"input": "hi"},
    "/v1/messages": {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
}


@pytest.mark.parametrize("path", STREAMED)
def test_a_chunk_nested_past_the_parsers_limit_is_the_remotes_error(
    gateway, remote_model, upstream, path
):
    remote_model()
    deep = "data: " + "[" * 100_000 + "]" * 100_000 + "\n\n"
    upstream.reply(Reply(sse=[chunk({"role": "assistant", "content": "Hi"}), deep]))
    start = len(gateway.log())
    response = requests.post(
        gateway.url + path, json={"model": "remote", "stream": True, **STREAMED[path]}, timeout=30
    )
    assert response.status_code == 200
    assert f"{upstream.url} sent a stream item nested too deeply" in response.text
    log = gateway.log()[start:]
    assert "Traceback" not in log and "internal error" not in response.text
