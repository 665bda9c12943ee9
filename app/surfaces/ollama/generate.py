"""Ollama's /api/generate <-> OpenAI Chat Completions, as a one-turn chat.

Ollama's own remote models serve /api/generate only from Ollama servers; the
relay serves it from any Chat Completions remote too (LiteLLM's `ollama/`
provider, aider and CrewAI through it use nothing else): `system` becomes the
system message and `prompt` (with `images`) the user message, then the chat
is converted as /api/chat converts it (format, options, think), and the
answer comes back in /api/generate's shape.
"""

from typing import Any

from app.chat.assembly import ToolCalls
from app.chat.deltas import Chunk
from app.chat.protocol import SYSTEM_CLOCK, Clock
from app.surfaces.ollama.chat import ChatStream, chat_request, chat_response

# What a chat cannot do: `raw` skips the prompt template (a Chat Completions
# remote always applies its own), `context` continues a previous answer's
# token ids (a remote has none to give), `suffix` asks for the text between
# prompt and suffix (fill-in-the-middle, not a chat).
_WHY = {
    "raw": "the remote applies its own chat template, which raw would skip",
    "context": "a remote gives no token ids to continue from: send the conversation "
    "to /api/chat instead",
    "suffix": "fill-in-the-middle is not a chat",
}


def refused_field(body: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) of the first field that a one-turn chat cannot honour."""
    if body.get("raw") is True:
        return "raw", _WHY["raw"]
    for name in ("context", "suffix"):
        if body.get(name):
            return name, _WHY[name]
    return None


def is_load(body: dict[str, Any]) -> bool:
    """Ollama answers a generate without a prompt by loading the model, at once."""
    return not body.get("prompt") and not body.get("images")


def _unloads(keep_alive: Any) -> bool:
    # Ollama's keep_alive is a duration: seconds as a number, or "0", "0s", "0m"...
    if isinstance(keep_alive, bool) or keep_alive is None:
        return False
    text = str(keep_alive).strip().rstrip("smh")
    try:
        return float(text) == 0
    except ValueError:
        return False


def load_response(body: dict[str, Any], clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """Ollama's answer to a generate without a prompt: the model "loaded", or
    "unloaded" with keep_alive 0 (a remote model is neither: nothing to do)."""
    return {
        "model": body["model"],
        "created_at": ChatStream(body["model"], clock=clock).stamp(),
        "response": "",
        "done": True,
        "done_reason": "unload" if _unloads(body.get("keep_alive")) else "load",
    }


def generate_request(body: dict[str, Any], remote_model: str) -> dict[str, Any]:
    """An Ollama /api/generate body as a Chat Completions request for `remote_model`."""
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": body["system"]})
    messages.append({"role": "user", "content": body["prompt"], "images": body.get("images")})
    return chat_request(dict(body, messages=messages, tools=None), remote_model)


def _generated(line: dict[str, Any]) -> dict[str, Any]:
    """An /api/chat answer or line as /api/generate's: the message's text in
    `response`, its thinking in `thinking`, the rest as it was."""
    message = line.pop("message", None) or {}
    out = {"model": line.pop("model"), "created_at": line.pop("created_at")}
    out["response"] = message.get("content") or ""
    if message.get("thinking"):
        out["thinking"] = message["thinking"]
    out.update(line)
    return out


class GenerateStream(ChatStream):
    """Chat Completions chunks -> Ollama /api/generate NDJSON objects."""

    def _line(self, message: dict[str, Any]) -> dict[str, Any]:
        return _generated(super()._line(message))

    def _flush_calls(self) -> list[dict[str, Any]]:
        # A generate has no tools, so no call is asked for; one a remote
        # makes all the same has no place in the answer.
        self.calls = ToolCalls()
        return []


def generate_response(
    answer: Chunk, model: str, started_ns: int | None = None, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """A whole Chat Completions answer as Ollama's non-streaming /api/generate answer."""
    return _generated(chat_response(answer, model, started_ns, clock))
