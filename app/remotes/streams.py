"""Reading a remote's streamed answer: SSE (OpenAI) or NDJSON (Ollama) into dicts.

The body is read in pieces of at most 64 KiB and split into lines by
app.remotes.sse, in linear time and with lines capped at
RELAY_MAX_SSE_LINE_BYTES (an NDJSON line too): a remote sending one endless
line gets an UpstreamError, not the worker's CPU and memory.
"""

import itertools
import json
import socket
import time

from app.errors import UpstreamError
from app.observability import metrics
from app.remotes import sse
from app.remotes.http.client import content_type, error_text, origin
from app.remotes.http.errors import TRANSPORT_ERRORS, upstream_error

DEFAULT_MAX_LINE = 4 * 1024 * 1024
# How long the end of a finished stream's body may take to arrive.
_FINISH_SECONDS = 0.05
_PIECE = 64 * 1024
_END = object()


class RemoteStream:
    """Parsed items of one streaming response. Iterate it once; always close() it.

    Read failures surface as UpstreamError, so a stream converter only has
    to know one kind of failure.
    """

    def __init__(self, response, parse, timeout, secret=None, max_line=None):
        self._response = response
        self._parse = parse
        self._timeout = timeout
        self._secret = secret
        self._max_line = max_line or DEFAULT_MAX_LINE
        self.host = origin(response.url)
        self._headers_at = time.monotonic()
        self._items = None  # the parse generator, once first() has started it
        self._head = _END  # the first item, from first() until __iter__ yields it

    def first(self):
        """Wait for the remote's first item (or its end, or its failure) and keep it.

        Called before the client's response starts (app.web.streaming.relay): a
        remote that fails before its first item (silent past
        RELAY_READ_TIMEOUT, a broken connection, a malformed or over-long first
        line, an HTML page instead of a stream) can then still get a plain
        error status instead of 200 and an in-band error. Raises
        UpstreamError, with the response closed. Calling it again does nothing.
        """
        if self._items is not None:
            return
        self._items = self._parse(self._response, self.host, self._max_line)
        try:
            try:
                if content_type(self._response) == "text/html":
                    # A proxy's error page or a login portal, with a 200: read
                    # as SSE it holds no event, and the client would get an
                    # empty answer that "ended before it was complete".
                    raise UpstreamError(f"{self.host} answered with text/html, not a stream")
                self._head = next(self._items, _END)
            except _READ_FAILURES as exc:
                raise self._error(exc) from None
        except BaseException:
            self.close()
            raise
        if self._head is not _END:
            waited = self._response.elapsed + time.monotonic() - self._headers_at
            metrics.child(metrics.UPSTREAM_FIRST_BYTE, self.host).observe(waited)

    def __iter__(self):
        self.first()
        head, self._head = self._head, _END
        if head is _END:
            return
        yield head
        try:
            yield from self._items
        except _READ_FAILURES as exc:
            raise self._error(exc) from None

    def _error(self, exc):
        """The UpstreamError that says what `exc`, raised reading the stream, means."""
        if isinstance(exc, TRANSPORT_ERRORS):
            return upstream_error(exc, self.host, self._timeout, answered=True)
        if isinstance(exc, sse.LineTooLong):
            return UpstreamError(
                f"{self.host} sent a stream {exc.what} over "
                f"RELAY_MAX_SSE_LINE_BYTES ({exc.limit} bytes)",
                code="stream_line_too_long",
            )
        if isinstance(exc, sse.StreamFormatError):
            return UpstreamError(f"{self.host} sent {exc}", code="invalid_stream")
        # An error event from the remote may quote the key it was sent: it is
        # removed before the text is cut, so that no part of it shows.
        exc.message = error_text(exc.message, self._secret)
        return exc

    def close(self):
        self._response.close()

    def abort(self):
        """Hang up on the remote from another greenlet (the client watcher),
        maybe while this stream's own greenlet is blocked reading it.

        close() cannot do that: the reader's buffer refuses it ("reentrant
        call"), half-closed. Shutting the socket down instead ends the
        connection for the remote at once and wakes the reader with a broken
        stream (an UpstreamError); its own greenlet then closes the response.
        """
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is None:  # no connection held (read to its end, or closed)
            self.close()
            return
        try:
            # Through the descriptor: TLS sockets are shut down below their TLS layer.
            handle = socket.socket(fileno=sock.fileno())
        except (OSError, ValueError):  # closed meanwhile
            return
        try:
            handle.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            handle.detach()


_READ_FAILURES = (*TRANSPORT_ERRORS, sse.StreamFormatError, UpstreamError)


def body_pieces(response):
    """The body of a streamed response as it arrives, in pieces of at most
    64 KiB (a remote's HTTP chunk may be any size).

    urllib3's reads: a chunk is cut to pieces, and on a body that is not
    chunked read1 returns what has arrived instead of waiting for the end.
    Failures are raised as urllib3 raises them, for RemoteStream to map
    (app.remotes.http.errors).
    """
    raw = response.raw
    if raw.chunked and raw.supports_chunked_reads():
        yield from raw.read_chunked(_PIECE, decode_content=True)
        return
    while True:
        piece = raw.read1(_PIECE, decode_content=True)
        if not piece:
            return
        yield piece


def _decode(text, host):
    try:
        item = json.loads(text)
    except ValueError:
        raise UpstreamError(f"{host} sent a stream item that is not JSON") from None
    except RecursionError:  # nesting past the parser's limit
        raise UpstreamError(f"{host} sent a stream item nested too deeply") from None
    if isinstance(item, dict) and item.get("error") and not item.get("choices"):
        error = item["error"]
        message = error.get("message", json.dumps(error)) if isinstance(error, dict) else error
        raise UpstreamError(f"API error: {message}")
    return item


def _error_event(data, host):
    """The UpstreamError an `event: error` stands for, whatever its data holds."""
    try:
        _decode(data, host)
    except UpstreamError as exc:
        if exc.message.startswith("API error"):
            return exc
    return UpstreamError(f"API error: {data.strip()}")  # cut by RemoteStream._error


def _finish(response, pieces):
    """Read what follows `data: [DONE]`: the chunked body's last, empty chunk
    (normally in the same packet). Only a body read to its end puts the
    connection back in urllib3's pool; one left unread is closed, and every
    stream would cost a new connection (a DNS lookup and a TCP, maybe TLS,
    handshake). A remote that sends more, or nothing for a moment, is hung
    up on instead."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None:  # released already: read to its end
        return
    try:
        sock.settimeout(_FINISH_SECONDS)  # the pool sets its own on the next call
        for _ in itertools.islice(pieces, 2):
            pass
    except TRANSPORT_ERRORS:
        pass


def sse_items(response, host, max_line=DEFAULT_MAX_LINE):
    """The JSON items of an SSE stream, up to `data: [DONE]`."""
    pieces = body_pieces(response)
    lines = sse.lines(pieces, max_line, sse=True)
    for kind, data in sse.events(lines, max_line):
        if data.strip() == "[DONE]":
            _finish(response, pieces)
            return
        if kind == "error":
            raise _error_event(data, host)
        yield _decode(data, host)


def ndjson_items(response, host, max_line=DEFAULT_MAX_LINE):
    """The JSON items of an NDJSON stream, one per line."""
    for line in sse.lines(body_pieces(response), max_line):
        text = sse.decode(line)
        if text.strip():
            yield _decode(text, host)
