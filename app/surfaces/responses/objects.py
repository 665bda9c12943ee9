"""The Response object: what the request set, echoed as OpenAI echoes it, and
token usage in the Responses API's terms."""


def usage(chat_usage):
    """Chat usage -> Responses usage, with the details the upstream reported."""
    u = chat_usage or {}
    prompt, completion = u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0
    prompt_details = u.get("prompt_tokens_details") or {}
    completion_details = u.get("completion_tokens_details") or {}
    # DeepSeek reports cache hits at the top level.
    cached = prompt_details.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": cached,
            "cache_write_tokens": prompt_details.get("cache_write_tokens") or 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0
        },
        "total_tokens": u.get("total_tokens") or prompt + completion,
    }


def _echoed_tool(tool):
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
    response_id,
    body,
    model,
    created_at,
    status,
    output,
    usage=None,
    error=None,
    incomplete_reason=None,
):
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
