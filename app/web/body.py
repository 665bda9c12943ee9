"""Reading a request body: decompressed, size-limited, parsed as a JSON object.

What a body costs a worker is bounded. Its bytes are at most
RELAY_MAX_BODY_BYTES. Parsed into Python objects (and validated and
converted), a JSON body made of many tiny values takes many times its size
(ops/bench/large_bodies.py shows how much): so a body over
RELAY_LARGE_BODY_BYTES is parsed, and its request handled up to the start
of its answer, only while it holds one of the worker's RELAY_LARGE_BODIES
slots; others wait their turn as bytes. When
the last large body of the moment is done, the worker hands the memory it
freed back to the system (glibc keeps it otherwise).
"""

import ctypes
import ctypes.util
import io
import itertools
import json
import sys
import threading
import zlib
from array import array

import zstandard
from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import BadRequest, RelayError
from app.observability import telemetry


def _decompressed(raw):
    """The body, decompressed as Content-Encoding says (Codex may send zstd).

    The size limit applies to what comes out too: a small compressed body
    must not become gigabytes in memory.
    """
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        if encoding in ("", "identity"):
            return raw
        if encoding in ("gzip", "x-gzip", "deflate"):
            wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
            decompressor = zlib.decompressobj(wbits)
            data = decompressor.decompress(raw, limit + 1)
        elif encoding == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw))
            data = reader.read(limit + 1)
        else:
            raise BadRequest(
                f"unsupported Content-Encoding {encoding!r} (gzip, deflate and zstd are accepted)"
            )
    except (zlib.error, zstandard.ZstdError):
        raise BadRequest(f"request body is not valid {encoding} data") from None
    if len(data) > limit:
        raise RelayError(
            "request body too large once decompressed (the limit is set by RELAY_MAX_BODY_BYTES)",
            status=413,
        )
    return data


# How deep a body may nest arrays and objects (the body itself is level 1).
# Far more than any real request needs (tool schemas nest a dozen levels),
# and far under Python's recursion limit (1000), so that nothing downstream
# that recurses (json.dumps, marshmallow, the converters) can hit it.
MAX_DEPTH = 128

_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
# As signed bytes: +1 for an opening bracket, -1 for a closing one.
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")


def _nests_deeper_than(data, limit):
    """Whether valid UTF-8 JSON text nests deeper than `limit` levels.

    This runs on every request, and a body may be 32 MB: every step is a
    C-level bytes or iterator operation, never a Python loop per byte. (A
    walk over the parsed values is a Python step per container: slower than
    json.loads itself on a body of many small arrays. Removing innermost
    pairs pass after pass costs a pass per level.) Most bodies hold fewer
    brackets than the limit and stop at the count; else the strings go
    (brackets in them do not nest), and the running sum of +1/-1 over the
    brackets left is the depth at each point. One pass, linear: on bodies
    of many objects it costs about what json.loads does, on 32 MB of bare
    brackets well under it.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    # Escapes first (left to right, as JSON reads them), so that every quote
    # left opens or closes a string: then every other piece is outside one.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    if len(brackets) <= 2 * limit:
        return False
    levels = itertools.accumulate(array("b", brackets.translate(_STEPS)))
    return any(map(limit.__lt__, levels))


class _Constant(ValueError):
    """NaN, Infinity or -Infinity: Python reads them, JSON has no such thing."""


def _no_constant(name):
    raise _Constant(name)


# json.loads with parse_constant= would build a decoder for every body.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _too_deep():
    return BadRequest(f"request body nests deeper than {MAX_DEPTH} levels (the limit)")


def _parse(raw):
    """Bytes to a JSON value, or a 400 that says what is wrong with them."""
    # json.loads(bytes) would do the same; decoding here tells a bad byte apart.
    encoding = json.detect_encoding(raw)
    try:
        text = raw.decode(encoding, "surrogatepass")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"request body is not valid {exc.encoding.upper()}: byte "
            f"0x{exc.object[exc.start]:02x} at offset {exc.start} ({exc.reason})"
        ) from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        # Nested deeper than the interpreter's stack: far past MAX_DEPTH.
        raise _too_deep() from None
    except _Constant:
        raise BadRequest("request body is not valid JSON (NaN and Infinity are not JSON)") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        # The one other ValueError json.loads raises: Python refuses to read
        # integers longer than sys.get_int_max_str_digits() (a CPU guard).
        if "digits" not in str(exc):
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        raise BadRequest(
            f"request body is not valid JSON: a number has too many digits "
            f"(more than {sys.get_int_max_str_digits()})"
        ) from None
    # Checked after parsing: a syntax error is reported as one, and the strings
    # the depth check skips are known to be well formed.
    utf8 = raw if encoding.startswith("utf-8") else text.encode("utf-8", "surrogatepass")
    if _nests_deeper_than(utf8, MAX_DEPTH):
        raise _too_deep()
    return value


def _received(req, limit):
    """The body as it arrived, whole, at most `limit` bytes (413 beyond).

    Read from the server's input stream in one call: werkzeug's get_data
    reads through a LimitedStream that takes several passes over even a
    small body, on every request (the cost is in ops/bench/README.md), and
    it handed back a chunked body cut at the limit. The checks:
    a Content-Length over the limit is refused before reading, a body
    without one (chunked) is read up to the limit and refused past it, and
    one shorter than its Content-Length is refused (400).
    """
    declared = req.content_length
    if declared is not None and declared > limit:
        raise RequestEntityTooLarge()
    if declared is None and not req.environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marked by the server: no body (PEP 3333)
    data = req.environ["wsgi.input"].read(limit + 1 if declared is None else declared)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    # gunicorn hands on what arrived when a client dies mid-body, short of its
    # Content-Length; a prefix may still parse (a create with its last fields
    # missing, padded JSON): acting on it would do what nobody finished asking.
    if declared is not None and len(data) < declared:
        raise BadRequest(
            f"request body ended after {len(data)} of the {declared} bytes "
            f"its Content-Length announced"
        )
    return data


# How long a large body waits for a slot before the client is told to retry.
SLOT_WAIT_SECONDS = 60


class LargeBodies:
    """The worker's slots for large bodies (threading's semaphore is
    gevent's once wsgi.py has patched the standard library)."""

    def __init__(self, threshold, slots):
        self.threshold = threshold
        self._slots = threading.BoundedSemaphore(slots)
        self._held = 0

    def take(self):
        if not self._slots.acquire(timeout=SLOT_WAIT_SECONDS):
            raise RelayError(
                "too many large request bodies at once on this worker (RELAY_LARGE_BODIES): "
                "retry shortly",
                status=503,
                headers={"Retry-After": "5"},
            )
        self._held += 1

    def give_back(self):
        self._held -= 1
        self._slots.release()
        if self._held == 0:
            _trim()


def _load_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to call
        return None


_MALLOC_TRIM = _load_trim()


def _trim():
    """Give the pages freed since back to the system: a parsed large body
    leaves hundreds of MB that glibc's allocator would otherwise keep."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _release_slot(*_):
    if g.pop("large_body", False):
        current_app.extensions["relay.large_bodies"].give_back()


def init_app(app):
    app.extensions["relay.large_bodies"] = LargeBodies(
        app.config["RELAY_LARGE_BODY_BYTES"], app.config["RELAY_LARGE_BODIES"]
    )

    # The slot is held until the view has returned (for a stream: until its
    # answer has begun), whichever way it ends.
    @app.after_request
    def release_after(response):
        _release_slot()
        return response

    app.teardown_request(_release_slot)


def _take_slot(size):
    bodies = current_app.extensions.get("relay.large_bodies")
    if bodies is not None and size > bodies.threshold and not g.get("large_body"):
        bodies.take()
        g.large_body = True


def json_body():
    """The request body as a JSON object, whatever Content-Type says.

    curl -d sends form encoding; Ollama reads the body as JSON regardless,
    and so do we.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    raw = _decompressed(_received(request._get_current_object(), limit))
    _take_slot(len(raw))
    if not raw.strip():
        raise BadRequest("request body is empty: send a JSON object")
    exchange = telemetry.current()
    if exchange is not None and exchange.capture:
        exchange.raw_body = raw  # scrubbed and cut only if it is kept
    body = _parse(raw)
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if exchange is not None and isinstance(body.get("model"), str):
        # A request refused for its body still names the model it was for.
        exchange.asked_model = body["model"][:255]
    return body
