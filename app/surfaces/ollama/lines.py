"""A remote Ollama's NDJSON answers relayed as it wrote them, relabelled with
the local model name: /api/* to an Ollama remote."""

from app.catalog.urls import shown_url
from app.chat.common import INCOMPLETE


class OllamaLines:
    """A remote Ollama's NDJSON lines, relabelled and marked with their remote."""

    def __init__(self, model, name):
        self.labels = {
            "model": name,
            "remote_model": model.remote_model,
            "remote_host": shown_url(model.remote_host),
        }
        self.done = False
        self.usage = None

    def feed(self, line):
        if line.get("done"):
            self.done = True
            self.usage = {
                "prompt_tokens": line.get("prompt_eval_count", 0),
                "completion_tokens": line.get("eval_count", 0),
            }
        return [dict(line, **self.labels)]

    def finish(self):
        return [] if self.done else self.fail(INCOMPLETE)

    def fail(self, message):
        return [{"error": message}]
