"""Ollama options and model defaults, as Chat Completions request fields.

A model's stored `parameters` use Ollama's option names (what `ollama show`
prints), and fill only what a request left unset, whichever API it came in on.
"""

from typing import Any

# Ollama option -> Chat Completions field. Options with no equivalent
# (num_ctx, repeat_penalty, mirostat, ...) have no meaning for a remote and
# are dropped.
OPTION_FIELDS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop": "stop",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}

# Fields that answer the same question: a request that set one has set both.
_SAME_FIELD = {"max_tokens": ("max_tokens", "max_completion_tokens")}


def options_to_fields(options: dict[str, Any] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for option, value in (options or {}).items():
        name = OPTION_FIELDS.get(option)
        if name is None or value is None:
            continue
        if option == "num_predict" and value < 0:
            continue  # Ollama's "no limit"
        if option == "stop" and isinstance(value, str):
            value = [value]
        fields[name] = value
    return fields


def fill_defaults(body: dict[str, Any], parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Copy `body` with the model's default parameters where it set nothing."""
    merged = dict(body)
    for name, value in options_to_fields(parameters).items():
        if not any(merged.get(same) is not None for same in _SAME_FIELD.get(name, (name,))):
            merged[name] = value
    return merged


def with_system(messages: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """Prepend the model's system prompt unless the conversation has its own."""
    if not system or any(m.get("role") in ("system", "developer") for m in messages):
        return list(messages)
    return [{"role": "system", "content": system}, *messages]
