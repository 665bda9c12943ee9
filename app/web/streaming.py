"""Streamed answers: framing (NDJSON for Ollama, SSE for OpenAI) and the relay
loop that runs an upstream stream through a converter to the client."""

import json
import logging
import socket
import time

from flask import Response, current_app, request

from app.errors import UpstreamError
from app.observability import metrics, telemetry

log = logging.getLogger(__name__)


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _utf8(text):
    # A lone surrogate (a remote's JSON may escape one: "\\ud800") has no
    # UTF-8; backslashreplace writes it as that same JSON escape. Only
    # strings inside the JSON can hold one, and the handler runs only then.
    return text.encode("utf-8", "backslashreplace")


def ndjson_line(obj):
    return _utf8(_dumps(obj) + "\n")


def sse_data(obj):
    """One SSE event; a string is sent as it is (`[DONE]`)."""
    text = obj if isinstance(obj, str) else _dumps(obj)
    return _utf8(f"data: {text}\n\n")


def sse_event(obj):
    """A named SSE event, as the Responses API sends them (`event: <type>`)."""
    return _utf8(f"event: {obj['type']}\ndata: {_dumps(obj)}\n\n")


def _watchable(environ):
    """Whether this request runs in gunicorn's gevent worker (greenlets may wait beside it)."""
    sock = environ.get("gunicorn.socket")
    return sock is not None and "gevent" in type(sock).__module__


class _ClientWatch:
    """Aborts `upstream` when the client closes its connection, even while the
    upstream is silent (a model thinking for a minute sends nothing, and a
    client that gave up would otherwise keep a paid generation running).

    Only under gunicorn's gevent worker, which hands us the socket; the
    watcher peeks, so it never consumes a byte of a next request. One per
    stream, from before its first item to its end: stop() it before the
    worker reads the next request on this socket.
    """

    def __init__(self, upstream, environ):
        self.gone = False
        self._upstream = upstream
        self._greenlet = None
        if _watchable(environ):
            import gevent

            self._greenlet = gevent.spawn(self._watch, environ["gunicorn.socket"])

    def _watch(self, sock):
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        if not data:
            self.gone = True
            self._upstream.abort()

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None


_END = object()
_BEAT = object()


def _with_beats(items, seconds):
    """`items`, with _BEAT between two of them whenever `seconds` pass without one.

    The items are read in a greenlet of their own, one ahead at most (the
    queue holds one), so that the silence can be noticed while a read blocks.
    Only for surfaces that want it (Anthropic's ping): every item pays a
    greenlet switch.
    """
    import gevent
    from gevent.queue import Empty, Queue

    queue = Queue(maxsize=1)

    def read():
        try:
            for item in items:
                queue.put((item, None))
            queue.put((_END, None))
        except gevent.GreenletExit:
            raise
        except BaseException as exc:  # raised again in the relay's greenlet
            queue.put((_END, exc))

    reader = gevent.spawn(read)
    try:
        while True:
            try:
                item, exc = queue.get(timeout=seconds)
            except Empty:
                yield _BEAT
                continue
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        reader.kill()


def relay(upstream, converter, frame, head=(), ping=None):
    """Yield the framed output of `converter` for each item of `upstream`, as
    each arrives.

    A failure after the first byte can no longer change the status, so it
    becomes the converter's in-band error. The upstream response is closed in
    every case: at the end, when the client goes away while we wait on the
    upstream (the watcher), or while we write (gunicorn then closes this
    generator, which raises GeneratorExit at the pending yield).
    `head` is what goes out before the upstream's first item. `ping`, a
    callable giving events, is sent whenever the upstream is silent for
    RELAY_PING_SECONDS after its first item (under gevent), so that clients
    and proxies waiting for a model that thinks in silence keep the stream.

    The upstream's first item is awaited here, in the view, before the
    response starts (RemoteStream.first): a failure until then (silence past
    RELAY_READ_TIMEOUT, a broken connection, a bad first line) is raised as
    an UpstreamError and answered with an error status in the surface's
    shape, not 200 and an in-band error.
    """
    exchange = telemetry.streaming(request.environ)
    watch = _ClientWatch(upstream, request.environ)
    try:
        _await_first(upstream, watch)
    except BaseException:
        watch.stop()
        raise
    beats = None
    if ping is not None and _watchable(request.environ):
        beats = (ping, current_app.config["RELAY_PING_SECONDS"])
    return _relay(upstream, converter, frame, head, request.environ, watch, beats, exchange)


def _await_first(upstream, watch):
    """upstream.first(), with the client watched meanwhile: a model may think
    for minutes before its first chunk."""
    try:
        upstream.first()
    except UpstreamError as exc:
        if watch.gone:
            log.info("client went away; closed the stream from %s", upstream.host)
        else:
            log.warning(
                "stream from %s failed before its first item: %s", upstream.host, exc.message
            )
        raise


def _relay(upstream, converter, frame, head, environ, watch, beats=None, exchange=None):
    failed = False
    ended = False
    metrics.OPEN_STREAMS.inc()
    try:
        for out in head:
            yield _noted(exchange, frame(out))
        try:
            items = upstream if beats is None else _with_beats(upstream, beats[1])
            for item in items:
                outs = beats[0]() if item is _BEAT else converter.feed(item)
                if outs:
                    # One write for what one item gives (a Responses chunk
                    # may give several events): fewer syscalls per stream.
                    yield _noted(exchange, b"".join(map(frame, outs)))
            outs = converter.finish()
        except UpstreamError as exc:
            if watch.gone:
                log.info("client went away; closed the stream from %s", upstream.host)
                return
            log.warning("stream from %s failed: %s", upstream.host, exc.message)
            failed = exc
            _failed(exchange, exc.code or "stream_failed")
            outs = converter.fail(exc.message)
        except Exception:
            log.exception("stream from %s failed in the relay", upstream.host)
            failed = True
            _failed(exchange, "relay_error")
            outs = converter.fail("internal error while relaying the stream")
        for out in outs:
            yield _noted(exchange, frame(out))
        ended = True
    finally:
        if not ended and exchange is not None and not failed:
            # The client left (gunicorn closed this generator, or the watcher
            # saw the socket close) before the answer's end.
            exchange.error_code = exchange.error_code or "client_gone"
        # Dead before the worker reads the next request on this socket.
        watch.stop()
        upstream.close()
        metrics.OPEN_STREAMS.dec()
        error = failed if isinstance(failed, UpstreamError) else None
        telemetry.stream_ended(environ, converter.usage, bool(failed), error)


def _noted(exchange, data):
    """`data`, on its way out: the stream's first byte is timed, and its
    bytes kept while payload capture is on (up to the capture's cut)."""
    if exchange is not None:
        if exchange.first_byte is None:
            exchange.first_byte = time.monotonic()
        if exchange.answer is not None and len(exchange.answer) <= exchange.answer_limit:
            exchange.answer += data
    return data


def _failed(exchange, code):
    if exchange is not None:
        exchange.error_code = code


# nginx would otherwise buffer a stream until it ends.
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def ndjson_response(lines):
    return Response(lines, mimetype="application/x-ndjson", headers=_STREAM_HEADERS)


def sse_response(events):
    return Response(events, mimetype="text/event-stream", headers=_STREAM_HEADERS)
