"""Chat Completions chunks -> Anthropic Messages stream events and the final Message.

One MessagesStream per answer: it owns the message id and the content
block indexes. Blocks open and close one at a time, each closed by
content_block_stop before the next opens (Claude Code loses a block that is
never closed), and a chunk carrying reasoning and text yields the thinking
block first. A non-streaming answer is fed through it as a single chunk, so
both paths build the same Message.
"""

import json

from app.chat.common import INCOMPLETE, call_index, new_id, reasoning_of
from app.surfaces.anthropic.errors import error_event
from app.surfaces.anthropic.request import tool_id_out

# The SDK's strict mode wants a signature on every thinking block; the
# relay signs nothing (the thinking text itself travels back in history).
SIGNATURE = "ollama-relay"

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def usage(chat_usage):
    """Chat usage in Anthropic's terms. Anthropic's input_tokens excludes
    cache reads (clients add the three to size the context), so cached
    tokens are taken out of it."""
    u = chat_usage or {}
    details = u.get("prompt_tokens_details") or {}
    # DeepSeek reports cache hits at the top level.
    cached = details.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0
    written = details.get("cache_write_tokens") or details.get("cache_creation_input_tokens") or 0
    prompt = u.get("prompt_tokens") or 0
    return {
        "input_tokens": max(prompt - cached - written, 0),
        "output_tokens": u.get("completion_tokens") or 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


class _Block:
    def __init__(self, kind, index, call_id=None, name=None):
        self.kind, self.index, self.text = kind, index, ""
        self.call_id, self.name = call_id, name

    def start(self):
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": "", "signature": ""}
        if self.kind == "text":
            return {"type": "text", "text": ""}
        return {"type": "tool_use", "id": self.call_id, "name": self.name, "input": {}}

    def delta(self, piece):
        if self.kind == "thinking":
            return {"type": "thinking_delta", "thinking": piece}
        if self.kind == "text":
            return {"type": "text_delta", "text": piece}
        return {"type": "input_json_delta", "partial_json": piece}

    def render(self):
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": self.text, "signature": SIGNATURE}
        if self.kind == "text":
            return {"type": "text", "text": self.text}
        try:
            arguments = json.loads(self.text) if self.text.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            # Anthropic's input is an object: keep what the model wrote, visibly.
            arguments = {"_arguments": self.text}
        return {"type": "tool_use", "id": self.call_id, "name": self.name, "input": arguments}


class _Call:
    """An upstream tool call, buffered until its block may open."""

    def __init__(self, call_id, name):
        self.call_id, self.name, self.text, self.block = call_id, name, "", None


class MessagesStream:
    def __init__(self, model, stop_sequences=()):
        self.model = model  # the name the client asked for
        self.stop_sequences = list(stop_sequences or ())
        self.id = new_id("msg")
        self.blocks = []  # every block, in index order
        self.open = None  # the block receiving deltas
        self.calls = {}  # upstream tool-call index -> _Call
        self.finish_reason = None
        self.matched_stop = None
        self.usage = None  # the upstream's (chat) usage: telemetry counts it
        self.message = None  # the final Message, once finished

    def _snapshot(self, content, stop_reason=None, stop_sequence=None):
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage(self.usage),
        }

    def start(self):
        # message_start, and a ping as Anthropic sends one, before the upstream's first byte.
        return [{"type": "message_start", "message": self._snapshot([])}, *self.ping()]

    def ping(self):
        """What keeps a silent stream alive (Anthropic sends it between any two events)."""
        return [{"type": "ping"}]

    def _close(self):
        block, self.open = self.open, None
        if block is None:
            return []
        events = []
        if block.kind == "thinking":
            events.append(
                {
                    "type": "content_block_delta",
                    "index": block.index,
                    "delta": {"type": "signature_delta", "signature": SIGNATURE},
                }
            )
        return events + [{"type": "content_block_stop", "index": block.index}]

    def _open(self, kind, **fields):
        events = self._close()
        self.open = _Block(kind, len(self.blocks), **fields)
        self.blocks.append(self.open)
        return events + [
            {
                "type": "content_block_start",
                "index": self.open.index,
                "content_block": self.open.start(),
            }
        ]

    def _append(self, block, piece):
        block.text += piece
        return [{"type": "content_block_delta", "index": block.index, "delta": block.delta(piece)}]

    def _text(self, kind, piece):
        events = [] if self.open is not None and self.open.kind == kind else self._open(kind)
        return events + self._append(self.open, piece)

    def _open_call(self, call):
        events = self._open("tool_use", call_id=call.call_id, name=call.name)
        call.block = self.open
        return events + (self._append(call.block, call.text) if call.text else [])

    def _call(self, delta):
        # The id and name come in a call's first delta; arguments may be split
        # anywhere. Only one block may be open, so a call that starts while
        # another is open waits (buffered) until the end of the answer.
        index = call_index(delta, self.calls)
        function = delta.get("function") or {}
        call = self.calls.get(index)
        if call is None:
            call = self.calls[index] = _Call(
                tool_id_out(delta.get("id") or new_id("toolu")), function.get("name") or ""
            )
            if self.open is None or self.open.kind != "tool_use":
                return self._open_call(call) + self._arguments(call, function)
        return self._arguments(call, function)

    def _arguments(self, call, function):
        piece = function.get("arguments")
        if isinstance(piece, dict):
            piece = json.dumps(piece, ensure_ascii=False)  # Ollama-style object arguments
        if not isinstance(piece, str) or not piece:
            return []
        if call.block is not None and call.block is self.open:
            return self._append(call.block, piece)
        call.text += piece
        if call.block is not None:
            call.block.text += piece  # a closed block (interleaving provider)
        return []

    def feed(self, chunk):
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        events = []
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            reasoning = reasoning_of(delta)
            if reasoning:
                events += self._text("thinking", reasoning)
            if delta.get("content"):
                events += self._text("text", delta["content"])
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    events += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                # vLLM says which stop string matched (stop_reason), SGLang matched_stop.
                for key in ("stop_reason", "matched_stop"):
                    if choice.get(key) in self.stop_sequences:
                        self.matched_stop = choice[key]
        return events

    def _stop_reason(self):
        if self.finish_reason == "length":
            return "max_tokens"
        if self.calls:
            return "tool_use"  # some providers say `stop` after tool calls
        if self.matched_stop is not None:
            return "stop_sequence"
        return _STOP_REASONS.get(self.finish_reason, "end_turn")

    def finish(self):
        if self.finish_reason is None:
            return self.fail(INCOMPLETE)
        events = self._close()
        for call in self.calls.values():
            if call.block is None:
                events += self._open_call(call) + self._close()
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

    def fail(self, message, kind="api_error"):
        # Anthropic ends a failed stream with the error event alone; Claude
        # Code then retries the same request without streaming.
        return [error_event(message, kind)]


def completion_as_chunk(completion):
    """A non-streaming chat answer as the one chunk that says it all."""
    choice = dict((completion.get("choices") or [{}])[0])
    message = dict(choice.pop("message", None) or {})
    message["tool_calls"] = [
        dict(call, index=i) for i, call in enumerate(message.get("tool_calls") or [])
    ]
    return {
        "choices": [
            dict(
                choice, index=0, delta=message, finish_reason=choice.get("finish_reason") or "stop"
            )
        ],
        "usage": completion.get("usage"),
    }
