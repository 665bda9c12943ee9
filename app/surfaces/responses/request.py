"""A Responses API request as a Chat Completions request.

Raises RequestProblem (message, param) for input a chat remote cannot take;
the caller turns it into a 400 naming the parameter.
"""

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from app.chat.problems import RequestProblem

# Tools a Chat Completions remote cannot run. They are dropped unless the
# request insists on one through tool_choice: Codex sends web_search with
# every request, and refusing it would refuse Codex.
HOSTED_TOOLS = {
    "web_search",
    "web_search_preview",
    "web_search_2025_08_26",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "computer_use_preview",
    "computer_use",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "tool_search",
}

# A custom (freeform) tool takes one string; a chat remote only has JSON
# functions, so the string travels as the function's one argument.
CUSTOM_INPUT = "input"

# flat chat name -> (namespace, name, "function" or "custom"): how a chat
# remote's tool call names the Responses tool it calls.
ToolNames = dict[str, tuple[str | None, str, str]]

_SAME_IN_CHAT = ("metadata", "service_tier", "prompt_cache_retention", "prompt_cache_options")

_SAFE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def flat_name(namespace: str | None, name: str) -> str:
    """A namespaced tool's name as providers accept it: ^[a-zA-Z0-9_-]{1,64}$."""
    joined = re.sub(r"[^a-zA-Z0-9_-]", "_", f"{namespace}__{name}" if namespace else name)
    if _SAFE_NAME.match(joined):
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:8]
    return f"{joined[:55]}_{digest}"


def _field(obj: Any, key: str, param: str, kind: type = str, required: bool = True) -> Any:
    """obj[key] when it has the type a chat remote needs, else RequestProblem."""
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind):
        what = {str: "a string", dict: "an object", list: "a list"}.get(kind, "valid")  # type: ignore[call-overload]
        raise RequestProblem(f"{key} must be {what}", f"{param}.{key}")
    return value


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestProblem("must be an object", param)
    return value


def _function_tool(
    tool: dict[str, Any], param: str, namespace: str | None = None
) -> dict[str, Any]:
    function = {"name": flat_name(namespace, _field(tool, "name", param))}
    if _field(tool, "description", param, required=False) is not None:
        function["description"] = tool["description"]
    if _field(tool, "parameters", param, dict, required=False) is not None:
        function["parameters"] = tool["parameters"]
    if _field(tool, "strict", param, bool, required=False) is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _custom_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    description = _field(tool, "description", param, required=False) or ""
    fmt = _field(tool, "format", param, dict, required=False) or {}
    if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        description += (
            f"\n\nPass the raw text as `{CUSTOM_INPUT}`; it must match this "
            f"{fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
        )
    return {
        "type": "function",
        "function": {
            "name": flat_name(None, _field(tool, "name", param)),
            "description": description.strip(),
            "parameters": {
                "type": "object",
                "properties": {CUSTOM_INPUT: {"type": "string"}},
                "required": [CUSTOM_INPUT],
                "additionalProperties": False,
            },
        },
    }


def convert_tools(tools: Any) -> tuple[list[dict[str, Any]], ToolNames]:
    """(chat tools, {flat name: (namespace, name, kind)}) for the tools a chat
    remote can run; kind is "function" or "custom"."""
    chat_tools, names = [], {}

    def add(chat_tool: dict[str, Any], namespace: str | None, name: str, kind: str) -> None:
        chat_tools.append(chat_tool)
        names[chat_tool["function"]["name"]] = (namespace, name, kind)

    for index, tool in enumerate(tools or []):
        param = f"tools[{index}]"
        kind = _field(_object(tool, param), "type", param)
        if kind == "function":
            add(_function_tool(tool, param), None, tool["name"], "function")
        elif kind == "custom":
            add(_custom_tool(tool, param), None, tool["name"], "custom")
        elif kind == "namespace":
            namespace = _field(tool, "name", param)
            for inner_index, inner in enumerate(_field(tool, "tools", param, list)):
                inner_param = f"{param}.tools[{inner_index}]"
                if _object(inner, inner_param).get("type", "function") == "function":
                    add(
                        _function_tool(inner, inner_param, namespace),
                        namespace,
                        inner["name"],
                        "function",
                    )
        elif kind not in HOSTED_TOOLS:
            raise RequestProblem(f"unsupported tool type {kind!r}", f"{param}.type")
    return chat_tools, names


def convert_tool_choice(choice: Any, names: ToolNames) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if not isinstance(choice, (dict, str)):
        raise RequestProblem("must be a string or an object", "tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else choice
    if kind == "function" and isinstance(choice, dict):
        name = _field(choice, "name", "tool_choice")
        wanted = (choice.get("namespace"), name)
        flat = next((f for f, (ns, n, _) in names.items() if (ns, n) == wanted), flat_name(*wanted))
        return {"type": "function", "function": {"name": flat}}
    if kind == "allowed_tools" and isinstance(choice, dict):
        return choice.get("mode", "auto")
    raise RequestProblem(
        f"tool_choice {kind!r} names a hosted tool that this remote (a Chat "
        f"Completions API) cannot run",
        "tool_choice",
    )


def _text(part: dict[str, Any], param: str) -> str:
    for key in ("text", "refusal"):
        if key in part:
            return str(_field(part, key, param))
    return ""


def _content(content: Any, param: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestProblem("content must be a string or a list of parts", param)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "refusal"):
            parts.append({"type": "text", "text": _text(part, f"{param}[{index}]")})
        elif kind == "input_image" and part.get("image_url"):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise RequestProblem(
                f"unsupported content part {kind!r} (a Chat Completions "
                f"remote takes text and image URLs)",
                f"{param}[{index}].type",
            )
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _output_text(output: Any, param: str) -> str:
    """function_call_output's output: a string, or parts whose text is joined."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(
            _text(_object(part, f"{param}[{index}]"), f"{param}[{index}]")
            for index, part in enumerate(output)
        )
    raise RequestProblem("output must be a string or a list of parts", param)


def _reasoning_text(item: dict[str, Any], param: str) -> str:
    # The full reasoning (content) when the client kept it, else the summary.
    key = "content" if item.get("content") else "summary"
    parts = _field(item, key, param, list, required=False) or []
    pieces = [
        _text(_object(part, f"{param}.{key}[{i}]"), f"{param}.{key}[{i}]")
        for i, part in enumerate(parts)
    ]
    return "\n".join(p for p in pieces if p)


def convert_input(items: Any, names_by_tool: ToolNames) -> list[dict[str, Any]]:
    """Responses input items -> chat messages."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    flat = {(namespace, name): flat for flat, (namespace, name, _) in names_by_tool.items()}
    messages, reasoning = [], None
    for index, item in enumerate(items):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise RequestProblem("each input item must be an object", param)
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            raise RequestProblem("type must be a string", f"{param}.type")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise RequestProblem(f"unsupported role {role!r}", f"{param}.role")
            message: dict[str, Any] = {
                "role": "system" if role == "developer" else role,
                "content": _content(item.get("content"), f"{param}.content"),
            }
            if role == "assistant" and reasoning:
                message["reasoning_content"], reasoning = reasoning, None
            messages.append(message)
        elif kind in ("function_call", "custom_tool_call"):
            field = "arguments" if kind == "function_call" else CUSTOM_INPUT
            for key in ("call_id", "name", field):
                _field(item, key, param)
            namespace = _field(item, "namespace", param, required=False)
            name = flat.get((namespace, item["name"]), flat_name(namespace, item["name"]))
            arguments = (
                item["arguments"]
                if kind == "function_call"
                else json.dumps({CUSTOM_INPUT: item[CUSTOM_INPUT]})
            )
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            last = messages[-1] if messages else None
            # Consecutive calls are one assistant turn in Chat Completions.
            if last and last["role"] == "assistant" and (last.get("tool_calls") or not reasoning):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            if reasoning:
                messages[-1]["reasoning_content"], reasoning = reasoning, None
        elif kind in ("function_call_output", "custom_tool_call_output"):
            _field(item, "call_id", param)
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item["call_id"],
                    "content": _output_text(item.get("output"), f"{param}.output"),
                }
            )
        elif kind == "reasoning":
            # Thinking models (DeepSeek, Qwen) want their reasoning back on
            # the assistant turn it belongs to.
            reasoning = _reasoning_text(item, param) or None
        else:
            raise RequestProblem(f"unsupported input item type {kind!r}", f"{param}.type")
    return messages


def _merge_leading_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Several chat templates (Qwen's among them) take one system message,
    # first; Codex sends two developer messages up front.
    head = []
    while messages and messages[0]["role"] == "system" and isinstance(messages[0]["content"], str):
        head.append(messages.pop(0)["content"])
    return ([{"role": "system", "content": "\n\n".join(head)}] if head else []) + messages


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = (text or {}).get("format") or {}
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    if kind == "json_object":
        return {"type": "json_object"}
    return None


def chat_request(
    body: dict[str, Any], remote_model: str, history: Iterable[dict[str, Any]] = ()
) -> tuple[dict[str, Any], ToolNames, list[dict[str, Any]]]:
    """(chat request, tool names map, this turn's chat messages)."""
    tools, names = convert_tools(body.get("tools"))
    turn = convert_input(body["input"], names)
    messages = list(history) + turn
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    request: dict[str, Any] = {"model": remote_model, "messages": _merge_leading_system(messages)}
    if tools:
        request["tools"] = tools
        if body.get("parallel_tool_calls") is not None:
            request["parallel_tool_calls"] = body["parallel_tool_calls"]
    choice = convert_tool_choice(body.get("tool_choice"), names)
    # Providers refuse tool_choice without tools (all of them hosted and dropped).
    if choice is not None and tools:
        request["tool_choice"] = choice
    response_format = _response_format(body.get("text"))
    if response_format:
        request["response_format"] = response_format
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        request["reasoning_effort"] = effort
    fields = {
        "max_output_tokens": "max_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "user": "user",
    }
    for name, chat_name in fields.items():
        if body.get(name) is not None:
            request[chat_name] = body[name]
    if "user" not in request and body.get("safety_identifier"):
        request["user"] = body["safety_identifier"]
    # Chat Completions fields of the same name and meaning, which reach the
    # remote only if the model forwards them (app/chat/forwarding.py). The
    # request's own `store` is not one: it says whether the relay stores the
    # response, and never reaches the remote.
    for name in _SAME_IN_CHAT:
        if body.get(name) is not None:
            request[name] = body[name]
    return request, names, turn
