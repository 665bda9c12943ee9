"""A remote Ollama's NDJSON answers relayed as it wrote them, relabelled with
the local model name: /api/* to an Ollama remote."""

from typing import Any, Protocol

from app.catalog.urls import shown_url
from app.chat.chunks import ollama_usage
from app.chat.common import INCOMPLETE


class _Model(Protocol):
    remote_model: str
    remote_host: str


class OllamaLines:
    """A remote Ollama's NDJSON lines (objects: app.remotes.ollama checks),
    relabelled and marked with their remote."""

    def __init__(self, model: _Model, name: str) -> None:
        self.labels = {
            "model": name,
            "remote_model": model.remote_model,
            "remote_host": shown_url(model.remote_host),
        }
        self.done = False
        self.usage: dict[str, Any] | None = None

    def feed(self, line: dict[str, Any]) -> list[dict[str, Any]]:
        if line.get("done"):
            self.done = True
            self.usage = ollama_usage(line)
        return [dict(line, **self.labels)]

    def finish(self) -> list[dict[str, Any]]:
        return [] if self.done else self.fail(INCOMPLETE)

    def fail(self, message: str) -> list[dict[str, Any]]:
        return [{"error": message}]
