"""/api/generate for OpenAI-compatible remotes: a one-turn chat, answered in
/api/generate's shape, through gunicorn with the real ollama client.

LiteLLM's `ollama/` provider (so aider and CrewAI through it) uses nothing
else; Ollama's own remote models serve it only from Ollama servers.
"""

import base64
import json
import re

import ollama
import pytest
import requests

from tests.support.access import ADMIN, ADMIN_TOKEN, bearer, create_key, unique, until
from tests.support.fake_upstream import Reply, completion, text_stream

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
# Every field Ollama's non-streamed /api/generate answer has (but `context`,
# token ids a remote does not give), and nothing else.
FINAL_FIELDS = {
    "model",
    "created_at",
    "response",
    "done",
    "done_reason",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}


def client(relay, key=None):
    headers = bearer(key) if key else None
    return ollama.Client(host=relay.url, headers=headers)


def post(relay, body):
    return requests.post(relay.url + "/api/generate", json=body, timeout=30)


def test_a_prompt_and_system_go_as_a_one_turn_chat(gateway, remote_model, upstream):
    remote_model()
    answer = client(gateway).generate(model="remote", prompt="hi", system="Be brief.")
    assert answer.response == "Hello from upstream"
    assert answer.done and answer.done_reason == "stop"
    assert (answer.prompt_eval_count, answer.eval_count) == (11, 7)
    assert answer.model == "remote"
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.body["model"] == "remote-model"
    assert upstream.last.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    whole = post(gateway, {"model": "remote", "prompt": "hi", "stream": False}).json()
    assert set(whole) == FINAL_FIELDS
    for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(whole[name], int) and whole[name] >= 0


def test_the_models_system_prompt_applies_unless_the_request_has_one(
    gateway, remote_model, upstream
):
    remote_model("sys", system="You are a pirate.")
    client(gateway).generate(model="sys", prompt="hi")
    assert upstream.last.body["messages"][0] == {"role": "system", "content": "You are a pirate."}
    client(gateway).generate(model="sys", prompt="hi", system="You are a judge.")
    assert upstream.last.body["messages"][0] == {"role": "system", "content": "You are a judge."}


def test_streamed_as_ndjson_with_thinking_then_the_final_counts(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(sse=text_stream("Hello", " there", reasoning=["Let me", " think"])))
    parts = list(client(gateway).generate(model="remote", prompt="hi", stream=True, think=True))
    assert "".join(p.thinking or "" for p in parts) == "Let me think"
    assert "".join(p.response for p in parts) == "Hello there"
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].done_reason == "stop"
    assert (parts[-1].prompt_eval_count, parts[-1].eval_count) == (11, 7)
    assert upstream.last.body["stream"] is True
    assert upstream.last.body["reasoning_effort"] == "medium"
    lines = [
        json.loads(line)
        for line in requests.post(
            gateway.url + "/api/generate", json={"model": "remote", "prompt": "hi"}, timeout=30
        ).iter_lines()
        if line
    ]
    assert all(set(line) == {"model", "created_at", "response", "done"} for line in lines[:-1])
    assert set(lines[-1]) == FINAL_FIELDS


def test_images_format_options_and_think_map_as_on_api_chat(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(Reply(json=completion(content='{"n": 1}', reasoning="Counting.")))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    answer = client(gateway).generate(
        model="remote",
        prompt="How many?",
        images=[PNG],
        format=schema,
        options={"temperature": 0.1, "num_predict": 50, "stop": ["\n\n"]},
        think="high",
    )
    assert answer.response == '{"n": 1}' and answer.thinking == "Counting."
    sent = upstream.last.body
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "How many?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        }
    ]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0.1, 50, ["\n\n"])
    assert sent["reasoning_effort"] == "high"


@pytest.mark.parametrize(
    "field, value", [("raw", True), ("context", [1, 2, 3]), ("suffix", "return x")]
)
def test_what_a_chat_cannot_do_is_a_400_naming_the_field(
    gateway, remote_model, upstream, field, value
):
    remote_model()
    with pytest.raises(ollama.ResponseError) as refused:
        client(gateway).generate(model="remote", prompt="def f(x):", **{field: value})
    assert refused.value.status_code == 400
    assert refused.value.error.startswith(f"invalid request: {field}: ")
    assert upstream.requests == []


def test_an_ollama_remote_still_gets_them_natively(gateway, remote_model, upstream):
    remote_model("far", remote_type="ollama", path="")
    answer = client(gateway).generate(model="far", prompt="def f(x):", suffix="return x", raw=True)
    assert answer.response == "Hi from ollama"
    assert upstream.last.path == "/api/generate"
    assert (upstream.last.body["suffix"], upstream.last.body["raw"]) == ("return x", True)


def test_no_prompt_loads_the_model_as_ollama_does(gateway, remote_model, upstream):
    remote_model()
    answer = client(gateway).generate(model="remote")
    assert answer.done and answer.done_reason == "load" and answer.response == ""
    answer = client(gateway).generate(model="remote", keep_alive=0)
    assert answer.done and answer.done_reason == "unload"
    assert client(gateway).generate(model="remote", keep_alive="0s").done_reason == "unload"
    assert upstream.requests == []


def test_counted_and_logged_for_the_key_like_a_chat(relay_with, upstream):
    relay = relay_with(RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    name = unique("gen")
    answer = requests.post(
        relay.url + "/api/create",
        headers=ADMIN,
        timeout=10,
        json={
            "name": name,
            "from": "remote-model",
            "remote_type": "openai",
            "remote_host": upstream.url + "/v1",
            "stream": False,
        },
    )
    assert answer.status_code == 200, answer.text
    key_name, key = create_key(relay, models=[name])
    with pytest.raises(ollama.ResponseError) as refused:
        client(relay).generate(model=name, prompt="hi")
    assert refused.value.status_code == 401
    client(relay, key).generate(model=name, prompt="hi")
    list(client(relay, key).generate(model=name, prompt="hi", stream=True))

    def counted():
        rows = requests.get(
            relay.url + "/api/usage", headers=ADMIN, params={"key": key_name}, timeout=10
        ).json()["usage"]
        return [(r["requests"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
            (2, 22, 14)
        ]

    until(counted, "both generates counted for the key", deadline=60)
    logged = [
        (line["status"], line.get("key"), line.get("tokens_out"))
        for line in map(json.loads, re.findall(r"^\{.*\}$", relay.log(), re.M))
        if line.get("message") == "request" and line.get("path") == "/api/generate"
    ]
    assert logged == [(401, "-", None), (200, key_name, 7), (200, key_name, 7)], logged
