"""Input items as GET /v1/responses/{id}/input_items lists them: each with an id
(and a status where the API has one), messages with their parts spelled out."""

from typing import Any

from app.chat.common import new_id
from app.chat.problems import RequestProblem
from app.surfaces.responses.request import convert_input

_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
}


def _parts(role: Any, content: Any) -> Any:
    if not isinstance(content, str):
        return content
    if role == "assistant":
        return [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}]
    return [{"type": "input_text", "text": content}]


def resource_items(items: Any) -> list[dict[str, Any]]:
    """The request's `input`, normalised for storage and listing."""
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    out = []
    for item in items:
        kind = item.get("type", "message")
        resource = {
            "id": item.get("id") or new_id(_PREFIX.get(kind, "item")),
            "type": kind,
            **{k: v for k, v in item.items() if k not in ("id", "type")},
        }
        if kind == "message":
            resource["content"] = _parts(item.get("role"), item.get("content"))
        if (
            kind in ("message", "function_call", "function_call_output")
            or resource.get("role") == "assistant"
        ):
            resource.setdefault("status", "completed")
        out.append(resource)
    return out


def page(
    items: list[dict[str, Any]], limit: int = 20, order: str = "desc", after: str | None = None
) -> dict[str, Any]:
    """A page of `items` in OpenAI's list shape (cursor: the id of the last item seen)."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [item["id"] for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": len(ordered) > limit,
    }


def referenced_ids(items: Any) -> list[Any]:
    """The ids of the `item_reference` input items (the Vercel AI SDK sends
    earlier output back this way when the response was stored)."""
    if isinstance(items, str):
        return []
    return [
        item.get("id")
        for item in items
        if isinstance(item, dict) and item.get("type") == "item_reference"
    ]


def resolve_references(items: Any, found: dict[str, Any]) -> Any:
    """`items` with each item_reference replaced by the stored output item it
    names (`found`: id -> item); an id not found is a RequestProblem naming it."""
    if isinstance(items, str):
        return items
    resolved = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "item_reference":
            if item.get("id") not in found:
                raise RequestProblem(
                    f"item_reference {item.get('id')!r} names no stored item "
                    f"(it may have expired, been deleted, or belong to another "
                    f"key)",
                    f"input[{index}].id",
                )
            item = found[item["id"]]
        resolved.append(item)
    return resolved


def turn_from_items(input_items: Any, output_items: Any) -> list[dict[str, Any]] | None:
    """The chat messages of a stored turn, rebuilt from its input items and
    its output items; None when they do not convert. Stored responses keep
    a turn's chat messages only when this does not give them back exactly,
    rather than keeping every input twice (app/responses_store.py)."""
    try:
        # Tool names need no map: convert_tools flattens them as convert_input does.
        return convert_input(list(input_items) + list(output_items or []), {})
    except (RequestProblem, AttributeError, KeyError, TypeError):
        return None
