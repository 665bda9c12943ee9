"""Chat Completions relayed as the remote wrote them (checked by
app.chat.chunks), relabelled with the local model name: /v1/chat/completions
to an OpenAI-compatible remote."""

from typing import Any

from app.chat.common import INCOMPLETE
from app.chat.deltas import Chunk, Usage
from app.chat.protocol import SYSTEM_CLOCK, Clock
from app.surfaces.openai.errors import openai_error

DONE = "[DONE]"


def _choices(choices: list[dict[str, Any]], part: str) -> list[dict[str, Any]]:
    # Providers leave out keys OpenAI's schema requires (DashScope sends no
    # `refusal`, some no `index` or `logprobs`); clients validating
    # strictly need them, null where there is nothing to say.
    out = []
    for index, choice in enumerate(choices):
        choice = {"index": index, "finish_reason": None, "logprobs": None, **choice}
        inner = dict(choice.get(part) or {})
        if part == "message":
            inner = {"role": "assistant", "content": None, "refusal": None, **inner}
        out.append(dict(choice, **{part: inner}))
    return out


def completion(answer: Chunk, model: str, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """A non-streaming Chat Completions answer under the local model name."""
    return {
        "id": "chatcmpl-relay",
        "object": "chat.completion",
        "created": int(clock.time()),
        **answer.body,
        "model": model,
        "choices": _choices(answer.body["choices"], "message"),
    }


class ChatChunks:
    """Chat Completions chunks, relabelled; usage only for clients that asked.

    The relay always asks the remote for usage (to count tokens), so chunks
    carry a `usage` key the client may not expect, and a last usage-only
    chunk with no choices.
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.finished = False
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: Chunk) -> list[dict[str, Any] | str]:
        for delta in chunk.deltas:
            if isinstance(delta, Usage):
                self.usage = delta.chat
        body = chunk.body
        choices = body["choices"]
        # Any choice's end counts (a client may ask for several: `n`).
        if not self.finished and any(c.get("finish_reason") for c in choices):
            self.finished = True
        if not self.include_usage:
            if not choices:
                return []
            body = {k: v for k, v in body.items() if k != "usage"}
        return [dict(body, model=self.model, choices=_choices(choices, "delta"))]

    def finish(self) -> list[dict[str, Any] | str]:
        if not self.finished:
            return self.fail(INCOMPLETE)
        return [DONE]

    def fail(self, message: str) -> list[dict[str, Any] | str]:
        return [openai_error(message)]
