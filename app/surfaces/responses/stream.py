"""Chat Completions chunks -> Responses API events and the final Response.

One ResponsesStream per response: it owns the response id, the output items
and their indexes, and the event sequence numbers. A non-streaming answer is
fed through it as a single chunk, so both paths build the same Response.
"""

import json
import time

from app.chat.common import INCOMPLETE, call_index, new_id, reasoning_of
from app.surfaces.responses.objects import response_object, usage
from app.surfaces.responses.request import CUSTOM_INPUT, flat_name


class _Item:
    """An output item as it grows: reasoning, message or function_call."""

    def __init__(self, kind, index, **fields):
        self.kind, self.index, self.status = kind, index, "in_progress"
        self.id = new_id(
            {"reasoning": "rs", "message": "msg", "function_call": "fc", "custom_tool_call": "ctc"}[
                kind
            ]
        )
        self.text = ""
        self.call_id = fields.get("call_id")
        self.name = fields.get("name")
        self.namespace = fields.get("namespace")

    def part(self):
        if self.kind == "reasoning":
            return {"type": "summary_text", "text": self.text}
        return {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}

    def render(self):
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

    def custom_input(self):
        """A custom tool's string, out of the JSON arguments it travelled in."""
        try:
            arguments = json.loads(self.text)
        except ValueError:
            return self.text
        if isinstance(arguments, dict) and isinstance(arguments.get(CUSTOM_INPUT), str):
            return arguments[CUSTOM_INPUT]
        return self.text


class ResponsesStream:
    def __init__(self, body, model, tool_names=None, on_complete=None):
        self.body, self.model = body, model
        # Called with this stream once the answer is complete and before the
        # final event exists (the relay stores responses there); if it
        # raises, the response fails with the exception's message.
        self.on_complete = on_complete
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.tool_names = tool_names or {}
        self.sequence = 0
        self.items = []  # every output item, in output_index order
        self.open = None  # the reasoning or message item receiving text
        self.calls = {}  # upstream tool-call index -> its item
        self.finish_reason = None
        self.usage = None
        self.response = None  # the final Response, once finished or failed

    def _event(self, kind, **fields):
        event = {"type": f"response.{kind}", "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _snapshot(self, status, **extra):
        return response_object(
            self.id,
            self.body,
            self.model,
            self.created_at,
            status,
            [item.render() for item in self.items],
            **extra,
        )

    def start(self):
        response = self._snapshot("in_progress")
        return [
            self._event("created", response=response),
            self._event("in_progress", response=response),
        ]

    def _ref(self, item):
        return {"item_id": item.id, "output_index": item.index}

    def _add(self, kind, **fields):
        item = _Item(kind, len(self.items), **fields)
        self.items.append(item)
        return item, [self._event("output_item.added", output_index=item.index, item=item.render())]

    def _open(self, kind):
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

    def _close_open(self, status="completed"):
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

    def _text(self, kind, delta):
        item, events = self._open(kind)
        item.text += delta
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

    def _call(self, delta):
        # The id and name come in a call's first delta only; its arguments
        # may be split anywhere, the first piece often empty.
        events = []
        index = call_index(delta, self.calls)
        function = delta.get("function") or {}
        item = self.calls.get(index)
        if item is None:
            events += self._close_open()
            flat = function.get("name") or ""
            namespace, name, kind = self.tool_names.get(flat, (None, flat, "function"))
            item, added = self._add(
                "custom_tool_call" if kind == "custom" else "function_call",
                call_id=delta.get("id") or new_id("call"),
                name=name,
                namespace=namespace,
            )
            self.calls[index] = item
            events += added
        if function.get("arguments"):
            item.text += function["arguments"]
            # A custom tool's input is only known once its JSON wrapper is whole.
            if item.kind == "function_call":
                events.append(
                    self._event(
                        "function_call_arguments.delta",
                        **self._ref(item),
                        delta=function["arguments"],
                    )
                )
        return events

    def feed(self, chunk):
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        events = []
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            reasoning = reasoning_of(delta)
            if reasoning:
                events += self._text("reasoning", reasoning)
            if delta.get("content"):
                events += self._text("message", delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def finish(self):
        if self.finish_reason is None:
            return self.fail(INCOMPLETE)
        events = self._close_all("completed")
        reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(
            self.finish_reason
        )
        self.response = self._snapshot(
            "incomplete" if reason else "completed",
            usage=usage(self.usage),
            incomplete_reason=reason,
        )
        if self.on_complete is not None:
            try:
                self.on_complete(self)
            except Exception as exc:
                return events + self.fail(str(exc))
        kind = "incomplete" if reason else "completed"
        return events + [self._event(kind, response=self.response)]

    def _close_all(self, status):
        events = self._close_open(status)
        for item in self.calls.values():
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

    def fail(self, message, code="server_error"):
        # Open items end as incomplete, so a client tracking items sees each end.
        events = self._close_all("incomplete")
        self.response = self._snapshot(
            "failed", error={"code": code, "message": message}, usage=usage(self.usage)
        )
        return events + [self._event("failed", response=self.response)]

    def assistant_message(self):
        """This answer as a chat message, for the history of a stored response."""
        text = "".join(i.text for i in self.items if i.kind == "message")
        reasoning = "".join(i.text for i in self.items if i.kind == "reasoning")
        message = {"role": "assistant", "content": text or None}
        if reasoning:
            message["reasoning_content"] = reasoning
        calls = [i for i in self.items if i.kind in ("function_call", "custom_tool_call")]
        if calls:
            message["tool_calls"] = [
                {
                    "id": i.call_id,
                    "type": "function",
                    "function": {"name": flat_name(i.namespace, i.name), "arguments": i.text},
                }
                for i in calls
            ]
        return message


def completion_as_chunk(completion):
    """A non-streaming chat answer as the one chunk that says it all."""
    choice = (completion.get("choices") or [{}])[0]
    message = dict(choice.get("message") or {})
    message["tool_calls"] = [
        dict(call, index=i) for i, call in enumerate(message.get("tool_calls") or [])
    ]
    return {
        "choices": [
            {"index": 0, "delta": message, "finish_reason": choice.get("finish_reason") or "stop"}
        ],
        "usage": completion.get("usage"),
    }
