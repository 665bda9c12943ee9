"""Reading a remote's streamed answer: SSE (OpenAI) or NDJSON (Ollama) into dicts."""
import json
import time

import requests
from sseclient import SSEClient

from app import metrics
from app.errors import UpstreamError
from app.remotes.http import connection_error, origin, scrub


class RemoteStream:
    """Parsed items of one streaming response. Iterate it once; always close() it.

    Read failures surface as UpstreamError, so a stream converter only has
    to know one kind of failure.
    """

    def __init__(self, response, parse, timeout, secret=None):
        self._response = response
        self._parse = parse
        self._timeout = timeout
        self._secret = secret
        self.host = origin(response.url)
        self._headers_at = time.monotonic()

    def __iter__(self):
        items = self._parse(self._response, self.host)
        try:
            first = next(items, None)
            if first is None:
                return
            waited = self._response.elapsed.total_seconds() + time.monotonic() - self._headers_at
            metrics.UPSTREAM_FIRST_BYTE.labels(self.host).observe(waited)
            yield first
            yield from items
        except requests.RequestException as exc:
            raise connection_error(exc, self.host, self._timeout) from None
        except UpstreamError as exc:
            # An error event from the remote may quote the key it was sent.
            exc.message = scrub(exc.message, self._secret)
            raise

    def close(self):
        self._response.close()


def _decode(text, host):
    try:
        item = json.loads(text)
    except ValueError:
        raise UpstreamError(f"{host} sent a stream item that is not JSON") from None
    if isinstance(item, dict) and item.get("error") and not item.get("choices"):
        error = item["error"]
        message = error.get("message", json.dumps(error)) if isinstance(error, dict) else error
        raise UpstreamError(f"API error: {message}")
    return item


def sse_items(response, host):
    for event in SSEClient(response.iter_content(chunk_size=None)).events():
        if event.data.strip() == "[DONE]":
            return
        yield _decode(event.data, host)


def ndjson_items(response, host):
    for line in response.iter_lines(chunk_size=None):
        if line.strip():
            yield _decode(line, host)
