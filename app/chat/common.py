"""What the converters share: ids, and a cleaned-up view
of what Chat Completions remotes send."""

import secrets

INCOMPLETE = "the remote's stream ended before the answer was complete"


def new_id(prefix):
    return f"{prefix}_{secrets.token_hex(24)}"


def reasoning_of(source):
    # DashScope and DeepSeek say reasoning_content; vLLM, OpenRouter and
    # Ollama say reasoning.
    text = source.get("reasoning_content") or source.get("reasoning") or ""
    return text if isinstance(text, str) else ""


def text_of(content):
    """Message content as text: some providers (Mistral) send a list of parts."""
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return content if isinstance(content, str) else None


def call_index(delta, known):
    """Which tool call a streamed tool-call delta continues. Most providers
    number them; some send the index only in a call's first delta, or never:
    then an id or name starts a new call and anything else continues the last."""
    if isinstance(delta.get("index"), int):
        return delta["index"]
    if delta.get("id") or (delta.get("function") or {}).get("name") or not known:
        return len(known)
    return max(known)


def clean_chat(body):
    """A chat completion or chunk with the types the converters rely on, or
    None when it is not one at all. Remotes are not all careful."""
    if not isinstance(body, dict):
        return None
    body = dict(body)
    if not isinstance(body.get("usage"), dict):
        body.pop("usage", None)
    choices = body.get("choices")
    body["choices"] = (
        [dict(c) for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []
    )
    for choice in body["choices"]:
        for part in ("message", "delta"):
            if part in choice:
                inner = dict(choice[part]) if isinstance(choice[part], dict) else {}
                if "content" in inner:
                    inner["content"] = text_of(inner["content"])
                if not isinstance(inner.get("tool_calls"), (list, type(None))):
                    inner.pop("tool_calls")
                choice[part] = inner
    return body
