"""Chat Completions chunks -> Responses API events and the final Response.

One ResponsesStream per response: it owns the response id, the output items
and their indexes, and the event sequence numbers. A non-streaming answer is
fed through it as a single chunk (app.chat.chunks.completion_as_chunk), so
both paths build the same Response.
"""

import json
from collections.abc import Callable
from typing import Any

from app.chat.assembly import Pieces, ToolCall, ToolCalls
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
from app.chat.protocol import DEFAULT_IDS, SYSTEM_CLOCK, Clock, Ids
from app.surfaces.responses.objects import response_object, usage
from app.surfaces.responses.request import CUSTOM_INPUT, ToolNames, flat_name

Event = dict[str, Any]
_PREFIXES = {"reasoning": "rs", "message": "msg", "function_call": "fc", "custom_tool_call": "ctc"}


class _Item:
    """An output item as it grows: reasoning, message, function_call or custom_tool_call."""

    def __init__(
        self,
        kind: str,
        index: int,
        item_id: str,
        call: ToolCall | None = None,
        name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        self.kind, self.index, self.id, self.status = kind, index, item_id, "in_progress"
        self.call = call
        self.pieces = call.arguments_text if call is not None else Pieces()
        self.name, self.namespace = name, namespace

    @property
    def text(self) -> str:
        return self.pieces.text

    @property
    def call_id(self) -> str | None:
        return self.call.id if self.call is not None else None

    def part(self) -> dict[str, Any]:
        if self.kind == "reasoning":
            return {"type": "summary_text", "text": self.text}
        return {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}

    def render(self) -> dict[str, Any]:
        status, closed = self.status, self.status != "in_progress"
        if self.kind == "reasoning":
            return {"id": self.id, "type": "reasoning", "summary": [self.part()] if closed else []}
        if self.kind == "message":
            return {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "status": status,
                "content": [self.part()] if closed else [],
            }
        if self.kind == "custom_tool_call":
            return {
                "id": self.id,
                "type": "custom_tool_call",
                "call_id": self.call_id,
                "name": self.name,
                "input": self.custom_input() if closed else "",
            }
        item = {
            "id": self.id,
            "type": "function_call",
            "status": status,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.text,
        }
        if self.namespace:
            item["namespace"] = self.namespace
        return item

    def custom_input(self) -> str:
        """A custom tool's string, out of the JSON arguments it travelled in."""
        text = self.text
        try:
            arguments = json.loads(text)
        except (ValueError, RecursionError):
            return text
        if isinstance(arguments, dict) and isinstance(arguments.get(CUSTOM_INPUT), str):
            return str(arguments[CUSTOM_INPUT])
        return text


class ResponsesStream:
    def __init__(
        self,
        body: dict[str, Any],
        model: str,
        tool_names: ToolNames | None = None,
        on_complete: Callable[["ResponsesStream"], None] | None = None,
        ids: Ids = DEFAULT_IDS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.body, self.model = body, model
        # Called with this stream once the answer is complete and before the
        # final event exists (the relay stores responses there); if it
        # raises, the response fails with the exception's message.
        self.on_complete = on_complete
        self.ids = ids
        self.id = ids("resp")
        self.created_at = int(clock.time())
        self.tool_names = tool_names or {}
        self.sequence = 0
        self.items: list[_Item] = []  # every output item, in output_index order
        self.open: _Item | None = None  # the reasoning or message item receiving text
        self.calls = ToolCalls()  # by the upstream's index
        self.call_items: dict[int, _Item] = {}  # the same, as output items
        self.finish_reason: str | None = None
        self.counts: Usage | None = None
        self.usage: dict[str, Any] | None = None  # the chat usage: telemetry counts it
        self.response: dict[str, Any] | None = None  # the final Response, once finished or failed

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": f"response.{kind}", "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self.id,
            self.body,
            self.model,
            self.created_at,
            status,
            [item.render() for item in self.items],
            **extra,
        )

    def start(self) -> list[Event]:
        response = self._snapshot("in_progress")
        return [
            self._event("created", response=response),
            self._event("in_progress", response=response),
        ]

    def _ref(self, item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index}

    def _add(self, kind: str, **fields: Any) -> tuple[_Item, list[Event]]:
        item = _Item(kind, len(self.items), self.ids(_PREFIXES[kind]), **fields)
        self.items.append(item)
        return item, [self._event("output_item.added", output_index=item.index, item=item.render())]

    def _open(self, kind: str) -> tuple[_Item, list[Event]]:
        """The open item of `kind`, opening it (and closing another) if needed."""
        if self.open is not None and self.open.kind == kind:
            return self.open, []
        events = self._close_open()
        self.open, events_added = self._add(kind)
        events += events_added
        if kind == "reasoning":
            events.append(
                self._event(
                    "reasoning_summary_part.added",
                    **self._ref(self.open),
                    summary_index=0,
                    part=self.open.part(),
                )
            )
        else:
            events.append(
                self._event(
                    "content_part.added",
                    **self._ref(self.open),
                    content_index=0,
                    part=self.open.part(),
                )
            )
        return self.open, events

    def _close_open(self, status: str = "completed") -> list[Event]:
        item, self.open = self.open, None
        if item is None:
            return []
        item.status = status
        if item.kind == "reasoning":
            events = [
                self._event(
                    "reasoning_summary_text.done",
                    **self._ref(item),
                    summary_index=0,
                    text=item.text,
                ),
                self._event(
                    "reasoning_summary_part.done",
                    **self._ref(item),
                    summary_index=0,
                    part=item.part(),
                ),
            ]
        else:
            events = [
                self._event(
                    "output_text.done",
                    **self._ref(item),
                    content_index=0,
                    text=item.text,
                    logprobs=[],
                ),
                self._event(
                    "content_part.done", **self._ref(item), content_index=0, part=item.part()
                ),
            ]
        return events + [
            self._event("output_item.done", output_index=item.index, item=item.render())
        ]

    def _text(self, kind: str, delta: str) -> list[Event]:
        item, events = self._open(kind)
        item.pieces.add(delta)
        if kind == "reasoning":
            return events + [
                self._event(
                    "reasoning_summary_text.delta", **self._ref(item), summary_index=0, delta=delta
                )
            ]
        return events + [
            self._event(
                "output_text.delta", **self._ref(item), content_index=0, delta=delta, logprobs=[]
            )
        ]

    def _start_call(self, delta: ToolCallStart) -> list[Event]:
        events = self._close_open()
        namespace, name, kind = self.tool_names.get(delta.name, (None, delta.name, "function"))
        call = self.calls.start(delta.index, delta.id or self.ids("call"), delta.name)
        item, added = self._add(
            "custom_tool_call" if kind == "custom" else "function_call",
            call=call,
            name=name,
            namespace=namespace,
        )
        self.call_items[delta.index] = item
        return events + added

    def _arguments(self, delta: ToolCallArgs) -> list[Event]:
        self.calls.add(delta.index, delta.piece)
        item = self.call_items.get(delta.index)
        # A custom tool's input is only known once its JSON wrapper is whole.
        if item is None or item.kind != "function_call":
            return []
        return [self._event("function_call_arguments.delta", **self._ref(item), delta=delta.piece)]

    def feed(self, chunk: Chunk) -> list[Event]:
        events: list[Event] = []
        for delta in chunk.deltas:
            if isinstance(delta, ReasoningDelta):
                events += self._text("reasoning", delta.text)
            elif isinstance(delta, TextDelta):
                events += self._text("message", delta.text)
            elif isinstance(delta, ToolCallStart):
                events += self._start_call(delta)
            elif isinstance(delta, ToolCallArgs):
                events += self._arguments(delta)
            elif isinstance(delta, Finish):
                self.finish_reason = delta.reason
            else:
                self.counts, self.usage = delta, delta.chat
        return events

    def finish(self) -> list[Event]:
        if self.finish_reason is None:
            return self.fail(INCOMPLETE)
        events = self._close_all("completed")
        reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(
            self.finish_reason
        )
        self.response = self._snapshot(
            "incomplete" if reason else "completed",
            usage=usage(self.counts),
            incomplete_reason=reason,
        )
        if self.on_complete is not None:
            try:
                self.on_complete(self)
            except Exception as exc:
                return events + self.fail(str(exc))
        kind = "incomplete" if reason else "completed"
        return events + [self._event(kind, response=self.response)]

    def _close_all(self, status: str) -> list[Event]:
        events = self._close_open(status)
        for item in self.call_items.values():
            if item.status == "in_progress":
                item.status = status
                if item.kind == "custom_tool_call":
                    text = item.custom_input()
                    events += [
                        self._event("custom_tool_call_input.delta", **self._ref(item), delta=text),
                        self._event("custom_tool_call_input.done", **self._ref(item), input=text),
                    ]
                else:
                    events.append(
                        self._event(
                            "function_call_arguments.done",
                            **self._ref(item),
                            name=item.name,
                            arguments=item.text,
                        )
                    )
                events.append(
                    self._event("output_item.done", output_index=item.index, item=item.render())
                )
        return events

    def fail(self, message: str, code: str = "server_error") -> list[Event]:
        # Open items end as incomplete, so a client tracking items sees each end.
        events = self._close_all("incomplete")
        self.response = self._snapshot(
            "failed", error={"code": code, "message": message}, usage=usage(self.counts)
        )
        return events + [self._event("failed", response=self.response)]

    def assistant_message(self) -> dict[str, Any]:
        """This answer as a chat message, for the history of a stored response."""
        text = "".join(i.text for i in self.items if i.kind == "message")
        reasoning = "".join(i.text for i in self.items if i.kind == "reasoning")
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if reasoning:
            message["reasoning_content"] = reasoning
        calls = [i for i in self.items if i.kind in ("function_call", "custom_tool_call")]
        if calls:
            message["tool_calls"] = [
                {
                    "id": i.call_id,
                    "type": "function",
                    "function": {"name": flat_name(i.namespace, i.name or ""), "arguments": i.text},
                }
                for i in calls
            ]
        return message
