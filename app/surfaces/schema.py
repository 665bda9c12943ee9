"""What every payload schema shares: lenient about extra keys, strict about
the ones it knows, and errors that name the field."""

from marshmallow import INCLUDE, Schema, ValidationError, fields

from app.catalog.names import normalize_model_name
from app.errors import BadRequest
from app.fast import schema_subsets


class Text(fields.String):
    """A string the relay stores: PostgreSQL text cannot hold NUL (U+0000), so
    it is refused here, naming the field, instead of failing the write."""

    default_error_messages = {"nul": "must not contain NUL characters (U+0000)"}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class ModelName(fields.String):
    """A model name as the client wrote it (the registry normalises it, so
    that errors can quote what the client sent)."""

    default_error_messages = {
        "invalid_name": "is not a valid model name (letters, digits, '_', '.', '-', "
        "optional namespace/ and :tag)"
    }

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        if normalize_model_name(name) is None:
            raise self.make_error("invalid_name")
        return name


_NUMERIC_OPTIONS = (
    "num_predict",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "num_ctx",
    "repeat_penalty",
    "min_p",
    "typical_p",
)


# What validate_options checks, for the OpenAPI document.
OPTIONS_DOC = {
    "type": "object",
    "properties": {
        **{name: {"type": "number"} for name in _NUMERIC_OPTIONS},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    },
}


def validate_options(options):
    """Ollama options (and a model's stored parameters) that a remote can take."""
    for name in _NUMERIC_OPTIONS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValidationError(f"{name} must be a number")
    stop = options.get("stop")
    if (
        stop is not None
        and not isinstance(stop, str)
        and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
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
            for message in value if isinstance(value, list) else [value]:
                yield path, message


def load(schema, data):
    """Validate `data` with `schema`; raise BadRequest naming the first bad field."""
    try:
        # A copy limited to the body's fields, when that fast path is on.
        return schema_subsets.for_body(schema, data).load(data)
    except ValidationError as exc:
        problems = list(_describe(exc.messages))
        param = problems[0][0] if problems else None
        text = "; ".join(f"{path}: {message}" for path, message in problems)
        raise BadRequest(f"invalid request: {text}", param=param) from None
