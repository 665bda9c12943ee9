"""/v1/chat/completions through gunicorn to a fake OpenAI-compatible upstream."""

import json
import shlex
import subprocess
import threading

import openai
import pytest
import requests

from tests.support.config import GATEWAY_KEY
from tests.support.fake_upstream import Reply, chunk, text_stream
from tests.support.openai_schema import validate

SEED_CHAT_CURL = """curl http://localhost:11434/v1/chat/completions -d '{
  "model": "dashscope-model",
  "messages": [
    {"role": "user", "content": "Hello, how are you?"}
  ]
}'"""


def sdk(gateway):
    return openai.OpenAI(
        base_url=gateway.url + "/v1/",
        api_key="ollama",
        _strict_response_validation=True,
        max_retries=0,
    )


def sse_events(response):
    """The data of each SSE event of a streamed requests response."""
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            yield line[len(b"data: ") :].decode()


def test_seed_curl_example(gateway, remote_model, upstream):
    remote_model("dashscope-model")
    command = SEED_CHAT_CURL.replace("http://localhost:11434", gateway.url)
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
    body = json.loads(result.stdout)
    validate(body, "CreateChatCompletionResponse")
    assert body["choices"][0]["message"]["content"] == "Hello from upstream"
    assert body["model"] == "dashscope-model"
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.body["model"] == "remote-model"
    assert upstream.last.headers["authorization"] == "Bearer sk-test-key-123456"


def test_seed_python_example(gateway, remote_model, upstream):
    remote_model("dashscope-model")
    chat_response = sdk(gateway).chat.completions.create(
        model="dashscope-model",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert chat_response.choices[0].message.content == "Hello from upstream"
    assert upstream.last.body["messages"] == [
        {"role": "user", "content": "What is the capital of France?"}
    ]


def test_every_parameter_passes_through(gateway, remote_model, upstream):
    remote_model()
    params = {
        "temperature": 0.3,
        "top_p": 0.8,
        "max_tokens": 77,
        "stop": ["\n\n"],
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "n": 1,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "reasoning_effort": "low",
        "user": "u-42",
        "logprobs": True,
        "top_logprobs": 2,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}},
        },
    }
    body = {"model": "remote", "messages": [{"role": "user", "content": "hi"}], **params}
    assert requests.post(gateway.url + "/v1/chat/completions", json=body).status_code == 200
    sent = upstream.last.body
    assert {k: sent[k] for k in params} == params
    assert sent["model"] == "remote-model"


def test_model_defaults_fill_only_what_the_request_left_unset(gateway, remote_model, upstream):
    remote_model(
        system="Answer in French.", parameters={"temperature": 0.1, "num_predict": 50, "top_p": 0.5}
    )
    client = sdk(gateway)
    client.chat.completions.create(
        model="remote", temperature=0.9, messages=[{"role": "user", "content": "hi"}]
    )
    sent = upstream.last.body
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert (sent["temperature"], sent["max_tokens"], sent["top_p"]) == (0.9, 50, 0.5)

    client.chat.completions.create(
        model="remote",
        max_completion_tokens=9,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    )
    sent = upstream.last.body
    assert [m["content"] for m in sent["messages"]] == ["Be brief.", "hi"]
    assert "max_tokens" not in sent and sent["max_completion_tokens"] == 9


def test_stream_relabels_chunks_and_drops_usage_nobody_asked_for(gateway, remote_model, upstream):
    remote_model()
    response = requests.post(
        gateway.url + "/v1/chat/completions",
        stream=True,
        json={"model": "remote", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = list(sse_events(response))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for item in chunks:
        validate(item, "CreateChatCompletionStreamResponse")
        assert item["model"] == "remote" and "usage" not in item
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        == "Hello from upstream"
    )
    assert upstream.last.body["stream_options"] == {"include_usage": True}


def test_stream_forwards_usage_when_asked(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            sse=text_stream(
                "Hi", usage={"prompt_tokens": 21, "completion_tokens": 2, "total_tokens": 23}
            )
        )
    )
    stream = sdk(gateway).chat.completions.create(
        model="remote",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}],
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 23


def test_stream_is_not_buffered(gateway, remote_model, upstream):
    remote_model()
    gate = threading.Event()
    upstream.reply(Reply(sse=text_stream("first", "second"), gate=gate))
    response = requests.post(
        gateway.url + "/v1/chat/completions",
        stream=True,
        json={"model": "remote", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    events = sse_events(response)
    # The upstream has sent one chunk and waits for `gate`: if the relay
    # buffered, this read would never return.
    first = json.loads(next(events))
    assert first["choices"][0]["delta"]["role"] == "assistant"
    gate.set()
    assert list(events)[-1] == "[DONE]"


def test_tool_call_stream_through_the_sdk(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            sse=[
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ],
                    }
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
                chunk({}, finish_reason="tool_calls"),
            ]
        )
    )
    stream = sdk(gateway).chat.completions.create(
        model="remote", stream=True, messages=[{"role": "user", "content": "weather?"}]
    )
    pieces = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in stream
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert json.loads("".join(pieces)) == {"city": "Paris"}


@pytest.mark.parametrize(
    "status, error_class", [(401, openai.AuthenticationError), (404, openai.NotFoundError)]
)
def test_upstream_http_errors_keep_status_and_message(
    gateway, remote_model, upstream, status, error_class
):
    remote_model()
    upstream.reply(
        Reply(
            status=status,
            json={
                "error": {
                    "message": "Incorrect API key provided: sk-test-key-123456",
                    "type": "invalid_request_error",
                }
            },
        )
    )
    with pytest.raises(error_class) as excinfo:
        sdk(gateway).chat.completions.create(
            model="remote", messages=[{"role": "user", "content": "hi"}]
        )
    message = excinfo.value.body["message"]
    assert message.startswith(f"API error ({status}): Incorrect API key provided")
    assert "sk-test-key-123456" not in message
    validate({"error": excinfo.value.body}, "ErrorResponse")


def test_stream_cut_midway_ends_with_an_error_event(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("one", "two", "three"), cut_after=2))
    response = requests.post(
        gateway.url + "/v1/chat/completions",
        stream=True,
        json={"model": "remote", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    events = list(sse_events(response))
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert "broke off" in error["message"] and upstream.url in error["message"]
    with pytest.raises(openai.APIError):
        upstream.reply(Reply(sse=text_stream("one", "two", "three"), cut_after=2))
        list(
            sdk(gateway).chat.completions.create(
                model="remote", stream=True, messages=[{"role": "user", "content": "hi"}]
            )
        )


def test_client_disconnect_closes_the_upstream_connection(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=[chunk({"role": "assistant", "content": "Hel"})], hold=True))
    response = requests.post(
        gateway.url + "/v1/chat/completions",
        stream=True,
        json={"model": "remote", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    next(sse_events(response))
    response.close()
    assert upstream.client_went_away.wait(20), "the relay kept the upstream stream open"


def test_ollama_remote_gets_its_own_v1_endpoint(gateway, remote_model, upstream):
    remote_model("local-ollama", remote_type="ollama", path="")
    answer = sdk(gateway).chat.completions.create(
        model="local-ollama", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "Hello from upstream"
    assert upstream.last.path == "/v1/chat/completions"


def test_query_string_in_remote_host_is_kept(gateway, remote_model, upstream):
    remote_model(path="/v1?tenant=blue")
    sdk(gateway).chat.completions.create(
        model="remote", messages=[{"role": "user", "content": "x"}]
    )
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.query == {"tenant": ["blue"]}

    remote_model("far", remote_type="ollama", path="/base?tenant=green")
    sdk(gateway).chat.completions.create(model="far", messages=[{"role": "user", "content": "x"}])
    assert (upstream.last.path, upstream.last.query) == (
        "/base/v1/chat/completions",
        {"tenant": ["green"]},
    )
    requests.post(gateway.url + "/api/chat", json={"model": "far", "stream": False, **CHAT_BODY})
    assert (upstream.last.path, upstream.last.query) == ("/base/api/chat", {"tenant": ["green"]})


CHAT_BODY = {"messages": [{"role": "user", "content": "x"}]}


def test_a_remote_answer_that_is_not_a_completion_is_a_clear_502(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(json=["not", "a", "completion"]))
    response = requests.post(
        gateway.url + "/v1/chat/completions", json={"model": "remote", **CHAT_BODY}
    )
    assert response.status_code == 502
    assert "not an object" in response.json()["error"]["message"]


def test_embeddings(gateway, remote_model, upstream):
    remote_model()
    # The SDK asks for base64 by default and decodes it after its schema
    # check, which strict mode makes fail on base64 (from OpenAI's too).
    plain = openai.OpenAI(base_url=gateway.url + "/v1/", api_key="-", max_retries=0)
    answer = plain.embeddings.create(model="remote", input=["a", "b"])
    assert [d.embedding for d in answer.data] == [pytest.approx([0.1, 0.2, 0.3])] * 2
    assert upstream.last.path == "/v1/embeddings"
    assert (upstream.last.body["model"], upstream.last.body["input"]) == (
        "remote-model",
        ["a", "b"],
    )
    # What the relay sent, not what the SDK made of it.
    raw = requests.post(gateway.url + "/v1/embeddings", json={"model": "remote", "input": "a"})
    validate(raw.json(), "CreateEmbeddingResponse")

    remote_model("far", remote_type="ollama", path="")
    plain.embeddings.create(model="far", input="a")
    assert upstream.last.path == "/v1/embeddings"


def test_upstream_answer_that_is_not_json(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(text="<html>gateway page</html>"))
    response = requests.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "remote", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 502
    assert "not JSON" in response.json()["error"]["message"]


def test_an_error_event_quoting_the_key_reaches_nobody(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            sse=[
                chunk({"role": "assistant", "content": "Hi"}),
                {"error": {"message": f"quota exceeded for {GATEWAY_KEY}"}},
            ]
        )
    )
    response = requests.post(
        gateway.url + "/v1/chat/completions",
        stream=True,
        json={"model": "remote", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    error = json.loads(list(sse_events(response))[-1])["error"]
    assert error["message"] == "API error: quota exceeded for ***"
