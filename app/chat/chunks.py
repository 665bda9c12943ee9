"""The one place a Chat Completions remote's answer is checked: each streamed
chunk (ChunkReader) or a whole answer (completion_as_chunk) becomes a Chunk,
its body cleaned for passthrough and what it says read into typed deltas.

Remotes are not all careful. What has the wrong type is dropped (a choice or
a tool call that is not an object, text that is not a string) or read as
nothing (a count that is not one); the converters then only ever see the
types app.chat.deltas declares. An item that is not an object at all is no
chunk: read() gives None and the remote raises its UpstreamError.
Plain isinstance checks, one pass, no copy of a string: this runs on every
chunk of every stream.
"""

import json
from typing import Any

from app.chat.deltas import (
    Chunk,
    Delta,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallArgs,
    ToolCallStart,
    Usage,
)

# A count past this is no count: JSON's safe integers, and a database's BIGINT.
_MAX_COUNT = 2**53
# Where providers name the stop string that matched: vLLM, SGLang.
_STOP_KEYS = ("stop_reason", "matched_stop")


def _is_count(value: object) -> bool:
    # type() rather than isinstance(): True is an int, and no count.
    return type(value) is int and 0 <= value <= _MAX_COUNT


def read_usage(raw: object) -> Usage | None:
    """A usage object's counts; None when there is none (absent, empty, not an object)."""
    if not isinstance(raw, dict) or not raw:
        return None
    chat: dict[str, Any] = {}
    for key, value in raw.items():
        if _is_count(value):
            chat[key] = value
        elif isinstance(value, dict) and isinstance(key, str) and key.endswith("_details"):
            chat[key] = {k: v for k, v in value.items() if _is_count(v)}
    prompt, completion = chat.get("prompt_tokens", 0), chat.get("completion_tokens", 0)
    details = chat.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=chat.get("total_tokens") or prompt + completion,
        # DeepSeek reports cache hits at the top level.
        cached_tokens=details.get("cached_tokens") or chat.get("prompt_cache_hit_tokens", 0),
        cache_write_tokens=details.get("cache_write_tokens")
        or details.get("cache_creation_input_tokens", 0),
        reasoning_tokens=(chat.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
        chat=chat,
    )


def ollama_usage(line: dict[str, Any]) -> dict[str, Any] | None:
    """A remote Ollama's final line's counts as chat usage (counts only)."""
    counts = read_usage(
        {
            "prompt_tokens": line.get("prompt_eval_count", 0),
            "completion_tokens": line.get("eval_count", 0),
        }
    )
    return counts.chat if counts else None


def _content(content: object) -> str | None:
    """Message content as text: some providers (Mistral) send a list of parts."""
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return None


def _reasoning(source: dict[str, Any]) -> str:
    # DashScope and DeepSeek say reasoning_content; vLLM, OpenRouter and
    # Ollama say reasoning.
    for key in ("reasoning_content", "reasoning"):
        text = source.get(key)
        if isinstance(text, str) and text:
            return text
    return ""


def _clean_part(inner: object) -> dict[str, Any]:
    part = dict(inner) if isinstance(inner, dict) else {}
    if "content" in part:
        part["content"] = _content(part["content"])
    calls = part.get("tool_calls")
    if isinstance(calls, list):
        part["tool_calls"] = [call for call in calls if isinstance(call, dict)]
    elif calls is not None:
        del part["tool_calls"]
    return part


def _clean(raw: dict[str, Any]) -> dict[str, Any]:
    """The chunk or answer as a passthrough relays it."""
    body = dict(raw)
    if not isinstance(body.get("usage"), dict):
        body.pop("usage", None)
    choices = body.get("choices")
    cleaned = []
    for choice in choices if isinstance(choices, list) else ():
        if isinstance(choice, dict):
            choice = dict(choice)
            for part in ("delta", "message"):
                if part in choice:
                    choice[part] = _clean_part(choice[part])
            cleaned.append(choice)
    body["choices"] = cleaned
    return body


def _arguments(value: object) -> str:
    """A call's arguments as JSON text: most providers send a string, some
    (Ollama-style) an object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (ValueError, RecursionError):  # NaN is fine; nesting past the limit is not
            return ""
    return ""


def _text_deltas(inner: dict[str, Any], deltas: list[Delta]) -> None:
    reasoning = _reasoning(inner)
    if reasoning:
        deltas.append(ReasoningDelta(reasoning))
    content = inner.get("content")
    if content:  # a string, once cleaned
        deltas.append(TextDelta(content))


def _finish(choice: dict[str, Any], default: str | None = None) -> Finish | None:
    reason = choice.get("finish_reason")
    if not reason:
        if default is None:
            return None
        reason = default
    stops = tuple(s for s in (choice.get(key) for key in _STOP_KEYS) if isinstance(s, str))
    # Any other truthy value still says the answer is complete.
    return Finish(reason if isinstance(reason, str) else "stop", stops)


def _tail(body: dict[str, Any], finish: Finish | None, deltas: list[Delta]) -> Chunk:
    if finish is not None:
        deltas.append(finish)
    usage = read_usage(body.get("usage"))
    if usage is not None:
        deltas.append(usage)
    return Chunk(body, tuple(deltas))


class ChunkReader:
    """Reads the chunks of one stream, in order: which call a tool-call delta
    continues depends on the calls before it."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: set[int] = set()

    def read(self, raw: object) -> Chunk | None:
        """`raw` checked and read; None when it is not a chat chunk at all."""
        if not isinstance(raw, dict):
            return None
        body = _clean(raw)
        deltas: list[Delta] = []
        finish = None
        if body["choices"]:  # the first choice: the converters ask for one
            choice = body["choices"][0]
            delta = choice.get("delta") or {}
            _text_deltas(delta, deltas)
            for call in delta.get("tool_calls") or ():
                self._call(call, deltas)
            finish = _finish(choice)
        return _tail(body, finish, deltas)

    def _index(self, call: dict[str, Any], function: dict[str, Any]) -> int:
        """Which call a delta continues. Most providers number them; some send
        the index only in a call's first delta, or never: then an id or a name
        starts a new call and anything else continues the last."""
        index = call.get("index")
        if type(index) is int:
            return index
        if not self._calls:
            return 0
        if call.get("id") or function.get("name"):
            return max(self._calls) + 1
        return max(self._calls)

    def _call(self, call: dict[str, Any], deltas: list[Delta]) -> None:
        # The id and name come in a call's first delta; the arguments may be
        # split anywhere, the first piece often empty.
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        index = self._index(call, function)
        if index not in self._calls:
            self._calls.add(index)
            deltas.append(_start(index, call, function))
        piece = _arguments(function.get("arguments"))
        if piece:
            deltas.append(ToolCallArgs(index, piece))


def _start(index: int, call: dict[str, Any], function: dict[str, Any]) -> ToolCallStart:
    call_id, name = call.get("id"), function.get("name")
    return ToolCallStart(
        index,
        call_id if isinstance(call_id, str) and call_id else None,
        name if isinstance(name, str) else "",
    )


def completion_as_chunk(raw: dict[str, Any]) -> Chunk:
    """A whole (non-streaming) answer as the one chunk that says it all: its
    body cleaned as a passthrough relays it, and the deltas of its first
    choice's message, finished ("stop" when the remote did not say why)."""
    body = _clean(raw)
    deltas: list[Delta] = []
    choice = body["choices"][0] if body["choices"] else {}
    message = choice.get("message") or {}
    _text_deltas(message, deltas)
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        deltas.append(_start(index, call, function))
        piece = _arguments(function.get("arguments"))
        if piece:
            deltas.append(ToolCallArgs(index, piece))
    return _tail(body, _finish(choice, default="stop"), deltas)
