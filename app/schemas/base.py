"""What every payload schema shares: lenient about extra keys, strict about
the ones it knows, and errors that name the field."""
import io
import json
import re
import zlib

import zstandard
from flask import current_app, request
from marshmallow import INCLUDE, Schema, ValidationError, fields

from app.errors import BadRequest, RelayError

# Ollama's names: [host/][namespace/]model[:tag], each part a plain word.
_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,79}"
_NAME = re.compile(rf"^{_PART}(?:/{_PART}){{0,2}}(?::[A-Za-z0-9_][A-Za-z0-9._-]{{0,79}})?$")


def normalize_model_name(name):
    """`name` -> `name:latest`; None when it is not a valid model name."""
    if not isinstance(name, str) or not _NAME.match(name):
        return None
    return name if ":" in name else f"{name}:latest"


class ModelName(fields.String):
    """A model name as the client wrote it (the registry normalises it, so
    that errors can quote what the client sent)."""

    default_error_messages = {
        "invalid_name": "is not a valid model name (letters, digits, '_', '.', '-', "
                        "optional namespace/ and :tag)",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        if normalize_model_name(name) is None:
            raise self.make_error("invalid_name")
        return name


_NUMERIC_OPTIONS = ("num_predict", "temperature", "top_p", "top_k", "seed", "presence_penalty",
                    "frequency_penalty", "num_ctx", "repeat_penalty", "min_p", "typical_p")


def validate_options(options):
    """Ollama options (and a model's stored parameters) that a remote can take."""
    for name in _NUMERIC_OPTIONS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValidationError(f"{name} must be a number")
    stop = options.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise ValidationError("stop must be a string or a list of strings")


class BaseSchema(Schema):
    class Meta:
        # Clients send fields we do not use (Ollama adds new ones often);
        # they are kept, not refused.
        unknown = INCLUDE


def _describe(messages, prefix=""):
    """Flatten marshmallow's nested messages to (field path, message)."""
    for key, value in messages.items():
        # OpenAI's spelling of a path: input[0].content, not input.0.content.
        if isinstance(key, int):
            path = f"{prefix}[{key}]"
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from _describe(value, path)
        else:
            for message in (value if isinstance(value, list) else [value]):
                yield path, message


def load(schema, data):
    """Validate `data` with `schema`; raise BadRequest naming the first bad field."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        problems = list(_describe(exc.messages))
        param = problems[0][0] if problems else None
        text = "; ".join(f"{path}: {message}" for path, message in problems)
        raise BadRequest(f"invalid request: {text}", param=param) from None


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
