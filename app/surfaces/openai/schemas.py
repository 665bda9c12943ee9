"""Payloads of the OpenAI-compatible API (/v1/chat/completions, /v1/embeddings).

Only what the relay itself reads or what is wrong whatever the provider is
checked here; every other field passes through to the remote untouched.
"""

from marshmallow import ValidationError, fields, validate

from app.surfaces.schema import BaseSchema, ModelName

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _message(value):
    if not isinstance(value, dict):
        raise ValidationError("each message must be an object")
    if value.get("role") not in ROLES:
        raise ValidationError(f"role must be one of: {', '.join(ROLES)}")


def _stop(value):
    if (
        value is not None
        and not isinstance(value, str)
        and not (isinstance(value, list) and all(isinstance(v, str) for v in value))
    ):
        raise ValidationError("must be a string or a list of strings")


class ChatCompletionSchema(BaseSchema):
    model = ModelName(required=True)
    messages = fields.List(
        fields.Raw(
            validate=_message,
            metadata={
                "type": "object",
                "properties": {"role": {"enum": list(ROLES)}},
                "required": ["role"],
            },
        ),
        required=True,
        validate=validate.Length(min=1),
    )
    stream = fields.Boolean(allow_none=True)
    stream_options = fields.Dict(allow_none=True)
    temperature = fields.Float(allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1))
    max_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    max_completion_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    n = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    seed = fields.Integer(allow_none=True)
    stop = fields.Raw(
        allow_none=True,
        validate=_stop,
        metadata={
            "anyOf": [{"type": ["string", "null"]}, {"type": "array", "items": {"type": "string"}}]
        },
    )
    tools = fields.List(fields.Dict(), allow_none=True)
    response_format = fields.Dict(allow_none=True)


def _prompt(value):
    # A string, strings, or token ids (a list of ints, or of lists of them).
    if isinstance(value, str):
        return
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return
        if all(
            isinstance(v, list)
            and v
            and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
            for v in value
        ):
            return
    raise ValidationError("must be a string, a list of strings, or token ids")


class CompletionSchema(BaseSchema):
    """Legacy completions (/v1/completions): the prompt (and for
    fill-in-the-middle its `suffix`), passed on to the remote as they are."""

    model = ModelName(required=True)
    prompt = fields.Raw(
        required=True,
        validate=_prompt,
        metadata={
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "array", "items": {"type": "integer"}, "minItems": 1},
            ]
        },
    )
    suffix = fields.String(allow_none=True)
    stream = fields.Boolean(allow_none=True)
    stream_options = fields.Dict(allow_none=True)
    echo = fields.Boolean(allow_none=True)
    temperature = fields.Float(allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1))
    max_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=0))
    n = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=128))
    best_of = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=20))
    logprobs = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=5))
    seed = fields.Integer(allow_none=True)
    stop = fields.Raw(
        allow_none=True,
        validate=_stop,
        metadata={
            "anyOf": [{"type": ["string", "null"]}, {"type": "array", "items": {"type": "string"}}]
        },
    )


def _input(value):
    if isinstance(value, str) or (isinstance(value, list) and value):
        return
    raise ValidationError("must be a string or a non-empty list")


class EmbeddingsSchema(BaseSchema):
    model = ModelName(required=True)
    input = fields.Raw(
        required=True,
        validate=_input,
        metadata={"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1}]},
    )
    dimensions = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=1))
    encoding_format = fields.String(allow_none=True, validate=validate.OneOf(("float", "base64")))
