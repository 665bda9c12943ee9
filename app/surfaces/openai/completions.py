"""Legacy completions (/v1/completions) relayed as the remote wrote them,
relabelled with the local model name, with the keys OpenAI's schema requires
filled in where a remote left them out (null where there is nothing to say)."""

from typing import Any

from app.chat.common import INCOMPLETE
from app.chat.deltas import Chunk, Finish, Usage
from app.chat.protocol import SYSTEM_CLOCK, Clock
from app.surfaces.openai.errors import openai_error

DONE = "[DONE]"
# What OpenAI's schema allows; a remote's other reasons (vLLM's "abort") are
# the answer's end all the same.
_REASONS = ("stop", "length", "content_filter")


def _choices(choices: list[dict[str, Any]], whole: bool) -> list[dict[str, Any]]:
    out = []
    for index, choice in enumerate(choices):
        choice = {"index": index, "text": "", "logprobs": None, "finish_reason": None, **choice}
        if not isinstance(choice["text"], str):
            choice["text"] = ""
        reason = choice["finish_reason"]
        if reason is not None or whole:
            choice["finish_reason"] = reason if reason in _REASONS else "stop"
        out.append(choice)
    return out


def completion(answer: Chunk, model: str, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """A whole legacy completion under the local model name."""
    return {
        "id": "cmpl-relay",
        "created": int(clock.time()),
        **answer.body,
        "object": "text_completion",
        "model": model,
        "choices": _choices(answer.body["choices"], whole=True),
    }


class CompletionChunks:
    """Legacy completion chunks, relabelled; usage only for clients that
    asked (the relay always asks the remote, to count tokens)."""

    def __init__(self, model: str, include_usage: bool, clock: Clock = SYSTEM_CLOCK) -> None:
        self.model = model
        self.include_usage = include_usage
        self.clock = clock
        self.finished = False
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: Chunk) -> list[dict[str, Any] | str]:
        for delta in chunk.deltas:
            if isinstance(delta, Usage):
                self.usage = delta.chat
            elif isinstance(delta, Finish):
                self.finished = True
        body = chunk.body
        choices = body["choices"]
        if not self.include_usage:
            if not choices:
                return []
            body = {k: v for k, v in body.items() if k != "usage"}
        return [
            {
                "id": "cmpl-relay",
                "created": int(self.clock.time()),
                **body,
                "object": "text_completion",
                "model": self.model,
                "choices": _choices(choices, whole=False),
            }
        ]

    def finish(self) -> list[dict[str, Any] | str]:
        if not self.finished:
            return self.fail(INCOMPLETE)
        return [DONE]

    def fail(self, message: str) -> list[dict[str, Any] | str]:
        return [openai_error(message)]
