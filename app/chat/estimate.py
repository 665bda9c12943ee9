"""The relay's own token estimate: what count_tokens answers, and what a
request is counted as when its remote reports no usage (a stream the client
or the remote cut before the usage chunk, a remote that never sends one).

Input: the request as sent to the remote, its messages and tools written as
JSON, characters divided by 4 and rounded up, plus IMAGE_TOKENS per image
(its base64 says little about its tokens). Output: the characters of the
text, reasoning and tool calls the remote sent, divided by 4, rounded up.
Pure: no I/O.
"""

import json
import math
from typing import Any

from app.chat.deltas import Chunk, ReasoningDelta, TextDelta, ToolCallArgs, ToolCallStart

# Anthropic bills an image of up to ~1.15 megapixels about 1,600 tokens.
IMAGE_TOKENS = 1600
CHARACTERS_PER_TOKEN = 4


def tokens(characters: int) -> int:
    return math.ceil(characters / CHARACTERS_PER_TOKEN)


def estimate_tokens(chat: dict[str, Any]) -> int:
    """An estimate of the input tokens of a Chat Completions request (or a
    remote Ollama's /api/chat request, whose images are a list beside the
    content)."""
    images = 0

    def without_images(message: Any) -> Any:
        nonlocal images
        if not isinstance(message, dict):
            return message
        content = message.get("content")
        if isinstance(content, list):
            images += sum(
                1 for p in content if isinstance(p, dict) and p.get("type") == "image_url"
            )
            content = [
                p for p in content if not (isinstance(p, dict) and p.get("type") == "image_url")
            ]
        if isinstance(message.get("images"), list):
            images += len(message["images"])
            message = {k: v for k, v in message.items() if k != "images"}
        return dict(message, content=content)

    messages = [without_images(m) for m in chat.get("messages") or ()]
    text = json.dumps(
        {"messages": messages, "tools": chat.get("tools") or []}, ensure_ascii=False, default=str
    )
    return tokens(len(text)) + images * IMAGE_TOKENS


def input_tokens(body: dict[str, Any]) -> int:
    """The estimate for a request body as sent to a remote: chat (messages),
    embeddings (input) or a remote Ollama's /api/generate (prompt, system,
    images: counted as the two messages they stand for)."""
    if "messages" in body:
        return estimate_tokens(body)
    if "input" in body:
        texts = body["input"]
        texts = [texts] if isinstance(texts, str) else texts
        return tokens(sum(len(t) for t in texts if isinstance(t, str)))
    messages: list[dict[str, Any]] = [
        {"role": role, "content": body[field]}
        for role, field in (("system", "system"), ("user", "prompt"))
        if isinstance(body.get(field), str) and body[field]
    ]
    if messages and isinstance(body.get("images"), list):
        messages[-1]["images"] = body["images"]
    return estimate_tokens({"messages": messages})


def chunk_characters(chunk: Chunk) -> int:
    """The characters of what a remote's chunk says: its text, reasoning and tool calls."""
    size = 0
    for delta in chunk.deltas:
        if isinstance(delta, (TextDelta, ReasoningDelta)):
            size += len(delta.text)
        elif isinstance(delta, ToolCallArgs):
            size += len(delta.piece)
        elif isinstance(delta, ToolCallStart):
            size += len(delta.name)
    return size


def completion_characters(body: dict[str, Any]) -> int:
    """The characters of the text of a legacy completion (or its chunk)."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        return 0
    texts = [c.get("text") for c in choices if isinstance(c, dict)]
    return sum(len(text) for text in texts if isinstance(text, str))


def line_characters(line: dict[str, Any]) -> int:
    """The characters of what a remote Ollama's line says: /api/generate's
    response and thinking, /api/chat's message content and thinking."""
    size = 0
    for source in (line, line.get("message")):
        if isinstance(source, dict):
            for field in ("response", "content", "thinking"):
                value = source.get(field)
                if isinstance(value, str):
                    size += len(value)
    return size


def usage(body: dict[str, Any], characters: int) -> dict[str, int]:
    """Chat usage for a request `body` whose answer's text had `characters`."""
    prompt, completion = input_tokens(body), tokens(characters)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
