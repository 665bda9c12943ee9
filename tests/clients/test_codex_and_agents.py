"""Real Responses API clients through the relay: the OpenAI Agents SDK and Codex CLI."""

import asyncio
import json
import os
import shutil
import subprocess

import pytest
import requests
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.support.fake_upstream import Reply, chunk, completion, text_stream
from tests.support.paths import ROOT

# .ci/run installs Codex here; a developer may have it on PATH.
CODEX = next(
    (
        path
        for path in (
            os.path.join(ROOT, ".venv", "codex", "node_modules", ".bin", "codex"),
            shutil.which("codex"),
        )
        if path and os.path.exists(path)
    ),
    None,
)
needs_codex = pytest.mark.skipif(
    CODEX is None, reason="Codex CLI not installed (.ci/run installs it)"
)


def tool_call_stream(call_id, name, arguments):
    return [
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps(arguments)}}]}),
        chunk({}, finish_reason="tool_calls"),
        chunk(
            choices=False, usage={"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        ),
    ]


def tool_messages(upstream):
    return [
        m
        for r in upstream.requests
        if isinstance(r.body, dict)
        for m in r.body.get("messages", [])
        if m["role"] == "tool"
    ]


def run_agent(agent, prompt, streaming):
    if not streaming:
        return Runner.run_sync(agent, prompt)

    async def run():
        result = Runner.run_streamed(agent, prompt)
        async for _ in result.stream_events():
            pass
        return result

    return asyncio.run(run())


@pytest.mark.parametrize("streaming", [False, True])
def test_agents_sdk_completes_a_function_tool_loop(gateway, remote_model, upstream, streaming):
    remote_model()
    set_tracing_disabled(True)
    seen = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"{city}: 21 C and sunny"

    answer = "It is 21 C and sunny in Lisbon."
    if streaming:
        upstream.reply(
            Reply(sse=tool_call_stream("call_w", "get_weather", {"city": "Lisbon"})),
            Reply(sse=text_stream(answer)),
        )
    else:
        upstream.reply(
            Reply(
                json=completion(
                    content=None, tool_calls=[("call_w", "get_weather", {"city": "Lisbon"})]
                )
            ),
            Reply(json=completion(content=answer)),
        )
    client = AsyncOpenAI(base_url=gateway.url + "/v1/", api_key="ollama", max_retries=0)
    agent = Agent(
        name="weather",
        instructions="Use the tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="remote", openai_client=client),
    )
    result = run_agent(agent, "Weather in Lisbon?", streaming)
    assert seen == ["Lisbon"]
    assert result.final_output == answer
    assert tool_messages(upstream) == [
        {"role": "tool", "tool_call_id": "call_w", "content": "Lisbon: 21 C and sunny"}
    ]


def codex(tmp_path, *args, env=None):
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        [CODEX, "exec", "--skip-git-repo-check", *args],
        cwd=workdir,
        env={**os.environ, "CODEX_HOME": str(tmp_path / "codex-home"), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.external
@needs_codex
def test_codex_exec_calls_a_tool_then_answers(gateway, remote_model, upstream, tmp_path):
    remote_model()
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(f'''
model = "remote"
model_provider = "relay"

[model_providers.relay]
name = "relay"
base_url = "{gateway.url}/v1"
wire_api = "responses"
env_key = "RELAY_API_KEY"
''')
    upstream.reply(
        Reply(sse=tool_call_stream("call_c", "exec_command", {"cmd": "echo relay-tool-ok"})),
        Reply(sse=text_stream("The command printed relay-tool-ok.")),
    )
    result = codex(tmp_path, "Run echo relay-tool-ok", env={"RELAY_API_KEY": "sk-codex"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The command printed relay-tool-ok." in result.stdout
    outputs = tool_messages(upstream)
    assert outputs and outputs[0]["tool_call_id"] == "call_c"
    assert "relay-tool-ok" in outputs[0]["content"]
    # Codex's own tools reached the remote as chat tools; web_search was dropped.
    names = [t["function"]["name"] for t in upstream.requests[0].body["tools"]]
    assert "exec_command" in names and "web_search" not in names


@pytest.mark.external
@needs_codex
def test_codex_exec_oss_uses_the_relay_as_its_ollama(gateway, remote_model, upstream, tmp_path):
    remote_model()
    (tmp_path / "codex-home").mkdir()
    upstream.reply(Reply(sse=text_stream("Hello from the relay.")))
    result = codex(
        tmp_path,
        "--oss",
        "--local-provider",
        "ollama",
        "-m",
        "remote:latest",
        "say hi",
        env={"CODEX_OSS_BASE_URL": f"{gateway.url}/v1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Hello from the relay." in result.stdout
    assert requests.get(gateway.url + "/v1/models").status_code == 200
