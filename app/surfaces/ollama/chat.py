"""Ollama's /api/chat <-> OpenAI Chat Completions, both ways, streaming and not."""

import base64
import json
import time
from datetime import datetime, timezone

from app.chat.common import INCOMPLETE, call_index, reasoning_of
from app.chat.options import options_to_fields

THINK_LEVELS = ("low", "medium", "high")

_IMAGE_MAGIC = [
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
]


def _image_url(data):
    head = base64.b64decode(data[:32] + "=" * (-len(data[:32]) % 4), validate=False)
    mime = next((m for magic, m in _IMAGE_MAGIC if head.startswith(magic)), "image/jpeg")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def _content(message):
    text = message.get("content") or ""
    images = message.get("images") or []
    if not images:
        return text
    parts = [{"type": "text", "text": text}] if text else []
    return parts + [_image_url(image) for image in images]


class _CallIds:
    """Ollama's tool calls and results may carry no ids; Chat Completions
    pairs every result with its call by id, so ids are made and matched by name."""

    def __init__(self):
        self.count = 0
        self.pending = []

    def call(self, call):
        call_id = call.get("id") or f"call_{self.count}"
        self.count += 1
        self.pending.append((call_id, call.get("function", {}).get("name")))
        return call_id

    def result(self, message):
        wanted = message.get("tool_call_id")
        name = message.get("tool_name") or message.get("name")
        for index, (call_id, call_name) in enumerate(self.pending):
            if call_id == wanted or (wanted is None and (name is None or name == call_name)):
                return self.pending.pop(index)[0]
        return wanted or f"call_{name or 'unknown'}"


def _arguments(value):
    return value if isinstance(value, str) else json.dumps(value or {})


def _messages(messages):
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


def _response_format(fmt):
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt}}
    return None


def chat_request(body, remote_model):
    """An Ollama /api/chat body as a Chat Completions request for `remote_model`."""
    request = {"model": remote_model, "messages": _messages(body["messages"])}
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
    return request


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _tool_calls(calls):
    out = []
    for index, call in enumerate(calls):
        raw = call["function"].get("arguments") or "{}"
        try:
            arguments = json.loads(raw)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            # Ollama's arguments are an object; the model's malformed text is
            # kept under one key rather than dropped, so the mistake shows.
            arguments = {"_raw": raw}
        out.append(
            {
                "id": call.get("id"),
                "function": {
                    "index": index,
                    "name": call["function"].get("name"),
                    "arguments": arguments,
                },
            }
        )
    return out


def _message(content, thinking, calls):
    message = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = _tool_calls(calls)
    return message


def _done_reason(finish_reason):
    return "length" if finish_reason == "length" else "stop"


class _Clock:
    """Ollama reports durations in nanoseconds: total, prompt (until the
    first token) and eval (from the first token on)."""

    def __init__(self, started_ns=None):
        self.started = started_ns or time.monotonic_ns()
        self.first_token = None

    def token(self):
        if self.first_token is None:
            self.first_token = time.monotonic_ns()

    def durations(self):
        now = time.monotonic_ns()
        first = self.first_token or now
        return {
            "total_duration": now - self.started,
            "load_duration": 0,
            "prompt_eval_duration": first - self.started,
            "eval_duration": now - first,
        }


def _final(finish_reason, usage, clock):
    usage = usage or {}
    return {
        "done": True,
        "done_reason": _done_reason(finish_reason),
        **clock.durations(),
        "prompt_eval_count": usage.get("prompt_tokens", 0),
        "eval_count": usage.get("completion_tokens", 0),
    }


def chat_response(completion, model, started_ns=None):
    """A Chat Completions answer as Ollama's non-streaming /api/chat answer."""
    choice = (completion.get("choices") or [{}])[0]
    source = choice.get("message") or {}
    clock = _Clock(started_ns)
    clock.token()
    message = _message(
        source.get("content") or "", reasoning_of(source), source.get("tool_calls") or []
    )
    return {
        "model": model,
        "created_at": _now(),
        "message": message,
        **_final(choice.get("finish_reason"), completion.get("usage"), clock),
    }


class ChatStream:
    """Chat Completions chunks -> Ollama /api/chat NDJSON objects.

    Text and thinking go out as they arrive. Tool calls come out whole, as
    Ollama sends them: arguments stream in pieces upstream, so they are
    collected and sent once the upstream says why it stopped.
    """

    def __init__(self, model, started_ns=None):
        self.model = model
        self.clock = _Clock(started_ns)
        self.calls = {}
        self.finish_reason = None
        self.usage = None

    def _line(self, message, **extra):
        return {
            "model": self.model,
            "created_at": _now(),
            "message": message,
            "done": False,
            **extra,
        }

    def feed(self, chunk):
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        out = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content, thinking = delta.get("content") or "", reasoning_of(delta)
            if content or thinking:
                self.clock.token()
                out.append(self._line(_message(content, thinking, [])))
            for call in delta.get("tool_calls") or []:
                self.clock.token()
                self._collect(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                out += self._flush_calls()
        return out

    def _collect(self, delta):
        # The id and name come in the first delta of a call only; the
        # arguments may be split anywhere, starting with an empty piece.
        call = self.calls.setdefault(
            call_index(delta, self.calls), {"id": None, "function": {"name": "", "arguments": ""}}
        )
        call["id"] = call["id"] or delta.get("id")
        function = delta.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""

    def _flush_calls(self):
        if not self.calls:
            return []
        calls = [self.calls[index] for index in sorted(self.calls)]
        self.calls = {}
        return [self._line(_message("", "", calls))]

    def finish(self):
        if self.finish_reason is None:
            return self.fail(INCOMPLETE)
        out = self._flush_calls()
        last = self._line({"role": "assistant", "content": ""})
        last.update(_final(self.finish_reason, self.usage, self.clock))
        return out + [last]

    def fail(self, message):
        return [{"error": message}]
