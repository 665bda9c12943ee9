"""The typed deltas a remote's Chat Completions chunk (or whole answer) is read
into (by app.chat.chunks), and the Chunk that carries them to a converter.

Every field has the type it says: a converter never checks remote data.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text (never empty)."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning (never empty)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A tool call begins. `index` is the remote's (calls may interleave);
    `id` is None when the remote gave none (the converter makes one)."""

    index: int
    id: str | None
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallArgs:
    """A piece of a started call's JSON arguments (never empty)."""

    index: int
    piece: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The remote says why it stopped. `stops`: the stop strings it says
    matched (vLLM's stop_reason, SGLang's matched_stop)."""

    reason: str
    stops: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts (non-negative ints, 0 when not reported) and `chat`, the
    usage object with its counts only: what telemetry and accounting read."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    chat: dict[str, Any] | None = None


Delta = TextDelta | ReasoningDelta | ToolCallStart | ToolCallArgs | Finish | Usage


@dataclass(frozen=True, slots=True)
class Chunk:
    """A remote's chunk, checked: `body` is the chunk as a passthrough relays
    it (choices and their delta or message are objects, tool calls too), and
    `deltas` what it says, in this order: reasoning, text, tool calls,
    finish, usage (each at most once but tool calls)."""

    body: dict[str, Any]
    deltas: tuple[Delta, ...]
