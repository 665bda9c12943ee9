"""Prompt and completion content as the GenAI conventions record it
(gen_ai.input.messages, gen_ai.output.messages): only with
RELAY_TRACE_CONTENT=1, and with secrets scrubbed.

Messages are `{"role", "parts": [...]}`; parts are text, reasoning,
tool_call and tool_call_response. An image, audio or file part is recorded
as its type alone: its bytes would make a span larger than a collector takes.
"""

import json
import re

from app.chat.chunks import completion_as_chunk
from app.chat.deltas import ReasoningDelta, TextDelta, ToolCallArgs, ToolCallStart

# A text part is cut past this many characters: one span holds a request's
# whole conversation, and collectors refuse an export past a few MiB.
MAX_TEXT = 32 * 1024
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# Client keys the relay made (orl-...) and the usual provider key shapes.
_KEY_SHAPES = re.compile(r"\b(orl|sk|sk-ant|sk-proj)-[A-Za-z0-9_-]{8,}")


def _text(value):
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def _parts_of(content):
    if isinstance(content, str):
        return [{"type": "text", "content": _text(content)}] if content else []
    parts = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "content": _text(part["text"])})
        elif isinstance(kind, str):
            parts.append({"type": kind})
    return parts


def _tool_calls(calls):
    parts = []
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        part = {"type": "tool_call", "name": function.get("name")}
        if call.get("id"):
            part["id"] = call["id"]
        if "arguments" in function:
            part["arguments"] = _text(function["arguments"])
        parts.append(part)
    return parts


def _message(message):
    role = message.get("role") if isinstance(message.get("role"), str) else "user"
    if role == "tool":
        part = {"type": "tool_call_response", "response": _text(message.get("content") or "")}
        if message.get("tool_call_id"):
            part["id"] = message["tool_call_id"]
        return {"role": "tool", "parts": [part]}
    parts = []
    for key in ("reasoning_content", "reasoning", "thinking"):
        if isinstance(message.get(key), str) and message[key]:
            parts.append({"type": "reasoning", "content": _text(message[key])})
            break
    parts += _parts_of(message.get("content"))
    if message.get("images"):
        parts.append({"type": "image"})
    parts += _tool_calls(message.get("tool_calls"))
    return {"role": role, "parts": parts}


def input_messages(operation, body):
    """The messages a call sends: a chat's messages, or a generate's system and prompt."""
    if isinstance(body.get("messages"), list):
        return [_message(m) for m in body["messages"] if isinstance(m, dict)]
    if operation == "text_completion":
        messages = []
        if isinstance(body.get("system"), str) and body["system"]:
            messages.append({"role": "system", "parts": _parts_of(body["system"])})
        messages.append({"role": "user", "parts": _parts_of(body.get("prompt") or "")})
        return messages
    return []  # embeddings: inputs, not messages


class StreamOutput:
    """The answer's content, gathered from its chunks (or its whole body)."""

    def __init__(self):
        self.reasoning, self.text = [], []
        self.calls = {}  # index -> [id, name, argument pieces]

    def feed_chunk(self, chunk):
        for delta in chunk.deltas:
            if isinstance(delta, TextDelta):
                self.text.append(delta.text)
            elif isinstance(delta, ReasoningDelta):
                self.reasoning.append(delta.text)
            elif isinstance(delta, ToolCallStart):
                self.calls[delta.index] = [delta.id, delta.name, []]
            elif isinstance(delta, ToolCallArgs) and delta.index in self.calls:
                self.calls[delta.index][2].append(delta.piece)

    def feed_answer(self, answer):
        if isinstance(answer.get("choices"), list) and answer["choices"]:
            self.feed_chunk(completion_as_chunk(answer))

    def feed_ollama(self, line):
        message = line.get("message") if isinstance(line.get("message"), dict) else {}
        if isinstance(message.get("thinking"), str):
            self.reasoning.append(message["thinking"])
        for source in (message.get("content"), line.get("response")):
            if isinstance(source, str):
                self.text.append(source)
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                function = call["function"]
                pieces = [json.dumps(function.get("arguments"), ensure_ascii=False)]
                self.calls[len(self.calls)] = [call.get("id"), function.get("name"), pieces]

    def messages(self, finish_reasons):
        parts = []
        if self.reasoning:
            parts.append({"type": "reasoning", "content": _text("".join(self.reasoning))})
        if self.text:
            parts.append({"type": "text", "content": _text("".join(self.text))})
        for call_id, name, pieces in self.calls.values():
            part = {"type": "tool_call", "name": name, "arguments": _text("".join(pieces))}
            if call_id:
                part["id"] = call_id
            parts.append(part)
        if not parts:
            return []
        reason = finish_reasons[-1] if finish_reasons else "stop"
        return [{"role": "assistant", "parts": parts, "finish_reason": reason}]


def scrub(text, secrets):
    """`text` without `secrets`, bearer credentials or key-shaped strings."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _BEARER.sub(lambda found: f"{found.group(1)} ***", text)
    return _KEY_SHAPES.sub("***", text)


def dumps(messages, secrets):
    return scrub(json.dumps(messages, ensure_ascii=False), secrets)
