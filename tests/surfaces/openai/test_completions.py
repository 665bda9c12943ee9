"""POST /v1/completions (legacy completions, Ollama 0.2) relayed to the
remote's own, with the openai SDK's completions.create, whole and streamed,
answers checked against OpenAI's spec; counted like chat."""

import time

import openai
import pytest
import requests

from tests.support.fake_upstream import Reply
from tests.support.openai_schema import validate

COMPLETION = "CreateCompletionResponse"


def sdk(gateway):
    return openai.OpenAI(
        base_url=gateway.url + "/v1/", api_key="-", max_retries=0, _strict_response_validation=True
    )


def answer(text="return a + b", finish_reason="stop", usage=None):
    # As vLLM and llama.cpp answer: no `logprobs` key when none were asked.
    return {
        "id": "cmpl-upstream1",
        "object": "text_completion",
        "created": int(time.time()),
        "model": "remote-model",
        "choices": [{"index": 0, "text": text, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18},
    }


def piece(text, finish_reason=None):
    return {
        "id": "cmpl-upstream1",
        "object": "text_completion",
        "created": int(time.time()),
        "model": "remote-model",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk():
    return {
        "id": "cmpl-upstream1",
        "object": "text_completion",
        "created": int(time.time()),
        "model": "remote-model",
        "choices": [],
        "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18},
    }


def test_fill_in_the_middle_reaches_the_remotes_completions(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(json=answer()))
    result = sdk(gateway).completions.create(
        model="remote",
        prompt="def add(a, b):\n    ",
        suffix="\n\nprint(add(1, 2))",
        max_tokens=32,
        stop=["\n\n"],
        temperature=0,
    )
    assert upstream.last.path == "/v1/completions"
    assert upstream.last.body == {
        "model": "remote-model",
        "prompt": "def add(a, b):\n    ",
        "suffix": "\n\nprint(add(1, 2))",
        "max_tokens": 32,
        "stop": ["\n\n"],
        "temperature": 0,
        "stream": False,
    }
    assert result.choices[0].text == "return a + b"
    assert result.model == "remote"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (13, 5)
    upstream.reply(Reply(json=answer(finish_reason="length")))
    raw = requests.post(
        gateway.url + "/v1/completions", json={"model": "remote", "prompt": "x"}
    ).json()
    validate(raw, COMPLETION)
    assert raw["object"] == "text_completion"
    assert raw["choices"][0]["logprobs"] is None and raw["choices"][0]["finish_reason"] == "length"


def test_streamed_with_usage_only_when_asked(gateway, remote_model, upstream):
    remote_model()
    chunks = [piece("return"), piece(" a + b"), piece("", "stop"), usage_chunk()]
    upstream.reply(Reply(sse=chunks))
    # Streamed chunks say finish_reason null until the last (as OpenAI's and
    # Ollama's do), which the SDK's strict mode refuses: the default mode.
    client = openai.OpenAI(base_url=gateway.url + "/v1/", api_key="-", max_retries=0)
    parts = list(client.completions.create(model="remote", prompt="def add", stream=True))
    assert upstream.last.body["stream"] is True
    assert upstream.last.body["stream_options"] == {"include_usage": True}
    assert "".join(p.choices[0].text for p in parts) == "return a + b"
    assert all(p.usage is None for p in parts) and all(p.model == "remote" for p in parts)
    assert parts[-1].choices[0].finish_reason == "stop"
    validate(parts[-1].model_dump(exclude_unset=True), COMPLETION)

    upstream.reply(Reply(sse=chunks))
    parts = list(
        client.completions.create(
            model="remote", prompt="def add", stream=True, stream_options={"include_usage": True}
        )
    )
    assert parts[-1].choices == [] and parts[-1].usage.completion_tokens == 5


def test_a_stream_cut_before_its_end_ends_with_an_error(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=[piece("return"), piece(" a")], done=False))
    response = requests.post(
        gateway.url + "/v1/completions",
        json={"model": "remote", "prompt": "x", "stream": True},
        stream=True,
    )
    lines = [line for line in response.iter_lines() if line.startswith(b"data: ")]
    assert b'"error"' in lines[-1]


def test_a_remote_without_completions_is_named(gateway, remote_model, upstream):
    remote_model()  # the fake upstream answers /v1/completions 404 by default
    with pytest.raises(openai.NotFoundError) as excinfo:
        sdk(gateway).completions.create(model="remote", prompt="x")
    error = excinfo.value.body
    assert upstream.last.path == "/v1/completions"
    assert upstream.url.split("//")[1] in error["message"]
    assert "/v1/chat/completions" in error["message"]
    assert error["code"] == "completions_unsupported"


def test_ollama_remotes_get_their_own_v1_completions(gateway, remote_model, upstream):
    remote_model("far", remote_type="ollama", path="")
    upstream.reply(Reply(json=answer()))
    result = sdk(gateway).completions.create(model="far", prompt="x", suffix="y")
    assert upstream.last.path == "/v1/completions"
    assert upstream.last.body["suffix"] == "y"
    assert result.choices[0].text == "return a + b"


@pytest.mark.parametrize(
    "body, param",
    [
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x", "n": 2}, "n"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "logprobs": 9}, "logprobs"),
        ({"prompt": "x", "suffix": 1}, "suffix"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gateway, remote_model, upstream, body, param):
    remote_model()
    response = requests.post(gateway.url + "/v1/completions", json={"model": "remote", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert upstream.requests == []


def test_counted_like_chat(gateway, remote_model, upstream):
    remote_model("completer")
    upstream.reply(Reply(json=answer()), Reply(sse=[piece("a", "stop"), usage_chunk()]))
    sdk(gateway).completions.create(model="completer", prompt="x")
    list(sdk(gateway).completions.create(model="completer", prompt="x", stream=True))
    deadline = time.monotonic() + 30
    while True:
        rows = requests.get(gateway.url + "/api/usage", params={"by": "model"}).json()["usage"]
        (row,) = [r for r in rows if r["model"] in ("completer", "completer:latest")] or [None]
        if row and row["requests"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (row["requests"], row["input_tokens"], row["output_tokens"]) == (2, 26, 10)
