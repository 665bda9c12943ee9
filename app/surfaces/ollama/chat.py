"""Ollama's /api/chat <-> OpenAI Chat Completions, both ways, streaming and not."""

import base64
import json
from datetime import datetime, timezone
from typing import Any

from app.chat.assembly import ToolCalls, parse_arguments
from app.chat.common import INCOMPLETE
from app.chat.deltas import (
    Chunk,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallArgs,
    ToolCallStart,
    Usage,
)
from app.chat.options import options_to_fields
from app.chat.protocol import SYSTEM_CLOCK, Clock
from app.surfaces.ollama import logprobs

# Ollama's think levels ("max": Ollama 0.22), sent on as reasoning_effort
# (the remote client maps them to what its provider takes).
THINK_LEVELS = ("low", "medium", "high", "max")

_IMAGE_MAGIC = [
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
]


def _image_url(data: str) -> dict[str, Any]:
    head = base64.b64decode(data[:32] + "=" * (-len(data[:32]) % 4), validate=False)
    mime = next((m for magic, m in _IMAGE_MAGIC if head.startswith(magic)), "image/jpeg")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def _content(message: dict[str, Any]) -> str | list[dict[str, Any]]:
    text = message.get("content") or ""
    images = message.get("images") or []
    if not images:
        return text
    parts = [{"type": "text", "text": text}] if text else []
    return parts + [_image_url(image) for image in images]


class _CallIds:
    """Ollama's tool calls and results may carry no ids; Chat Completions
    pairs every result with its call by id, so ids are made and matched by name."""

    def __init__(self) -> None:
        self.count = 0
        self.pending: list[tuple[str, Any]] = []

    def call(self, call: dict[str, Any]) -> str:
        call_id = call.get("id") or f"call_{self.count}"
        self.count += 1
        self.pending.append((call_id, call.get("function", {}).get("name")))
        return call_id

    def result(self, message: dict[str, Any]) -> Any:
        wanted = message.get("tool_call_id")
        name = message.get("tool_name") or message.get("name")
        for index, (call_id, call_name) in enumerate(self.pending):
            if call_id == wanted or (wanted is None and (name is None or name == call_name)):
                return self.pending.pop(index)[0]
        return wanted or f"call_{name or 'unknown'}"


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value or {})


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = _CallIds()
    converted = []
    for message in messages:
        role = message["role"]
        out = {"role": role, "content": _content(message)}
        if role == "assistant":
            if message.get("thinking"):
                # Thinking models (DeepSeek, Qwen) want their reasoning back.
                out["reasoning_content"] = message["thinking"]
            calls = message.get("tool_calls") or []
            if calls:
                out["tool_calls"] = [
                    {
                        "id": ids.call(call),
                        "type": "function",
                        "function": {
                            "name": call["function"]["name"],
                            "arguments": _arguments(call["function"].get("arguments")),
                        },
                    }
                    for call in calls
                ]
        elif role == "tool":
            out["tool_call_id"] = ids.result(message)
        converted.append(out)
    return converted


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt}}
    return None


def chat_request(body: dict[str, Any], remote_model: str) -> dict[str, Any]:
    """An Ollama /api/chat body as a Chat Completions request for `remote_model`."""
    request: dict[str, Any] = {"model": remote_model, "messages": _messages(body["messages"])}
    request.update(options_to_fields(body.get("options")))
    if body.get("tools"):
        request["tools"] = body["tools"]
    response_format = _response_format(body.get("format"))
    if response_format:
        request["response_format"] = response_format
    think = body.get("think")
    if think in THINK_LEVELS:
        request["reasoning_effort"] = think
    elif think is True:
        request["reasoning_effort"] = "medium"
    elif think is False:
        request["reasoning_effort"] = "none"
    request.update(logprobs.request_fields(body))
    return request


def _now(clock: Clock) -> str:
    stamp = datetime.fromtimestamp(clock.time(), timezone.utc)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _tool_calls(calls: ToolCalls) -> list[dict[str, Any]]:
    out = []
    for index, call in enumerate(calls):
        arguments = parse_arguments(call.arguments)
        if arguments is None:
            # Ollama's arguments are an object; the model's malformed text is
            # kept under one key rather than dropped, so the mistake shows.
            arguments = {"_raw": call.arguments}
        # The remote's id, which the client sends back with the call and its
        # result (Ollama omits an empty one).
        ids = {"id": call.id} if call.id else {}
        out.append({**ids, "function": {"index": index, "name": call.name, "arguments": arguments}})
    return out


def _message(content: str, thinking: str, calls: ToolCalls | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = _tool_calls(calls)
    return message


class _Durations:
    """Ollama reports durations in nanoseconds: total, prompt (until the
    first token) and eval (from the first token on)."""

    def __init__(self, clock: Clock, started_ns: int | None = None) -> None:
        self.clock = clock
        self.started = started_ns or clock.monotonic_ns()
        self.first_token: int | None = None

    def token(self) -> None:
        if self.first_token is None:
            self.first_token = self.clock.monotonic_ns()

    def final(self, finish_reason: str | None, usage: Usage | None) -> dict[str, Any]:
        now = self.clock.monotonic_ns()
        first = self.first_token or now
        return {
            "done": True,
            "done_reason": "length" if finish_reason == "length" else "stop",
            "total_duration": now - self.started,
            "load_duration": 0,
            "prompt_eval_duration": first - self.started,
            "eval_duration": now - first,
            "prompt_eval_count": usage.prompt_tokens if usage else 0,
            "eval_count": usage.completion_tokens if usage else 0,
        }


class ChatStream:
    """Chat Completions chunks -> Ollama /api/chat NDJSON objects.

    Text and thinking go out as they arrive, one line per chunk. Tool calls
    come out whole, as Ollama sends them: arguments stream in pieces
    upstream, so they are collected and sent once the upstream says why it
    stopped.
    """

    def __init__(
        self, model: str, started_ns: int | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.model = model
        self.clock = clock
        self.durations = _Durations(clock, started_ns)
        self.calls = ToolCalls()
        self.finish_reason: str | None = None
        self.counts: Usage | None = None
        self.usage: dict[str, Any] | None = None

    def stamp(self) -> str:
        """Now, as Ollama writes `created_at`."""
        return _now(self.clock)

    def _line(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.model, "created_at": self.stamp(), "message": message, "done": False}

    def _take(self, chunk: Chunk) -> tuple[str, str, bool]:
        """(text, thinking, finished) of `chunk`; its calls and usage are kept."""
        content = thinking = ""
        finished = False
        for delta in chunk.deltas:
            if isinstance(delta, TextDelta):
                content = delta.text
            elif isinstance(delta, ReasoningDelta):
                thinking = delta.text
            elif isinstance(delta, ToolCallStart):
                self.durations.token()
                self.calls.start(delta.index, delta.id or "", delta.name)
            elif isinstance(delta, ToolCallArgs):
                self.durations.token()
                self.calls.add(delta.index, delta.piece)
            elif isinstance(delta, Finish):
                self.finish_reason, finished = delta.reason, True
            else:
                self.counts, self.usage = delta, delta.chat
        if content or thinking:
            self.durations.token()
        return content, thinking, finished

    def feed(self, chunk: Chunk) -> list[dict[str, Any]]:
        content, thinking, finished = self._take(chunk)
        tokens = logprobs.of_choice(chunk.body)
        out = []
        if content or thinking or tokens:
            out.append(self._line(_message(content, thinking)))
            if tokens:
                out[0]["logprobs"] = tokens
        if finished:
            out += self._flush_calls()
        return out

    def _flush_calls(self) -> list[dict[str, Any]]:
        if not self.calls:
            return []
        line = self._line(_message("", "", self.calls))
        self.calls = ToolCalls()
        return [line]

    def finish(self) -> list[dict[str, Any]]:
        if self.finish_reason is None:
            return self.fail(INCOMPLETE)
        out = self._flush_calls()
        last = self._line({"role": "assistant", "content": ""})
        last.update(self.durations.final(self.finish_reason, self.counts))
        return out + [last]

    def fail(self, message: str) -> list[dict[str, Any]]:
        return [{"error": message}]


def chat_response(
    answer: Chunk, model: str, started_ns: int | None = None, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """A whole Chat Completions answer as Ollama's non-streaming /api/chat answer."""
    stream = ChatStream(model, started_ns, clock)
    stream.durations.token()
    content, thinking, _ = stream._take(answer)
    tokens = logprobs.of_choice(answer.body)
    return {
        "model": model,
        "created_at": _now(clock),
        "message": _message(content, thinking, stream.calls),
        **({"logprobs": tokens} if tokens else {}),
        **stream.durations.final(stream.finish_reason, stream.counts),
    }
