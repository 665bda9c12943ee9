"""Real Anthropic clients through the relay (under gunicorn): the anthropic
Python SDK, in strict mode, and Claude Code itself (headless, `claude -p`)."""

import json
import os
import shutil
import subprocess

import anthropic
import pytest
import requests

from tests.support.fake_upstream import Reply, chunk, completion, text_stream
from tests.support.paths import ROOT

# .ci/run installs Claude Code here; a developer may have it on PATH.
CLAUDE = next(
    (
        path
        for path in (
            os.path.join(ROOT, ".venv", "claude", "node_modules", ".bin", "claude"),
            shutil.which("claude"),
        )
        if path and os.path.exists(path)
    ),
    None,
)
needs_claude = pytest.mark.skipif(
    CLAUDE is None, reason="Claude Code not installed (.ci/run installs it)"
)

BASH = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5"
    "ErkJggg=="
)


def sdk(gateway, key="sk-ant-any"):
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=key, max_retries=0, _strict_response_validation=True
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


def test_sdk_create(gateway, remote_model, upstream):
    remote_model()
    message = sdk(gateway).messages.create(
        # This SDK no longer has sampling parameters; older clients send them.
        model="remote",
        max_tokens=200,
        system="Be brief.",
        extra_body={"temperature": 0.2},
        stop_sequences=["###"],
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert message.content[0].text == "Hello from upstream"
    assert (message.role, message.model, message.stop_reason) == ("assistant", "remote", "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 7)
    sent = upstream.last.body
    assert (sent["temperature"], sent["stop"], sent["max_tokens"]) == (0.2, ["###"], 200)


def test_sdk_stream_with_thinking(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            sse=text_stream(
                "The answer",
                " is 4.",
                reasoning=["2+2", " is 4"],
                usage={
                    "prompt_tokens": 30,
                    "completion_tokens": 12,
                    "total_tokens": 42,
                    "prompt_tokens_details": {"cached_tokens": 10},
                },
            )
        )
    )
    texts = []
    with sdk(gateway).messages.stream(
        model="remote",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "2+2?"}],
    ) as stream:
        for text in stream.text_stream:
            texts.append(text)
        final = stream.get_final_message()
    assert "".join(texts) == "The answer is 4."
    thinking, text = final.content
    assert (thinking.type, thinking.thinking, text.text) == (
        "thinking",
        "2+2 is 4",
        "The answer is 4.",
    )
    assert isinstance(thinking.signature, str)
    assert (
        final.usage.input_tokens,
        final.usage.cache_read_input_tokens,
        final.usage.output_tokens,
    ) == (20, 10, 12)
    assert upstream.last.body["reasoning_effort"] == "low"


@pytest.mark.parametrize("streaming", [False, True])
def test_sdk_tool_use_round_trip(gateway, remote_model, upstream, streaming):
    remote_model()
    client = sdk(gateway)
    question = [{"role": "user", "content": "What is in this directory?"}]
    if streaming:
        upstream.reply(
            Reply(sse=tool_call_stream("functions.Bash:0", "Bash", {"command": "ls"})),
            Reply(sse=text_stream("There is a.txt.")),
        )
        with client.messages.stream(
            model="remote", max_tokens=500, tools=[BASH], messages=question
        ) as stream:
            first = stream.get_final_message()
    else:
        upstream.reply(
            Reply(
                json=completion(
                    content=None, tool_calls=[("functions.Bash:0", "Bash", {"command": "ls"})]
                )
            ),
            Reply(json=completion(content="There is a.txt.")),
        )
        first = client.messages.create(
            model="remote", max_tokens=500, tools=[BASH], messages=question
        )
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert (call.type, call.name, call.input) == ("tool_use", "Bash", {"command": "ls"})
    follow_up = question + [
        {"role": "assistant", "content": [c.model_dump(exclude_none=True) for c in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "a.txt"}],
        },
    ]
    if streaming:
        with client.messages.stream(
            model="remote", max_tokens=500, tools=[BASH], messages=follow_up
        ) as stream:
            second = stream.get_final_message()
    else:
        second = client.messages.create(
            model="remote", max_tokens=500, tools=[BASH], messages=follow_up
        )
    assert second.content[0].text == "There is a.txt."
    assert tool_messages(upstream) == [
        {"role": "tool", "tool_call_id": "functions.Bash:0", "content": "a.txt"}
    ]


def test_sdk_images_base64_and_url(gateway, remote_model, upstream):
    remote_model()
    sdk(gateway).messages.create(
        model="remote",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.test/cat.jpg"},
                    },
                    {"type": "text", "text": "Compare."},
                ],
            }
        ],
    )
    assert upstream.last.body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}},
        {"type": "text", "text": "Compare."},
    ]


def test_sdk_count_tokens(gateway, remote_model, upstream):
    remote_model()
    counted = sdk(gateway).messages.count_tokens(
        model="remote",
        system="Be brief.",
        tools=[BASH],
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert counted.input_tokens > 10


@pytest.mark.parametrize(
    "upstream_status, error",
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_sdk_exception_types(gateway, remote_model, upstream, upstream_status, error):
    remote_model()
    upstream.reply(
        Reply(
            status=upstream_status,
            json={"error": {"message": "nope"}},
            headers={"Retry-After": "3600"},
        )
    )
    with pytest.raises(error) as excinfo:
        sdk(gateway).messages.create(
            model="remote", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert excinfo.value.body["error"]["message"].startswith(f"API error ({upstream_status}): nope")
    assert excinfo.value.request_id


def test_sdk_errors_from_the_relay(gateway, remote_model, upstream):
    remote_model()
    client = sdk(gateway)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="missing", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.BadRequestError, match="temperature"):
        client.messages.create(
            model="remote",
            max_tokens=10,
            extra_body={"temperature": 7},
            messages=[{"role": "user", "content": "hi"}],
        )
    upstream.reply(Reply(sse=text_stream("one", "two", "three"), cut_after=3))
    with pytest.raises(anthropic.APIStatusError, match="broke off"):
        with client.messages.stream(
            model="remote", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            stream.get_final_message()


# --- Claude Code -------------------------------------------------------------


def claude(gateway, tmp_path, prompt, *args):
    """`claude -p` against the relay, offline and non-interactive; its JSON result."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=gateway.url,
        ANTHROPIC_AUTH_TOKEN="orl-any",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    result = subprocess.run(
        [CLAUDE, "-p", prompt, "--output-format", "json", "--model", "remote", *args],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return json.loads(result.stdout)


@pytest.mark.external
@needs_claude
def test_claude_code_answers(gateway, remote_model, upstream, tmp_path):
    remote_model()
    upstream.reply(Reply(sse=text_stream("Hello from the relay.", reasoning=["Greet."])))
    result = claude(gateway, tmp_path, "say hi")
    assert result["result"] == "Hello from the relay." and result["is_error"] is False
    sent = upstream.requests[0].body
    assert sent["messages"][0]["role"] == "system"
    assert "Bash" in [t["function"]["name"] for t in sent["tools"]]


@pytest.mark.external
@needs_claude
def test_claude_code_runs_bash_and_answers_from_it(gateway, remote_model, upstream, tmp_path):
    remote_model()
    # Kimi's ids: the relay must rewrite it for Claude Code and restore it upstream.
    upstream.reply(
        Reply(
            sse=tool_call_stream(
                "functions.Bash:0", "Bash", {"command": "echo relay-cc-ok", "description": "Echo"}
            )
        ),
        Reply(sse=text_stream("The command printed relay-cc-ok.")),
    )
    result = claude(gateway, tmp_path, "Run echo relay-cc-ok", "--allowedTools", "Bash")
    assert result["result"] == "The command printed relay-cc-ok.", result
    (output,) = tool_messages(upstream)
    assert output["tool_call_id"] == "functions.Bash:0"
    assert "relay-cc-ok" in output["content"]
    assert len(upstream.requests) == 2


def test_a_silent_remote_gets_pings_and_the_sdk_its_whole_message(relay_with, upstream):
    """A model that thinks in silence mid-answer: pings keep the stream (and
    any proxy's idle timer) alive, between whole events, and the SDK reads
    past them to the final message."""
    relay = relay_with(workers=1, RELAY_PING_SECONDS="0.2", RELAY_READ_TIMEOUT="10")
    created = requests.post(
        relay.url + "/api/create",
        timeout=10,
        json={
            "name": "remote",
            "from": "remote-model",
            "remote_type": "openai",
            "remote_host": upstream.url + "/v1",
        },
    )
    assert created.status_code == 200, created.text
    items = text_stream(
        "Hel", "lo", usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    )
    upstream.reply(Reply(sse=items, stall=1.5, stall_at=2), Reply(sse=items, stall=1.5, stall_at=2))

    raw = requests.post(
        relay.url + "/v1/messages",
        timeout=30,
        json={
            "model": "remote",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    events = [
        json.loads(block.split("\ndata: ", 1)[1])
        for block in raw.text.split("\n\n")
        if block.strip()
    ]
    kinds = [event["type"] for event in events]
    first_delta = kinds.index("content_block_delta")
    # The silence came after the first text delta: pings, then the rest.
    assert kinds[first_delta + 1] == "ping" and kinds.count("ping") >= 3
    assert kinds[-2:] == ["message_delta", "message_stop"]

    with sdk(relay).messages.stream(
        model="remote", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert [block.text for block in message.content] == ["Hello"]
    assert message.stop_reason == "end_turn"
