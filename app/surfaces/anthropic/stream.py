"""Chat Completions chunks -> Anthropic Messages stream events and the final Message.

One MessagesStream per answer: it owns the message id and the content
block indexes. Blocks open and close one at a time, each closed by
content_block_stop before the next opens (Claude Code loses a block that is
never closed), and a chunk carrying reasoning and text yields the thinking
block first. A non-streaming answer is fed through it as a single chunk
(app.chat.chunks.completion_as_chunk), so both paths build the same Message.
"""

from typing import Any

from app.chat.assembly import Pieces, ToolCall, ToolCalls, parse_arguments
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
from app.chat.protocol import DEFAULT_IDS, Ids
from app.surfaces.anthropic.errors import error_event
from app.surfaces.anthropic.output import matched_stop
from app.surfaces.anthropic.request import tool_id_out

# The SDK's strict mode wants a signature on every thinking block; the
# relay signs nothing (the thinking text itself travels back in history).
SIGNATURE = "ollama-relay"

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}

Event = dict[str, Any]


def usage(counts: Usage | None) -> dict[str, int]:
    """Chat usage in Anthropic's terms. Anthropic's input_tokens excludes
    cache reads and writes (clients add the three to size the context), so
    they are taken out of it."""
    u = counts or Usage()
    return {
        "input_tokens": max(u.prompt_tokens - u.cached_tokens - u.cache_write_tokens, 0),
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    }


class _Block:
    """A content block: thinking or text (its own pieces), or tool_use (its call's)."""

    __slots__ = ("kind", "index", "call", "pieces")

    def __init__(self, kind: str, index: int, call: ToolCall | None = None) -> None:
        self.kind, self.index, self.call = kind, index, call
        self.pieces = call.arguments_text if call is not None else Pieces()

    def start(self) -> dict[str, Any]:
        if self.call is not None:
            return {"type": "tool_use", "id": self.call.id, "name": self.call.name, "input": {}}
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": "", "signature": ""}
        return {"type": "text", "text": ""}

    def delta(self, piece: str) -> dict[str, str]:
        if self.kind == "thinking":
            return {"type": "thinking_delta", "thinking": piece}
        if self.kind == "text":
            return {"type": "text_delta", "text": piece}
        return {"type": "input_json_delta", "partial_json": piece}

    def render(self) -> dict[str, Any]:
        text = self.pieces.text
        if self.call is None:
            if self.kind == "thinking":
                return {"type": "thinking", "thinking": text, "signature": SIGNATURE}
            return {"type": "text", "text": text}
        arguments = parse_arguments(text)
        if arguments is None:
            # Anthropic's input is an object: keep what the model wrote, visibly.
            arguments = {"_arguments": text}
        return {"type": "tool_use", "id": self.call.id, "name": self.call.name, "input": arguments}


class MessagesStream:
    def __init__(
        self,
        model: str,
        stop_sequences: list[str] | tuple[str, ...] | None = (),
        ids: Ids = DEFAULT_IDS,
    ) -> None:
        self.model = model  # the name the client asked for
        self.stop_sequences = list(stop_sequences or ())
        self.ids = ids
        self.id = ids("msg")
        self.blocks: list[_Block] = []  # every block, in index order
        self.open: _Block | None = None  # the block receiving deltas
        self.calls = ToolCalls()  # by the upstream's index
        self.waiting: list[ToolCall] = []  # calls whose block has not opened yet
        self.finish_reason: str | None = None
        self.named_stop: str | None = None  # the stop the remote says it matched
        self.matched_stop: str | None = None
        self.counts: Usage | None = None
        self.usage: dict[str, Any] | None = None  # the chat usage: telemetry counts it
        self.message: dict[str, Any] | None = None  # the final Message, once finished

    def _snapshot(
        self,
        content: list[dict[str, Any]],
        stop_reason: str | None = None,
        stop_sequence: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage(self.counts),
        }

    def start(self) -> list[Event]:
        # message_start, and a ping as Anthropic sends one, before the upstream's first byte.
        return [{"type": "message_start", "message": self._snapshot([])}, *self.ping()]

    def ping(self) -> list[Event]:
        """What keeps a silent stream alive (Anthropic sends it between any two events)."""
        return [{"type": "ping"}]

    def _close(self) -> list[Event]:
        block, self.open = self.open, None
        if block is None:
            return []
        events: list[Event] = []
        if block.kind == "thinking":
            events.append(
                {
                    "type": "content_block_delta",
                    "index": block.index,
                    "delta": {"type": "signature_delta", "signature": SIGNATURE},
                }
            )
        return events + [{"type": "content_block_stop", "index": block.index}]

    def _open(self, kind: str, call: ToolCall | None = None) -> list[Event]:
        events = self._close()
        self.open = _Block(kind, len(self.blocks), call)
        self.blocks.append(self.open)
        return events + [
            {
                "type": "content_block_start",
                "index": self.open.index,
                "content_block": self.open.start(),
            }
        ]

    def _delta(self, block: _Block, piece: str) -> Event:
        return {"type": "content_block_delta", "index": block.index, "delta": block.delta(piece)}

    def _text(self, kind: str, piece: str) -> list[Event]:
        events = [] if self.open is not None and self.open.kind == kind else self._open(kind)
        assert self.open is not None
        self.open.pieces.add(piece)
        return events + [self._delta(self.open, piece)]

    def _open_call(self, call: ToolCall) -> list[Event]:
        events = self._open("tool_use", call)
        assert self.open is not None
        # What arrived while it waited goes out in one delta.
        arguments = call.arguments
        return events + ([self._delta(self.open, arguments)] if arguments else [])

    def _start_call(self, delta: ToolCallStart) -> list[Event]:
        # Only one block may be open, so a call that starts while another is
        # open waits (buffered) until the end of the answer.
        call = self.calls.start(delta.index, tool_id_out(delta.id or self.ids("toolu")), delta.name)
        if self.open is not None and self.open.kind == "tool_use":
            self.waiting.append(call)
            return []
        return self._open_call(call)

    def _arguments(self, delta: ToolCallArgs) -> list[Event]:
        call = self.calls.add(delta.index, delta.piece)
        # A call whose block is closed (an interleaving provider) or not yet
        # open keeps its pieces silently; the Message has them all.
        if call is not None and self.open is not None and self.open.call is call:
            return [self._delta(self.open, delta.piece)]
        return []

    def feed(self, chunk: Chunk) -> list[Event]:
        events: list[Event] = []
        for delta in chunk.deltas:
            if isinstance(delta, ReasoningDelta):
                events += self._text("thinking", delta.text)
            elif isinstance(delta, TextDelta):
                events += self._text("text", delta.text)
            elif isinstance(delta, ToolCallStart):
                events += self._start_call(delta)
            elif isinstance(delta, ToolCallArgs):
                events += self._arguments(delta)
            elif isinstance(delta, Finish):
                self.finish_reason = delta.reason
                for stop in delta.stops:
                    if stop in self.stop_sequences:
                        self.named_stop = stop
            else:
                self.counts, self.usage = delta, delta.chat
        return events

    def _last_text(self) -> str:
        if not self.blocks or self.blocks[-1].kind != "text":
            return ""
        return self.blocks[-1].pieces.text

    def _stop_reason(self) -> str:
        if not self.calls:
            self.matched_stop = matched_stop(
                self.finish_reason, self.stop_sequences, self.named_stop, self._last_text()
            )
        if self.finish_reason == "length":
            return "max_tokens"
        if self.calls:
            return "tool_use"  # some providers say `stop` after tool calls
        if self.matched_stop is not None:
            return "stop_sequence"
        # tool_calls with no call left (none was an object) ends the turn.
        return _STOP_REASONS.get(self.finish_reason or "", "end_turn")

    def finish(self) -> list[Event]:
        if self.finish_reason is None:
            return self.fail(INCOMPLETE)
        events = self._close()
        for call in self.waiting:
            events += self._open_call(call) + self._close()
        self.waiting = []
        stop_reason = self._stop_reason()
        stop_sequence = self.matched_stop if stop_reason == "stop_sequence" else None
        self.message = self._snapshot([b.render() for b in self.blocks], stop_reason, stop_sequence)
        return events + [
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": self.message["usage"],
            },
            {"type": "message_stop"},
        ]

    def fail(self, message: str, kind: str = "api_error") -> list[Event]:
        # Anthropic ends a failed stream with the error event alone; Claude
        # Code then retries the same request without streaming.
        return [error_event(message, kind)]
