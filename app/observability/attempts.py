"""One call to a remote (each retry and each fallback its own): the GenAI
metrics it counts, and, with tracing on, its CLIENT span.

Made by the request's Exchange when app/remotes/http sends a call, told
what the answer said by the remote clients, and ended when the call failed,
or when the request ends (a stream's, after its last chunk). Nothing here
knows Flask.
"""

import time
from urllib.parse import urlsplit

from app.chat.chunks import read_usage
from app.chat.deltas import Finish
from app.observability import content, metrics, semconv, tracing


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Attempt:
    __slots__ = (
        "operation",
        "provider",
        "model",
        "url",
        "body",
        "stream",
        "retry",
        "started",
        "first_at",
        "span",
        "recording",
        "headers",
        "open",
        "answered",
        "response_id",
        "response_model",
        "finish_reasons",
        "output",
        "secrets",
    )

    def __init__(self, operation, provider, url, body, stream, retry):
        self.operation, self.provider, self.url = operation, provider, url
        self.body = body if isinstance(body, dict) else {}
        model = self.body.get("model")
        self.model = model if isinstance(model, str) else ""
        self.stream, self.retry = bool(stream), retry
        self.started = time.monotonic()
        self.first_at = None
        self.span = None
        self.recording = False  # a span that records attributes (sampled in)
        self.headers = None  # what goes to the remote with this call (traceparent)
        self.open = True
        self.answered = False  # a whole answer was read and understood
        self.response_id = self.response_model = None
        self.finish_reasons = []
        self.output = None  # content.StreamOutput, when content is recorded
        self.secrets = ()

    # -- what the request said ----------------------------------------------

    def request_attributes(self):
        body = self.body
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        attributes = {
            semconv.GEN_AI_OPERATION_NAME: self.operation,
            semconv.GEN_AI_PROVIDER_NAME: self.provider,
            semconv.GEN_AI_REQUEST_STREAM: self.stream,
        }
        if self.model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = self.model
        max_tokens = next(
            (
                value
                for value in (
                    body.get("max_completion_tokens"),
                    body.get("max_tokens"),
                    options.get("num_predict"),
                )
                if _number(value)
            ),
            None,
        )
        if max_tokens is not None:
            attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        for name, attribute in (
            ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
        ):
            value = body.get(name, options.get(name))
            if _number(value):
                attributes[attribute] = value
        parts = urlsplit(self.url)
        if parts.hostname:
            attributes[semconv.SERVER_ADDRESS] = parts.hostname
            attributes[semconv.SERVER_PORT] = parts.port or (443 if parts.scheme == "https" else 80)
        return attributes

    def record_content(self, secrets):
        """Record the messages sent and received (RELAY_TRACE_CONTENT), with
        `secrets` (and anything shaped like a bearer token) scrubbed."""
        self.secrets = secrets
        self.output = content.StreamOutput()
        messages = content.input_messages(self.operation, self.body)
        if messages:
            self.span.set_attribute(semconv.GEN_AI_INPUT_MESSAGES, content.dumps(messages, secrets))

    # -- what the answer said (noted by app/remotes' clients) ----------------

    def first_chunk(self):
        if self.first_at is None:
            self.first_at = time.monotonic()

    def _response(self, response_id, model):
        if self.response_id is None and isinstance(response_id, str) and response_id:
            self.response_id = response_id
        if self.response_model is None and isinstance(model, str) and model:
            self.response_model = model

    def note_answer(self, answer):
        """A whole OpenAI-compatible answer (chat or embeddings), read."""
        self.answered = True
        if not self.recording:
            return
        self._response(answer.get("id"), answer.get("model"))
        choices = answer.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
                self.finish_reasons.append(choice["finish_reason"])
        if self.output is not None:
            self.output.feed_answer(answer)

    def note_chunk(self, chunk):
        """A chunk of a streamed Chat Completions answer (only while recording)."""
        body = chunk.body
        self._response(body.get("id"), body.get("model"))
        for delta in chunk.deltas:
            if isinstance(delta, Finish):
                self.finish_reasons.append(delta.reason)
        if self.output is not None:
            self.output.feed_chunk(chunk)

    def note_ollama(self, line, whole=False):
        """A line of a remote Ollama's answer (or the whole of it)."""
        self.answered = self.answered or whole
        if not self.recording:
            return
        self._response(None, line.get("model"))
        if isinstance(line.get("done_reason"), str):
            self.finish_reasons.append(line["done_reason"])
        if self.output is not None:
            self.output.feed_ollama(line)

    # -- the end -----------------------------------------------------------

    def fail(self, error_type):
        self.end(error_type or semconv.OTHER_ERROR)

    def end(self, error_type=None, usage=None, cost=None, currency=None):
        """Count the call, and end its span; once."""
        if not self.open:
            return
        self.open = False
        labels = (self.operation, self.provider, self.model)
        metrics.child(metrics.GENAI_DURATION, *labels, error_type or "").observe(
            time.monotonic() - self.started
        )
        if self.stream and self.first_at is not None:
            metrics.child(metrics.GENAI_FIRST_CHUNK, *labels).observe(self.first_at - self.started)
        if usage:
            if "prompt_tokens" in usage:
                metrics.child(metrics.GENAI_TOKENS, semconv.TOKEN_INPUT, *labels).observe(
                    usage["prompt_tokens"]
                )
            if "completion_tokens" in usage:
                metrics.child(metrics.GENAI_TOKENS, semconv.TOKEN_OUTPUT, *labels).observe(
                    usage["completion_tokens"]
                )
        if self.span is not None:
            attributes = self._response_attributes(usage, cost, currency) if self.recording else {}
            tracing.end_client_span(self.span, attributes, error_type)

    def _response_attributes(self, usage, cost, currency):
        attributes = {}
        if self.response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id:
            attributes[semconv.GEN_AI_RESPONSE_ID] = self.response_id
        if self.finish_reasons:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = self.finish_reasons
        if self.stream and self.first_at is not None:
            attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_at - self.started
        counts = read_usage(usage) if usage else None
        if counts is not None:
            if "prompt_tokens" in usage:
                attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = counts.prompt_tokens
            if "completion_tokens" in usage:
                attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = counts.completion_tokens
            if counts.cached_tokens:
                attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = counts.cached_tokens
            if counts.cache_write_tokens:
                attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = (
                    counts.cache_write_tokens
                )
            if counts.reasoning_tokens:
                attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = counts.reasoning_tokens
        if cost is not None:
            attributes[semconv.RELAY_COST] = cost
            attributes[semconv.RELAY_CURRENCY] = currency
        if self.output is not None:
            messages = self.output.messages(self.finish_reasons)
            if messages:
                attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = content.dumps(messages, self.secrets)
        return attributes
