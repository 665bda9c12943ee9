"""Payloads of Ollama's inference API (/api/chat, /api/generate, /api/embed)."""

import base64
import binascii

from marshmallow import ValidationError, fields, validate

from app.surfaces.schema import OPTIONS_DOC, BaseSchema, ModelName, validate_options

ROLES = ("system", "user", "assistant", "tool")


THINK_LEVELS = ("low", "medium", "high", "max")


def _think(value):
    if not isinstance(value, bool) and value not in THINK_LEVELS:
        raise ValidationError('must be true, false, "low", "medium", "high" or "max"')


def _format(value):
    if value != "json" and not isinstance(value, dict) and value not in ("", None):
        raise ValidationError('must be "json" or a JSON schema object')


def _base64(value):
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("must be base64-encoded image data") from None


class FunctionCallSchema(BaseSchema):
    index = fields.Integer(allow_none=True)
    name = fields.String(required=True)
    arguments = fields.Raw(load_default=dict)


class ToolCallSchema(BaseSchema):
    # The remote's id, as the answer gave it (Ollama 0.12.10): sent back to it.
    id = fields.String(allow_none=True)
    function = fields.Nested(FunctionCallSchema, required=True)


class MessageSchema(BaseSchema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    content = fields.String(allow_none=True, load_default="")
    images = fields.List(
        fields.String(validate=_base64, metadata={"format": "byte"}), allow_none=True
    )
    thinking = fields.String(allow_none=True)
    tool_calls = fields.List(fields.Nested(ToolCallSchema), allow_none=True)
    tool_name = fields.String(allow_none=True)
    # Which call a tool result answers (Ollama 0.12.10): its call's id.
    tool_call_id = fields.String(allow_none=True)


class _InferenceSchema(BaseSchema):
    model = ModelName(required=True)
    stream = fields.Boolean(load_default=True)
    options = fields.Dict(
        keys=fields.String(), load_default=dict, validate=validate_options, metadata=OPTIONS_DOC
    )
    format = fields.Raw(
        validate=_format,
        allow_none=True,
        metadata={"anyOf": [{"enum": ["json", "", None]}, {"type": "object"}]},
    )
    think = fields.Raw(
        validate=_think,
        allow_none=True,
        metadata={"anyOf": [{"type": ["boolean", "null"]}, {"enum": list(THINK_LEVELS)}]},
    )
    keep_alive = fields.Raw()


class ChatSchema(_InferenceSchema):
    messages = fields.List(fields.Nested(MessageSchema), required=True)
    tools = fields.List(fields.Dict(), allow_none=True)
    # Ollama 0.12.11: log probabilities of the answer's tokens, and of the
    # top_logprobs likeliest tokens at each position (with logprobs only).
    logprobs = fields.Boolean(allow_none=True)
    top_logprobs = fields.Integer(
        allow_none=True, validate=validate.Range(min=0, max=20, error="must be between 0 and 20")
    )


class GenerateSchema(_InferenceSchema):
    prompt = fields.String(load_default="")
    system = fields.String(allow_none=True)
    images = fields.List(
        fields.String(validate=_base64, metadata={"format": "byte"}), allow_none=True
    )
    raw = fields.Boolean(allow_none=True)
    suffix = fields.String(allow_none=True)
    context = fields.List(fields.Integer(), allow_none=True)


def _embed_input(value):
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValidationError("must be a string or a non-empty list of strings")


class EmbedSchema(BaseSchema):
    model = ModelName(required=True)
    input = fields.Raw(
        required=True,
        validate=_embed_input,
        metadata={
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ]
        },
    )
    dimensions = fields.Integer(strict=True, validate=validate.Range(min=1))
    # Ollama 0.11.11: cut inputs to the context (default) or refuse them.
    truncate = fields.Boolean(allow_none=True)


class EmbeddingsSchema(BaseSchema):
    model = ModelName(required=True)
    prompt = fields.String(required=True)
