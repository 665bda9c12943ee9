"""An Anthropic Messages request as a Chat Completions request.

Lenient by design: Claude Code retries a 400 six times, so fields and block
types a chat remote has no use for are dropped, never refused. Only input
whose meaning cannot be kept (a message that is not an object, a tool_choice
naming no tool) raises RequestProblem (message, param), a 400 naming the field.
"""

import base64
import hashlib
import json
import re
from typing import Any

from app.chat.estimate import IMAGE_TOKENS, estimate_tokens
from app.chat.problems import RequestProblem
from app.surfaces.anthropic.output import response_format

__all__ = [
    "IMAGE_TOKENS",
    "RequestProblem",
    "chat_request",
    "estimate_tokens",
    "tool_id_in",
    "tool_id_out",
]

# Anthropic tool-use ids must match this; some providers' do not (Kimi: `functions.Bash:0`).
_SAFE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
# An id rewritten for the client: the provider's id, base64url-encoded, so
# that the next request (on any worker or host) restores it without state.
_ENCODED = "toolu_relay_"

# thinking.budget_tokens -> reasoning_effort: below 4k tokens is a quick look,
# 16k and up is Anthropic's "think hard" territory.
_BUDGET_EFFORT = ((4096, "low"), (16384, "medium"))
# output_config.effort as reasoning_effort; "max" and "xhigh" go on as they
# are, and the remote client maps them to what its provider takes.
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "max", "xhigh": "xhigh"}

# OpenAI takes `user` up to 64 characters; Claude Code's user_id is a long JSON string.
_MAX_USER = 64


def tool_id_out(provider_id: str | None) -> str:
    """A provider's tool-call id as the client may see it (reversible)."""
    if provider_id and _SAFE_ID.match(provider_id) and not provider_id.startswith(_ENCODED):
        return provider_id
    encoded = base64.urlsafe_b64encode((provider_id or "").encode()).decode().rstrip("=")
    return _ENCODED + encoded


def tool_id_in(client_id: Any) -> Any:
    """The provider's id back from what tool_id_out gave the client."""
    if not isinstance(client_id, str) or not client_id.startswith(_ENCODED):
        return client_id
    encoded = client_id[len(_ENCODED) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return client_id


def _blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """Content as a list of blocks: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise RequestProblem("content must be a string or a list of content blocks", param)
    for index, block in enumerate(content):
        if not isinstance(block, dict):
            raise RequestProblem("each content block must be an object", f"{param}[{index}]")
    return content


def _text_of(content: Any, param: str) -> str:
    return "\n".join(
        b.get("text") or ""
        for b in _blocks(content, param)
        if b.get("type") == "text" and isinstance(b.get("text"), str)
    )


def _image(block: dict[str, Any]) -> dict[str, Any] | None:
    source = block.get("source") or {}
    if source.get("type") == "base64" and source.get("data"):
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
    elif source.get("type") == "url" and source.get("url"):
        url = source["url"]
    else:
        return None  # a Files API id: nothing a remote can fetch
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any]) -> str:
    source = block.get("source") or {}
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return str(source["data"])
    title = block.get("title") or "a document"
    return f"[{title} omitted: this model cannot read {source.get('media_type') or 'it'}]"


def _user_part(block: dict[str, Any]) -> dict[str, Any] | None:
    """A user block as a chat content part (None: nothing a remote can use)."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text") or ""}
    if kind == "image":
        return _image(block)
    if kind == "document":
        return {"type": "text", "text": _document(block)}
    if kind == "search_result":
        return {"type": "text", "text": _text_of(block.get("content") or [], "search_result")}
    return None


def _tool_result(block: dict[str, Any], param: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(tool message, image parts it carried). A chat tool message holds text
    only, so images go to a user message right after the tool messages."""
    content = block.get("content")
    texts, images = [], []
    for inner in [] if content is None else _blocks(content, f"{param}.content"):
        kind = inner.get("type")
        if kind == "image":
            image = _image(inner)
            if image:
                images.append(image)
        elif kind == "tool_reference":
            # ToolSearch's answer: the named tool now joins `tools`.
            texts.append(f"Tool {inner.get('tool_name')} is now available.")
        else:
            part = _user_part(inner)
            if part:
                texts.append(part["text"])
    text = "\n".join(texts)
    if images and not text:
        text = "(the tool returned an image; it follows in the next message)"
    if block.get("is_error"):
        text = f"Error: {text}"
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise RequestProblem("tool_use_id must be a string", f"{param}.tool_use_id")
    return {"role": "tool", "tool_call_id": tool_id_in(call_id), "content": text}, images


def _parts_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _as_parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _user_messages(blocks: list[dict[str, Any]], param: str) -> list[dict[str, Any]]:
    tool_messages, parts = [], []
    for index, block in enumerate(blocks):
        if block.get("type") == "tool_result":
            message, images = _tool_result(block, f"{param}[{index}]")
            tool_messages.append(message)
            if images:
                parts.append({"type": "text", "text": "Image returned by the tool:"})
                parts += images
        else:
            part = _user_part(block)
            if part:
                parts.append(part)
    # Tool messages must follow the assistant's calls; the rest comes after.
    return tool_messages + ([{"role": "user", "content": _parts_content(parts)}] if parts else [])


def _assistant_message(blocks: list[dict[str, Any]], param: str) -> dict[str, Any]:
    texts, reasoning, calls = [], [], []
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            # Thinking models (DeepSeek, Qwen, Kimi) want their reasoning back.
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use":
            name = block.get("name")
            if not isinstance(name, str) or not isinstance(block.get("id"), str):
                raise RequestProblem("tool_use needs a string id and name", f"{param}[{index}]")
            calls.append(
                {
                    "id": tool_id_in(block["id"]),
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False),
                    },
                }
            )
        # redacted_thinking is Anthropic's ciphertext, server tool blocks ran
        # at Anthropic: neither means anything to another provider.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if any(reasoning):
        message["reasoning_content"] = "\n".join(r for r in reasoning if r)
    if calls:
        message["tool_calls"] = calls
    if message["content"] is None and not calls:
        message["content"] = ""
    return message


def _system_text(system: Any, param: str) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return _text_of(system, param)  # cache_control goes with the blocks' other keys


def convert_messages(messages: list[Any], system: Any = None) -> list[dict[str, Any]]:
    """Anthropic messages -> chat messages, with every system text merged
    into one leading system message (Claude Code puts a role: system message
    inside `messages`; chat templates take one system message, first)."""
    system_texts = [_system_text(system, "system")]
    chat: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RequestProblem("each message must be an object", param)
        role = message.get("role")
        content = message.get("content")
        if content is None:
            raise RequestProblem("content is required", f"{param}.content")
        blocks = _blocks(content, f"{param}.content")
        if role == "system":
            system_texts.append(_text_of(blocks, f"{param}.content"))
        elif role == "user":
            for message in _user_messages(blocks, f"{param}.content"):
                if chat and chat[-1]["role"] == message["role"] == "user":
                    # Some chat templates insist on alternating roles; a system
                    # message taken out of the middle leaves two users side by side.
                    chat[-1] = {
                        "role": "user",
                        "content": _parts_content(
                            _as_parts(chat[-1]["content"]) + _as_parts(message["content"])
                        ),
                    }
                else:
                    chat.append(message)
        elif role == "assistant":
            chat.append(_assistant_message(blocks, f"{param}.content"))
        else:
            raise RequestProblem(f"unsupported role {role!r} (user or assistant)", f"{param}.role")
    system_text = "\n\n".join(t for t in system_texts if t)
    return ([{"role": "system", "content": system_text}] if system_text else []) + chat


def convert_tools(tools: Any) -> list[dict[str, Any]]:
    """Custom tools as chat functions. Server tools (web_search_*, bash_*,
    code_execution_*, ...) run at Anthropic and are dropped, as hosted tools
    are on /v1/responses."""
    chat_tools = []
    for index, tool in enumerate(tools or []):
        if not isinstance(tool, dict):
            raise RequestProblem("each tool must be an object", f"tools[{index}]")
        if tool.get("type") not in (None, "custom"):
            continue
        if not isinstance(tool.get("name"), str):
            raise RequestProblem("name must be a string", f"tools[{index}].name")
        schema = tool.get("input_schema")
        schema = (
            {k: v for k, v in schema.items() if k != "$schema"} if isinstance(schema, dict) else {}
        )
        if "type" not in schema:
            # An empty schema (Claude Code's DeferredToolPlaceholder) is refused by
            # providers that validate it.
            schema = {"type": "object", "properties": {}, **schema}
        function = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        chat_tools.append({"type": "function", "function": function})
    return chat_tools


def convert_tool_choice(choice: Any, chat_tools: list[dict[str, Any]]) -> Any:
    if not isinstance(choice, dict):
        return None
    kind = choice.get("type")
    if kind == "tool":
        names = {t["function"]["name"] for t in chat_tools}
        if choice.get("name") not in names:
            raise RequestProblem(
                f"tool_choice names {choice.get('name')!r}, which is not among "
                f"the custom tools of this request",
                "tool_choice.name",
            )
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))


def reasoning_effort(thinking: Any, output_config: Any) -> str | None:
    """thinking -> reasoning_effort: `enabled` by its budget, `adaptive` by
    output_config.effort (else medium), `disabled` -> "none" (reasoning off)."""
    thinking = thinking if isinstance(thinking, dict) else {}
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int):
            return "medium"
        return next((effort for limit, effort in _BUDGET_EFFORT if budget < limit), "high")
    if kind == "adaptive":
        effort = (output_config if isinstance(output_config, dict) else {}).get("effort")
        return _EFFORTS.get(str(effort), "medium")
    if kind == "disabled":
        return "none"
    return None


# Anthropic's service tiers as OpenAI's: "standard_only" never pays for priority.
_SERVICE_TIERS = {"auto": "auto", "standard_only": "default"}


def _user(metadata: Any) -> str | None:
    user_id = (metadata if isinstance(metadata, dict) else {}).get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    return user_id if len(user_id) <= _MAX_USER else hashlib.sha256(user_id.encode()).hexdigest()


def chat_request(body: dict[str, Any], remote_model: str) -> dict[str, Any]:
    """The Chat Completions request for a Messages request."""
    request: dict[str, Any] = {
        "model": remote_model,
        "messages": convert_messages(body["messages"], body.get("system")),
    }
    tools = convert_tools(body.get("tools"))
    choice = body.get("tool_choice")
    if tools:
        request["tools"] = tools
        chat_choice = convert_tool_choice(choice, tools)
        if chat_choice is not None:
            request["tool_choice"] = chat_choice
        if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
            request["parallel_tool_calls"] = False
    output_format = response_format(body)
    if output_format is not None:
        request["response_format"] = output_format
    effort = reasoning_effort(body.get("thinking"), body.get("output_config"))
    if effort:
        request["reasoning_effort"] = effort
    for name, chat_name in (
        ("max_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("stop_sequences", "stop"),
    ):
        if body.get(name) is not None:
            request[chat_name] = body[name]
    user = _user(body.get("metadata"))
    if user:
        request["user"] = user
    # Reaches the remote only if the model forwards it (app/chat/forwarding.py).
    tier = _SERVICE_TIERS.get(str(body.get("service_tier")))
    if tier:
        request["service_tier"] = tier
    return request
