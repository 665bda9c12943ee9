"""Reading a request body: decompressed, size-limited, parsed as a JSON object."""
import io
import json
import zlib

import zstandard
from flask import current_app, request

from app.errors import BadRequest, RelayError


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
            raise BadRequest(f"unsupported Content-Encoding {encoding!r} "
                             f"(gzip, deflate and zstd are accepted)")
    except (zlib.error, zstandard.ZstdError):
        raise BadRequest(f"request body is not valid {encoding} data") from None
    if len(data) > limit:
        raise RelayError("request body too large once decompressed (the limit is set by "
                         "RELAY_MAX_BODY_BYTES)", status=413)
    return data


def _no_constant(name):
    raise ValueError(name)


def json_body():
    """The request body as a JSON object, whatever Content-Type says.

    curl -d sends form encoding; Ollama reads the body as JSON regardless,
    and so do we.
    """
    raw = _decompressed(request.get_data(cache=True))
    if not raw.strip():
        raise BadRequest("request body is empty: send a JSON object")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        raise BadRequest("request body is not valid JSON (NaN and Infinity are not JSON)") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body
