"""What every payload schema shares: lenient about extra keys, strict about
the ones it knows, and errors that name the field."""
import re

from flask import request
from marshmallow import INCLUDE, Schema, ValidationError, fields

from app.errors import BadRequest

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


class BaseSchema(Schema):
    class Meta:
        # Clients send fields we do not use (Ollama adds new ones often);
        # they are kept, not refused.
        unknown = INCLUDE


def _describe(messages, prefix=""):
    """Flatten marshmallow's nested messages to (field path, message)."""
    for key, value in messages.items():
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


def json_body():
    """The request body as a JSON object, whatever Content-Type says.

    curl -d sends form encoding; Ollama reads the body as JSON regardless,
    and so do we.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("request body is empty: send a JSON object")
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise BadRequest("request body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body
