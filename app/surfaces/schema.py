"""What every payload schema shares: lenient about extra keys, strict about
the ones it knows, and errors that name the field."""

import functools

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, missing
from marshmallow.decorators import PRE_LOAD

from app.catalog.names import normalize_model_name
from app.errors import BadRequest


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
        return _for_body(schema, data).load(data)
    except ValidationError as exc:
        problems = list(_describe(exc.messages))
        param = problems[0][0] if problems else None
        text = "; ".join(f"{path}: {message}" for path, message in problems)
        raise BadRequest(f"invalid request: {text}", param=param) from None


# marshmallow visits every declared field on every load, given or not: 13
# fields of ChatCompletionSchema for a chat request that has 3, about 4% of
# the request's CPU (ops/bench/ab.py). A copy limited (only=) to the fields a body has, and
# those that act when missing (required ones, load_default), loads the same
# result with the same errors in the same order: absent fields add nothing
# to either. Not for a schema with a pre_load hook (it may rename or add
# fields), nor for an instance made with settings of its own.
_LIMITED = {}


@functools.lru_cache(maxsize=None)
def _always(cls):
    """Names of `cls`'s fields that act when missing, in declared order;
    None when `cls` may not be limited."""
    if cls._hooks.get(PRE_LOAD):
        return None
    return tuple(
        name
        for name, field in cls._declared_fields.items()
        if field.required or field.load_default is not missing
    )


def _for_body(schema, data):
    cls = type(schema)
    always = _always(cls)
    if always is None or type(data) is not dict or not _plain(schema):
        return schema
    given = tuple(
        name
        for name, field in schema.load_fields.items()
        if (field.data_key or name) in data or name in always
    )
    limited = _LIMITED.get((cls, given))
    if limited is None:
        if len(_LIMITED) >= 1024:  # bodies choose the keys: bound the copies
            _LIMITED.clear()
        limited = _LIMITED[cls, given] = cls(only=given)
    return limited


def _plain(schema):
    """Made as cls() is: no only, exclude, partial or other settings of its own."""
    return (
        schema.only is None
        and not schema.exclude
        and not schema.partial
        and not schema.many
        and not schema.load_only
        and not schema.dump_only
        and schema.unknown == getattr(schema.Meta, "unknown", RAISE)
    )
