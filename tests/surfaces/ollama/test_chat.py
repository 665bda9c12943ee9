"""/api/chat, /api/generate and embeddings through gunicorn, with the real ollama client."""

import base64
import json

import ollama
import pytest
import requests

from tests.support.fake_upstream import Reply, chunk, completion, text_stream

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def client(gateway):
    return ollama.Client(host=gateway.url)


def ndjson(response):
    return [json.loads(line) for line in response.iter_lines() if line]


def test_chat_non_streaming(gateway, remote_model, upstream):
    remote_model()
    answer = client(gateway).chat(model="remote", messages=[{"role": "user", "content": "hi"}])
    assert answer.message.content == "Hello from upstream"
    assert answer.done and answer.done_reason == "stop"
    assert (answer.prompt_eval_count, answer.eval_count) == (11, 7)
    assert answer.model == "remote"
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.body["model"] == "remote-model"


def test_chat_streaming_lines_end_with_done_and_counts(gateway, remote_model, upstream):
    remote_model()
    parts = list(
        client(gateway).chat(
            model="remote", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert "".join(p.message.content for p in parts) == "Hello from upstream"
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    last = parts[-1]
    assert last.done_reason == "stop"
    assert (last.prompt_eval_count, last.eval_count) == (11, 7)
    for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(last[name], int)
    assert upstream.last.body["stream"] is True
    assert upstream.last.body["stream_options"] == {"include_usage": True}


def test_options_format_and_think_become_request_fields(gateway, remote_model, upstream):
    remote_model()
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}}
    client(gateway).chat(
        model="remote",
        messages=[{"role": "user", "content": "hi"}],
        format=schema,
        think="high",
        options={
            "num_predict": 64,
            "temperature": 0.2,
            "top_p": 0.7,
            "top_k": 20,
            "stop": ["END"],
            "seed": 3,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "num_ctx": 8192,
        },
    )
    sent = upstream.last.body
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert sent["reasoning_effort"] == "high"
    assert {
        k: sent[k]
        for k in (
            "max_tokens",
            "temperature",
            "top_p",
            "top_k",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
        )
    } == {
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.7,
        "top_k": 20,
        "stop": ["END"],
        "seed": 3,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
    }
    assert "num_ctx" not in sent

    client(gateway).chat(
        model="remote", messages=[{"role": "user", "content": "hi"}], format="json", think=True
    )
    sent = upstream.last.body
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["reasoning_effort"] == "medium"


def test_model_defaults_apply_to_api_chat(gateway, remote_model, upstream):
    remote_model(system="Be terse.", parameters={"temperature": 0.1, "num_predict": 20})
    client(gateway).chat(
        model="remote", messages=[{"role": "user", "content": "hi"}], options={"temperature": 0.9}
    )
    sent = upstream.last.body
    assert sent["messages"][0] == {"role": "system", "content": "Be terse."}
    assert (sent["temperature"], sent["max_tokens"]) == (0.9, 20)


def test_images_become_data_url_parts(gateway, remote_model, upstream):
    remote_model()
    client(gateway).chat(
        model="remote", messages=[{"role": "user", "content": "what is this?", "images": [PNG]}]
    )
    content = upstream.last.body["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]


def test_tool_call_round_trip(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            json=completion(
                content=None, tool_calls=[("call_abc", "get_weather", {"city": "Paris"})]
            )
        )
    )
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = client(gateway).chat(model="remote", messages=messages, tools=[WEATHER_TOOL])
    call = first.message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("get_weather", {"city": "Paris"})
    assert upstream.last.body["tools"] == [WEATHER_TOOL]

    messages += [
        first.message,
        {"role": "tool", "content": "18 degrees", "tool_name": "get_weather"},
    ]
    second = client(gateway).chat(model="remote", messages=messages, tools=[WEATHER_TOOL])
    assert second.message.content == "Hello from upstream"
    assistant, tool = upstream.last.body["messages"][1:3]
    (sent_call,) = assistant["tool_calls"]
    assert sent_call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert tool == {"role": "tool", "content": "18 degrees", "tool_call_id": sent_call["id"]}


def test_streamed_tool_call_arrives_whole(gateway, remote_model, upstream):
    remote_model()
    # The id only in the first delta, an empty first arguments piece, and the
    # arguments split in the middle of a string.
    upstream.reply(
        Reply(
            sse=[
                chunk({"role": "assistant", "content": "Let me check. "}),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ]
                    }
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
                chunk({}, finish_reason="tool_calls"),
                chunk(
                    choices=False,
                    usage={"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
                ),
            ]
        )
    )
    parts = list(
        client(gateway).chat(
            model="remote",
            stream=True,
            tools=[WEATHER_TOOL],
            messages=[{"role": "user", "content": "Oslo?"}],
        )
    )
    calls = [c for p in parts for c in (p.message.tool_calls or [])]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert parts[0].message.content == "Let me check. "
    assert parts[-1].done and parts[-1].eval_count == 9


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_thinking(gateway, remote_model, upstream, field):
    remote_model()
    upstream.reply(
        Reply(json=completion(content="42", reasoning="Let me think.", reasoning_field=field))
    )
    answer = client(gateway).chat(
        model="remote", think=True, messages=[{"role": "user", "content": "answer?"}]
    )
    assert (answer.message.thinking, answer.message.content) == ("Let me think.", "42")

    upstream.reply(
        Reply(sse=text_stream("4", "2", reasoning=["Let me ", "think."], reasoning_field=field))
    )
    parts = list(
        client(gateway).chat(
            model="remote",
            think=True,
            stream=True,
            messages=[{"role": "user", "content": "answer?"}],
        )
    )
    assert "".join(p.message.thinking or "" for p in parts) == "Let me think."
    assert "".join(p.message.content for p in parts) == "42"


def test_thinking_is_passed_back_to_the_remote(gateway, remote_model, upstream):
    remote_model()
    client(gateway).chat(
        model="remote",
        messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "thinking": "because"},
            {"role": "user", "content": "and?"},
        ],
    )
    assert upstream.last.body["messages"][1]["reasoning_content"] == "because"


def test_length_stop_is_done_reason_length(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(json=completion(content="trunc", finish_reason="length")))
    answer = client(gateway).chat(model="remote", messages=[{"role": "user", "content": "hi"}])
    assert answer.done_reason == "length"


@pytest.mark.parametrize("status", [401, 404])
def test_upstream_errors_in_ollama_shape(gateway, remote_model, upstream, status):
    remote_model()
    upstream.reply(Reply(status=status, json={"error": {"message": "The model does not exist"}}))
    with pytest.raises(ollama.ResponseError) as excinfo:
        client(gateway).chat(model="remote", messages=[{"role": "user", "content": "hi"}])
    assert excinfo.value.status_code == status
    assert excinfo.value.error == f"API error ({status}): The model does not exist"


def test_stream_cut_midway_ends_with_an_error_line(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("one", "two", "three"), cut_after=3))
    response = requests.post(
        gateway.url + "/api/chat",
        stream=True,
        json={"model": "remote", "messages": [{"role": "user", "content": "hi"}]},
    )
    lines = ndjson(response)
    assert not any(line.get("done") for line in lines)
    assert "broke off" in lines[-1]["error"]
    with pytest.raises(ollama.ResponseError):
        upstream.reply(Reply(sse=text_stream("one", "two", "three"), cut_after=3))
        list(
            client(gateway).chat(
                model="remote", stream=True, messages=[{"role": "user", "content": "hi"}]
            )
        )


def test_client_disconnect_closes_the_upstream(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=[chunk({"role": "assistant", "content": "Hel"})], hold=True))
    response = requests.post(
        gateway.url + "/api/chat",
        stream=True,
        json={"model": "remote", "messages": [{"role": "user", "content": "hi"}]},
    )
    next(response.iter_lines())
    response.close()
    assert upstream.client_went_away.wait(20), "the relay kept the upstream stream open"


def test_ollama_remote_is_relayed_natively(gateway, remote_model, upstream):
    remote_model("far", remote_type="ollama", path="")
    parts = list(
        client(gateway).chat(model="far", stream=True, messages=[{"role": "user", "content": "hi"}])
    )
    assert "".join(p.message.content for p in parts) == "Hi from ollama"
    assert upstream.last.path == "/api/chat" and upstream.last.body["model"] == "remote-model"
    raw = ndjson(
        requests.post(
            gateway.url + "/api/chat",
            stream=True,
            json={"model": "far", "messages": [{"role": "user", "content": "hi"}]},
        )
    )
    assert {(line["model"], line["remote_model"], line["remote_host"]) for line in raw} == {
        ("far", "remote-model", upstream.url)
    }

    answer = client(gateway).generate(model="far", prompt="hi")
    assert answer.response == "Hi from ollama" and upstream.last.path == "/api/generate"


def test_a_host_that_does_not_speak_ollama(gateway, remote_model, upstream):
    remote_model("wrong", remote_type="ollama", path="/v1")
    upstream.reply(Reply(status=404, text="404 page not found"))
    with pytest.raises(ollama.ResponseError) as excinfo:
        client(gateway).chat(model="wrong", messages=[{"role": "user", "content": "hi"}])
    assert excinfo.value.error.startswith("this server cannot run this remote model")
    assert '"remote_type": "openai"' in excinfo.value.error


def test_embeddings_on_both_kinds_of_remote(gateway, remote_model, upstream):
    remote_model()
    assert (
        client(gateway).embed(model="remote", input=["a", "b"]).embeddings == [[0.1, 0.2, 0.3]] * 2
    )
    assert upstream.last.path == "/v1/embeddings"
    assert upstream.last.body == {"model": "remote-model", "input": ["a", "b"]}
    assert client(gateway).embeddings(model="remote", prompt="a").embedding == [0.1, 0.2, 0.3]

    remote_model("far", remote_type="ollama", path="")
    assert client(gateway).embed(model="far", input="a").embeddings == [[0.5, 0.25]]
    assert upstream.last.path == "/api/embed"
    assert client(gateway).embeddings(model="far", prompt="a").embedding == [0.5, 0.25]


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model: Missing data"),
        ({"model": "remote"}, "messages: Missing data"),
        ({"model": "remote", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "remote", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "remote", "messages": [], "think": "extreme"}, "think: must be true"),
        ({"model": "remote", "messages": [], "format": 12}, "format: must be"),
        ({"model": "remote", "messages": [], "options": "hot"}, "options: Not a valid mapping"),
    ],
)
def test_bad_chat_input(gateway, remote_model, upstream, body, expected):
    remote_model()
    response = requests.post(gateway.url + "/api/chat", json=body)
    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert upstream.requests == []


def test_unknown_model_is_404(gateway, upstream):
    with pytest.raises(ollama.ResponseError) as excinfo:
        client(gateway).chat(model="ghost", messages=[{"role": "user", "content": "hi"}])
    assert excinfo.value.status_code == 404
    assert excinfo.value.error == "model 'ghost' not found"


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            {"messages": [{"role": "user", "content": "x", "images": ["a"]}]},
            "messages[0].images[0]: must be base64",
        ),
        (
            {"messages": [], "options": {"num_predict": "x"}},
            "options: num_predict must be a number",
        ),
        ({"messages": [], "options": {"stop": [1]}}, "options: stop must be a string or a list"),
    ],
)
def test_bad_images_and_options_are_400(gateway, remote_model, upstream, body, expected):
    remote_model()
    response = requests.post(gateway.url + "/api/chat", json={"model": "remote", **body})
    assert response.status_code == 400
    assert expected in response.json()["error"]


def test_content_as_parts_and_malformed_arguments(gateway, remote_model, upstream):
    remote_model()
    # Mistral's reasoning models send content as a list of parts.
    upstream.reply(
        Reply(
            json=dict(
                completion(),
                choices=[
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {
                            "role": "assistant",
                            "content": [
                                {"type": "text", "text": "Hi "},
                                {"type": "text", "text": "there"},
                            ],
                        },
                    }
                ],
            )
        )
    )
    answer = client(gateway).chat(model="remote", messages=[{"role": "user", "content": "hi"}])
    assert answer.message.content == "Hi there"
    upstream.reply(Reply(json=completion(content=None, tool_calls=[("c1", "f", {})])))
    upstream.replies[-1].json["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = (
        "[1, 2"
    )
    answer = client(gateway).chat(model="remote", messages=[{"role": "user", "content": "hi"}])
    assert answer.message.tool_calls[0].function.arguments == {"_raw": "[1, 2"}
