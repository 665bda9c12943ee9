"""A remote Ollama server: its native /api endpoints, and its /v1 for OpenAI clients."""

from functools import partial

from app.chat.chunks import ollama_usage
from app.chat.estimate import line_characters
from app.errors import UpstreamError
from app.observability import semconv
from app.remotes.http.client import endpoint_url
from app.remotes.openai import OpenAIRemote
from app.remotes.streams import RemoteStream, ndjson_items

_OPERATIONS = {
    "chat": semconv.CHAT,
    "generate": semconv.TEXT_COMPLETION,
    "embed": semconv.EMBEDDINGS,
    "embeddings": semconv.EMBEDDINGS,
}


class OllamaRemote:
    def __init__(self, http, base_url, api_key=None, exchange=None, reasoning_none=True):
        self._http = http
        self._reasoning_none = reasoning_none
        self._base = base_url
        self._key = api_key
        self._exchange = exchange

    def openai(self):
        """Ollama's own OpenAI-compatible endpoints, for /v1 requests."""
        return OpenAIRemote(
            self._http,
            endpoint_url(self._base, "v1"),
            self._key,
            self._exchange,
            reasoning_none=self._reasoning_none,
            ollama=True,
            provider=semconv.PROVIDER_OLLAMA,
        )

    def _headers(self):
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def probe(self):
        """(url, headers) of the cheapest authenticated GET: the version."""
        return endpoint_url(self._base, "api/version"), self._headers()

    def _post(self, endpoint, body, stream):
        url = endpoint_url(self._base, f"api/{endpoint}")
        if self._exchange is not None:
            self._exchange.sent = body  # estimated only if the remote's counts never come
        response = self._http.request(
            "POST",
            url,
            json=body,
            headers=self._headers(),
            stream=stream,
            secret=self._key,
            check=False,
            exchange=self._exchange,
            operation=(_OPERATIONS.get(endpoint, semconv.CHAT), semconv.PROVIDER_OLLAMA),
        )
        if response.status_code in (404, 405) and not _ollama_error(response):
            response.close()
            raise UpstreamError(
                "this server cannot run this remote model: the remote host does not "
                "speak Ollama's API. If it is an OpenAI-compatible endpoint, create the "
                'model with "remote_type": "openai"'
            )
        self._http.check(response, self._key)
        return response

    def call(self, endpoint, body):
        """A non-streaming call to /api/{endpoint}."""
        answer = self._http.json(self._post(endpoint, dict(body, stream=False), stream=False))
        if not isinstance(answer, dict):
            raise UpstreamError("the remote Ollama answered with JSON that is not an object")
        # An embedding answer has prompt_eval_count and no eval_count.
        if self._exchange is not None and self._exchange.attempt is not None:
            self._exchange.attempt.note_ollama(answer, whole=True)
        if self._exchange is not None:
            self._exchange.characters += line_characters(answer)
            if "eval_count" in answer or "prompt_eval_count" in answer:
                self._exchange.record_usage(ollama_usage(answer))
        return answer

    def stream(self, endpoint, body):
        """A streaming call to /api/{endpoint}; the status is checked before returning."""
        response = self._post(endpoint, dict(body, stream=True), stream=True)
        return RemoteStream(
            response,
            partial(_ollama_lines, exchange=self._exchange),
            self._http.timeout,
            self._key,
            self._http.max_line,
        )


def _ollama_lines(response, host, max_line, exchange=None):
    """The stream's lines; the characters of their text are counted on
    `exchange` (the estimate, if the stream ends before its counts)."""
    attempt = exchange.attempt if exchange is not None else None
    noted = attempt is not None and attempt.recording
    for item in ndjson_items(response, host, max_line):
        if not isinstance(item, dict):
            raise UpstreamError(f"{host} sent a stream line that is not an object")
        if attempt is not None and attempt.first_at is None:
            attempt.first_chunk()
        if exchange is not None:
            exchange.characters += line_characters(item)
        if noted:
            attempt.note_ollama(item)
        yield item


def _ollama_error(response):
    # Ollama answers an unknown model with 404 and {"error": "..."}; a server
    # that is not Ollama answers /api/chat with its own 404 page.
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)
