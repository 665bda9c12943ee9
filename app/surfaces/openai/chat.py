"""Chat Completions relayed as the remote wrote them, relabelled with the local
model name: /v1/chat/completions to an OpenAI-compatible remote."""

import time

from app.chat.common import INCOMPLETE
from app.surfaces.openai.errors import openai_error

DONE = "[DONE]"


def _choices(choices, part):
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


def completion(body, model):
    """A non-streaming Chat Completions answer under the local model name."""
    return {
        "id": "chatcmpl-relay",
        "object": "chat.completion",
        "created": int(time.time()),
        **body,
        "model": model,
        "choices": _choices(body.get("choices"), "message"),
    }


class ChatChunks:
    """Chat Completions chunks, relabelled; usage only for clients that asked.

    The relay always asks the remote for usage (to count tokens), so chunks
    carry a `usage` key the client may not expect, and a last usage-only
    chunk with no choices.
    """

    def __init__(self, model, include_usage):
        self.model = model
        self.include_usage = include_usage
        self.finished = False
        self.usage = None

    def feed(self, chunk):
        self.usage = chunk.get("usage") or self.usage
        if any(c.get("finish_reason") for c in chunk.get("choices") or []):
            self.finished = True
        if not self.include_usage:
            if not chunk.get("choices"):
                return []
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
        return [dict(chunk, model=self.model, choices=_choices(chunk.get("choices"), "delta"))]

    def finish(self):
        if not self.finished:
            return self.fail(INCOMPLETE)
        return [DONE]

    def fail(self, message):
        return [openai_error(message)]
