"""Framing for streamed answers: NDJSON (Ollama) and server-sent events (OpenAI)."""
import json

from flask import Response


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def ndjson_line(obj):
    return (_dumps(obj) + "\n").encode()


def sse_event(obj, event=None):
    head = f"event: {event}\n" if event else ""
    return (f"{head}data: {_dumps(obj)}\n\n").encode()


SSE_DONE = b"data: [DONE]\n\n"

# nginx would otherwise buffer a stream until it ends.
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def ndjson_response(lines):
    """A streamed response of already framed NDJSON lines."""
    return Response(lines, mimetype="application/x-ndjson", headers=_STREAM_HEADERS)


def sse_response(events):
    """A streamed response of already framed SSE events."""
    return Response(events, mimetype="text/event-stream", headers=_STREAM_HEADERS)
