"""The Vercel AI SDK (`ai` + `@ai-sdk/openai`, the default `openai(model)`
provider on the Responses API) through the relay, for two turns.

With store on (its default) the SDK sends the assistant's earlier output back
as `{"type": "item_reference", "id": ...}` items, text and reasoning alike;
the relay must resolve them from its stored responses, or turn two is a 400.
The Node side is tests/clients/js/vercel_item_reference.mjs.
"""

import json
import os
import shutil
import subprocess

import pytest

from tests.support.fake_upstream import Reply, completion, text_stream
from tests.support.paths import ROOT

SCRIPT = os.path.join(ROOT, "tests", "clients", "js", "vercel_item_reference.mjs")
# .ci/run installs the SDK here.
SDK_DIR = os.path.join(ROOT, ".venv", "vercel")
NODE = shutil.which("node")
needs_sdk = pytest.mark.skipif(
    NODE is None
    or not all(
        os.path.isdir(os.path.join(SDK_DIR, "node_modules", *name.split("/")))
        for name in ("ai", "@ai-sdk/openai")
    ),
    reason="Vercel AI SDK not installed in .venv/vercel (.ci/run installs it), or no node",
)

PROMPTS = ["Capital of France?", "And its population?"]
FIRST = "Paris is the capital of France."
SECOND = "About two million people live in Paris."
THOUGHT = "The user asks about France; its capital is Paris."


def run_sdk(gateway, stream, delete_first=False):
    config = {
        "baseURL": gateway.url + "/v1",
        "model": "remote",
        "stream": stream,
        "prompts": PROMPTS,
        "deleteFirst": delete_first,
    }
    result = subprocess.run(
        [NODE, SCRIPT, json.dumps(config)],
        cwd=ROOT,
        env={**os.environ, "VERCEL_AI_SDK_DIR": SDK_DIR},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        output = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        pytest.fail(
            f"no JSON from the SDK script (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return output, result


def sent_bodies(output):
    """What the SDK POSTed to /v1/responses, for failure messages."""
    return json.dumps([r["body"] for r in output["requests"]], indent=1)


def replies(stream, *answers, reasoning=None):
    if stream:
        return [
            Reply(sse=text_stream(answer, reasoning=[reasoning] if reasoning else ()))
            for answer in answers
        ]
    return [Reply(json=completion(answer, reasoning=reasoning)) for answer in answers]


def chat_requests(upstream):
    return [r.body for r in upstream.requests if r.path.endswith("/chat/completions")]


def check_two_turns(gateway, upstream, stream, reasoning=None):
    upstream.reply(*replies(stream, FIRST, SECOND, reasoning=reasoning))
    output, result = run_sdk(gateway, stream)
    turn_two_body = output["requests"][1]["body"] if len(output["requests"]) > 1 else None
    detail = (
        f"\nSDK stderr:\n{result.stderr[-2000:]}\nSDK error: {output.get('error')}"
        f"\nerror body: {output.get('errorBody')}"
        f"\n/v1/responses bodies the SDK sent:\n{sent_bodies(output)}"
    )
    assert result.returncode == 0 and "error" not in output, detail
    assert [t["text"] for t in output["turns"]] == [FIRST, SECOND], detail
    assert [r["url"] for r in output["requests"]] == [gateway.url + "/v1/responses"] * 2, detail
    assert all(r["body"].get("stream", False) is stream for r in output["requests"]), detail

    # The SDK referenced its stored output instead of resending it: without
    # the relay's resolution this request would be a 400 naming the id.
    input_items = turn_two_body["input"]
    references = [item for item in input_items if item.get("type") == "item_reference"]
    assert references, detail
    assert all(set(item) == {"type", "id"} for item in references), detail
    assert not [item for item in input_items if item.get("role") == "assistant"], detail
    ids = [item["id"] for item in references]

    # Turn two's Chat Completions request carries turn one's answer, resolved
    # from the stored response.
    chats = chat_requests(upstream)
    assert len(chats) == 2, detail
    assert all(bool(body.get("stream")) is stream for body in chats), detail
    messages = chats[1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"], (
        f"{json.dumps(messages, indent=1)}{detail}"
    )
    assert messages[0]["content"] == PROMPTS[0] and messages[2]["content"] == PROMPTS[1], detail
    assert messages[1]["content"] == FIRST, f"{json.dumps(messages, indent=1)}{detail}"
    return output, ids, messages[1], detail


@pytest.mark.external
@needs_sdk
@pytest.mark.parametrize("stream", [False, True], ids=["generateText", "streamText"])
def test_vercel_sdk_second_turn_sends_output_by_reference(gateway, remote_model, upstream, stream):
    remote_model()
    output, ids, assistant, detail = check_two_turns(gateway, upstream, stream)
    assert len(ids) == 1 and ids[0].startswith("msg_"), detail
    assert (
        output["turns"][0]["messages"][0]["content"][0]["providerOptions"]["openai"]["itemId"]
        == ids[0]
    ), detail
    assert "reasoning_content" not in assistant, detail


@pytest.mark.external
@needs_sdk
@pytest.mark.parametrize("stream", [False, True], ids=["generateText", "streamText"])
def test_vercel_sdk_reasoning_comes_back_by_reference(gateway, remote_model, upstream, stream):
    remote_model()
    output, ids, assistant, detail = check_two_turns(gateway, upstream, stream, reasoning=THOUGHT)
    assert output["turns"][0]["reasoningText"] == THOUGHT, detail
    assert [i.split("_")[0] for i in ids] == ["rs", "msg"], detail
    assert assistant["reasoning_content"] == THOUGHT, detail


@pytest.mark.external
@needs_sdk
def test_vercel_sdk_reference_to_a_deleted_response_is_a_400_it_reports(
    gateway, remote_model, upstream
):
    """What turn two would meet without the resolution: the SDK surfaces the
    relay's 400, which names the reference."""
    remote_model()
    upstream.reply(*replies(False, FIRST))
    output, result = run_sdk(gateway, False, delete_first=True)
    detail = f"\n{result.stderr[-2000:]}\n{json.dumps(output, indent=1)}"
    assert output.get("deleted") == 200, detail
    assert result.returncode == 1 and output.get("errorStatus") == 400, detail
    (reference,) = [
        item
        for item in output["requests"][1]["body"]["input"]
        if item.get("type") == "item_reference"
    ]
    error = json.loads(output["errorBody"])["error"]
    assert reference["id"] in error["message"] and error["param"] == "input[1].id", detail
    assert reference["id"] in output["error"], detail
    assert len(chat_requests(upstream)) == 1, detail
