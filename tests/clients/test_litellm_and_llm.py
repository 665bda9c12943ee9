"""Clients that take the relay for an Ollama server, keyed as their docs say:
the LiteLLM SDK (`ollama/` uses /api/generate, `ollama_chat/` /api/chat; DSPy,
CrewAI and aider go through it) with `api_key=` and an explicit `api_base`,
and the llm CLI with llm-ollama, with OLLAMA_HOST and OLLAMA_API_KEY."""

import json
import os
import subprocess
import sys

# LiteLLM reads its model prices from the internet unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

from tests.clients.conftest import TEAM_A_KEY, TEAM_B_KEY  # noqa: E402
from tests.support.access import unique  # noqa: E402
from tests.support.fake_upstream import Reply, completion, text_stream  # noqa: E402

LLM = os.path.join(os.path.dirname(sys.executable), "llm")
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


def test_litellm_ollama_prefix_completes_through_api_generate(keyed, keyed_model, upstream):
    relay, key = keyed
    name = keyed_model()
    answer = litellm.completion(
        model=f"ollama/{name}",
        api_base=relay.url,
        api_key=key,
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert answer.choices[0].message.content == "Hello from upstream"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 7)
    sent = upstream.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TEAM_A_KEY}"
    assert "Say hello" in json.dumps(sent.body["messages"])

    upstream.reply(Reply(sse=text_stream("Hel", "lo")))
    pieces = litellm.completion(
        model=f"ollama/{name}",
        api_base=relay.url,
        api_key=key,
        stream=True,
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert "".join(p.choices[0].delta.content or "" for p in pieces) == "Hello"


def test_litellm_ollama_chat_sees_tool_support_and_sends_native_tools(
    keyed, keyed_model, upstream, monkeypatch
):
    relay, key = keyed
    name = keyed_model()
    # get_model_info finds the server and key as LiteLLM's Ollama docs say.
    monkeypatch.setenv("OLLAMA_API_BASE", relay.url)
    monkeypatch.setenv("OLLAMA_API_KEY", key)
    info = litellm.get_model_info(f"ollama_chat/{name}")
    assert info["supports_function_calling"] is True
    assert info["max_input_tokens"] == 131072

    upstream.reply(
        Reply(
            json=completion(content=None, tool_calls=[("call_1", "get_weather", {"city": "Oslo"})])
        )
    )
    answer = litellm.completion(
        model=f"ollama_chat/{name}",
        api_base=relay.url,
        api_key=key,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    (call,) = answer.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert upstream.last.body["tools"][0]["function"]["name"] == "get_weather"


def llm_cli(relay, key, tmp_path, *args):
    return subprocess.run(
        [LLM, *args],
        env={
            **os.environ,
            "OLLAMA_HOST": relay.url,
            "OLLAMA_API_KEY": key,
            "LLM_USER_PATH": str(tmp_path / "llm"),
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_llm_ollama_sends_each_model_on_its_own_remote_key(keyed, keyed_model, upstream, tmp_path):
    relay, key = keyed
    # Two models that differ only in the key the relay calls their remote with.
    team_a = keyed_model(TEAM_A_KEY, name=unique("team-a"))
    team_b = keyed_model(TEAM_B_KEY, name=unique("team-b"))
    for name, remote_key in ((team_b, TEAM_B_KEY), (team_a, TEAM_A_KEY)):
        result = llm_cli(relay, key, tmp_path, "-m", f"ollama/{name}", "--no-log", "Say hello")
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip() == "Hello from upstream"
        assert upstream.last.headers["authorization"] == f"Bearer {remote_key}"
