"""Log probabilities between Ollama's /api/chat (0.12.11) and Chat Completions.

Ollama asks with `logprobs: true` and `top_logprobs: n` (0 to 20; alternatives
only when n > 0) and answers with `logprobs` beside `message`: a list of
{token, logprob, bytes?, top_logprobs?}. Chat Completions answers the same
items under `choices[].logprobs.content`; only those fields, checked, go back
(a remote's other keys, or items that are not token objects, are dropped).
"""

from typing import Any


def request_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The Chat Completions fields that ask for what `body` asks (Ollama
    ignores top_logprobs without logprobs, and so does the relay)."""
    if not body.get("logprobs"):
        return {}
    fields: dict[str, Any] = {"logprobs": True}
    if body.get("top_logprobs"):
        fields["top_logprobs"] = body["top_logprobs"]
    return fields


def _token(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not isinstance(item.get("token"), str):
        return None
    logprob = item.get("logprob")
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float)):
        return None
    out: dict[str, Any] = {"token": item["token"], "logprob": logprob}
    raw = item.get("bytes")
    if isinstance(raw, list) and raw and all(type(b) is int for b in raw):
        out["bytes"] = raw
    return out


def _entry(item: Any) -> dict[str, Any] | None:
    entry = _token(item)
    if entry is None:
        return None
    alternatives = item.get("top_logprobs")
    alternatives = alternatives if isinstance(alternatives, list) else []
    top = [t for t in map(_token, alternatives) if t is not None]
    if top:
        entry["top_logprobs"] = top
    return entry


def of_choice(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The token log probabilities of a chunk's or answer's first choice, as
    Ollama lists them (empty when it has none)."""
    choices = body.get("choices") or ()
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return []
    return [entry for entry in map(_entry, content) if entry is not None]
