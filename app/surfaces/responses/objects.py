"""The Response object: what the request set, echoed as OpenAI echoes it, and
token usage in the Responses API's terms."""

from typing import Any

from app.chat.deltas import Usage


def usage(counts: Usage | None) -> dict[str, Any]:
    """Chat usage -> Responses usage, with the details the upstream reported."""
    u = counts or Usage()
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def _echoed_tool(tool: Any) -> Any:
    # As OpenAI echoes tools: the fields its schema requires, filled in.
    if tool.get("type") == "function":
        return {"parameters": None, "strict": True, **tool}
    if tool.get("type") == "namespace":
        return {
            "description": "",
            **tool,
            "tools": [_echoed_tool(inner) for inner in tool.get("tools") or []],
        }
    return tool


_REQUIRED_NULLABLE = {"error", "incomplete_details", "instructions", "temperature", "top_p"}


def response_object(
    response_id: str,
    body: dict[str, Any],
    model: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """A complete Response, echoing what the request set."""
    reasoning = body.get("reasoning") or {}
    response = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True),
        "temperature": body.get("temperature"),
        "text": body["text"]
        if (body.get("text") or {}).get("format")
        else {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_echoed_tool(tool) for tool in body.get("tools") or []],
        "top_p": body.get("top_p"),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
    # The schema wants these present even when null; the rest only when set.
    return {k: v for k, v in response.items() if v is not None or k in _REQUIRED_NULLABLE}
