"""An OpenAI-compatible remote: Chat Completions and embeddings at remote_host."""

import functools
from functools import partial
from urllib.parse import parse_qsl, urlsplit

from app.chat.chunks import ChunkReader, completion_as_chunk, read_usage
from app.chat.estimate import chunk_characters, completion_characters
from app.errors import UpstreamError
from app.observability import semconv
from app.remotes.http.client import endpoint_url, origin
from app.remotes.streams import RemoteStream, sse_items

_AZURE_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")
# OpenAI's own API rejects parameters it does not know; these are sampling
# options other providers (vLLM, DashScope, Ollama) accept.
_NON_OPENAI_OPTIONS = ("top_k",)
# gen_ai.operation.name of each endpoint called; anything else is chat.
_OPERATION_OF = {"embeddings": semconv.EMBEDDINGS, "completions": semconv.TEXT_COMPLETION}
# reasoning_effort as each kind of remote takes it. OpenAI's scale is none,
# minimal, low, medium, high, xhigh; Ollama's think adds "max" above them all
# (and its /v1 takes "ultra", some clients' tier, as max).
# OpenAI (and Azure) take all of theirs; Ollama's /v1 takes every value and
# clamps it itself; the others (vLLM, llama.cpp, DashScope, ...) know none,
# low, medium and high. A value past a remote's ends goes to its nearest end.
_OPENAI_EFFORTS = {"max": "xhigh", "ultra": "xhigh"}
_OTHER_EFFORTS = {"minimal": "low", "xhigh": "high", "max": "high", "ultra": "high"}


def _chat_chunks(response, host, max_line, exchange=None):
    """The stream's chunks, each checked and read (app.chat.chunks) before
    any converter sees it. The characters of their text are counted on
    `exchange`: the estimate, if the stream ends before its usage."""
    reader = ChunkReader()
    attempt = exchange.attempt if exchange is not None else None
    noted = attempt is not None and attempt.recording
    for item in sse_items(response, host, max_line):
        chunk = reader.read(item)
        if chunk is None:
            raise UpstreamError(f"{host} sent a stream item that is not a chat chunk")
        if attempt is not None and attempt.first_at is None:
            attempt.first_chunk()
        if exchange is not None and chunk.deltas:
            exchange.characters += chunk_characters(chunk)
        if noted:
            attempt.note_chunk(chunk)
        yield chunk


def _completion_chunks(response, host, max_line, exchange=None):
    """A legacy completions stream's chunks, read as chat chunks are (their
    finish and usage); the characters of their text counted on `exchange`."""
    reader = ChunkReader()
    for item in sse_items(response, host, max_line):
        chunk = reader.read(item)
        if chunk is None:
            raise UpstreamError(f"{host} sent a stream item that is not a completion chunk")
        if exchange is not None:
            exchange.characters += completion_characters(chunk.body)
        yield chunk


def is_azure(host):
    return (host or "").lower().endswith(_AZURE_SUFFIXES)


@functools.lru_cache(maxsize=1024)
def provider_of(base_url):
    """gen_ai.provider.name of an OpenAI-compatible remote: the well-known
    name of a provider its host shows, else `openai` (the API it speaks)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if is_azure(host):
        return semconv.PROVIDER_AZURE_OPENAI
    return semconv.PROVIDERS_BY_HOST.get(host, semconv.PROVIDER_OPENAI)


@functools.lru_cache(maxsize=1024)
def _dialect(base_url, azure_api_version):
    """(Azure?, strict about OpenAI's parameters?, query to add) for a remote:
    worked out once per URL, not on every call (a client is made per call)."""
    parts = urlsplit(base_url)
    azure = is_azure(parts.hostname)
    extra_query = ()
    if azure and "api-version" not in dict(parse_qsl(parts.query)):
        extra_query = (("api-version", azure_api_version),)
    return azure, azure or parts.hostname == "api.openai.com", extra_query


class OpenAIRemote:
    def __init__(
        self,
        http,
        base_url,
        api_key=None,
        exchange=None,
        azure_api_version=None,
        reasoning_none=True,
        ollama=False,
        provider=None,
    ):
        self._http = http
        # False: the model's remote refuses reasoning_effort "none" (its
        # reasoning_none setting), which is then dropped.
        self.reasoning_none = reasoning_none
        self.ollama = ollama
        self._key = api_key
        self._exchange = exchange
        self._base = base_url
        self.provider = provider or provider_of(base_url)
        self.azure, self.strict_openai, self._extra_query = _dialect(base_url, azure_api_version)

    def url(self, endpoint):
        return endpoint_url(self._base, endpoint, self._extra_query)

    def _headers(self):
        if not self._key:
            return {}
        if self.azure:
            return {"api-key": self._key}
        return {"Authorization": f"Bearer {self._key}"}

    def probe(self):
        """(url, headers) of the cheapest authenticated GET: the model list."""
        return self.url("models"), self._headers()

    def _effort(self, effort):
        """reasoning_effort as this remote takes it; None: leave it out."""
        if effort == "none":
            return "none" if self.reasoning_none else None
        if self.ollama:
            return effort
        return (_OPENAI_EFFORTS if self.strict_openai else _OTHER_EFFORTS).get(effort, effort)

    def prepare(self, body):
        """Adjust a chat request to what this provider is known to take."""
        if body.get("reasoning_effort") is not None:
            effort = self._effort(body["reasoning_effort"])
            if effort is None:
                del body["reasoning_effort"]
            else:
                body["reasoning_effort"] = effort
        if self.strict_openai:
            for name in _NON_OPENAI_OPTIONS:
                body.pop(name, None)
            # OpenAI's reasoning models refuse max_tokens and reasoning_content.
            if "max_tokens" in body and "max_completion_tokens" not in body:
                body["max_completion_tokens"] = body.pop("max_tokens")
            if "messages" in body:
                body["messages"] = [
                    {k: v for k, v in m.items() if k != "reasoning_content"}
                    for m in body["messages"]
                ]
        return body

    def _post(self, endpoint, body, stream=False, check=True):
        if endpoint != "completions":
            body = self.prepare(body)
        if self._exchange is not None:
            self._exchange.sent = body  # estimated only if the remote's usage never comes
        return self._http.request(
            "POST",
            self.url(endpoint),
            json=body,
            headers=self._headers(),
            stream=stream,
            secret=self._key,
            check=check,
            exchange=self._exchange,
            operation=(_OPERATION_OF.get(endpoint, semconv.CHAT), self.provider),
        )

    def _post_completions(self, body, stream):
        """POST /completions (legacy), passed on as the client wrote it: a
        remote without it (404, 405) is named as such."""
        if self.strict_openai:
            body = {k: v for k, v in body.items() if k not in _NON_OPENAI_OPTIONS}
        response = self._post("completions", body, stream=stream, check=False)
        try:
            self._http.check(response, self._key)
        except UpstreamError as error:
            if error.status not in (404, 405):
                raise
            raise UpstreamError(
                f"the remote {origin(self.url('completions'))} answered {error.status} to "
                f"POST /completions: it serves no legacy completions, or not this model; "
                f"use /v1/chat/completions ({error.message})",
                status=404,
                code="completions_unsupported",
            ) from None
        return response

    def completions(self, body):
        """A whole legacy completion, checked and read as one chunk."""
        body = {k: v for k, v in body.items() if k != "stream_options"}
        answer = self._answer(self._post_completions(dict(body, stream=False), stream=False))
        chunk = completion_as_chunk(answer)
        if self._exchange is not None:
            self._exchange.characters += completion_characters(chunk.body)
        return chunk

    def completions_stream(self, body):
        """A streamed legacy completion, usage always asked for (as chat's)."""
        body = dict(body, stream=True)
        body["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
        response = self._post_completions(body, stream=True)
        return RemoteStream(
            response,
            partial(_completion_chunks, exchange=self._exchange),
            self._http.timeout,
            self._key,
            self._http.max_line,
        )

    def _answer(self, response):
        answer = self._http.json(response)
        if not isinstance(answer, dict):
            raise UpstreamError(f"{origin(response.url)} answered with JSON that is not an object")
        if self._exchange is not None and self._exchange.attempt is not None:
            self._exchange.attempt.note_answer(answer)
        if self._exchange is not None:
            # Counts only: telemetry adds them up.
            counts = read_usage(answer.get("usage"))
            self._exchange.record_usage(counts.chat if counts else None)
        return answer

    def chat(self, body):
        """The whole answer, checked and read (app.chat.chunks): a Chunk whose
        body is the answer as a passthrough relays it."""
        body = {k: v for k, v in body.items() if k != "stream_options"}
        answer = self._answer(self._post("chat/completions", dict(body, stream=False)))
        chunk = completion_as_chunk(answer)
        if self._exchange is not None:
            self._exchange.characters += chunk_characters(chunk)
        return chunk

    def chat_stream(self, body):
        """Send a streaming chat request; the status is checked before returning."""
        body = dict(body, stream=True)
        # Usage is always asked for: the relay counts tokens even when the
        # client does not want them (it is removed for such clients).
        body["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
        response = self._post("chat/completions", body, stream=True)
        return RemoteStream(
            response,
            partial(_chat_chunks, exchange=self._exchange),
            self._http.timeout,
            self._key,
            self._http.max_line,
        )

    def embeddings(self, body):
        return self._answer(self._post("embeddings", body))
