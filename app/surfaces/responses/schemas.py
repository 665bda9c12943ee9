"""Payloads of the Responses API (/v1/responses)."""

from marshmallow import ValidationError, fields, validate

from app.surfaces.schema import BaseSchema, ModelName

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def _input(value):
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValidationError("must be a string or a list of input items (objects)")


def _metadata(value):
    if len(value) > 16 or not all(
        isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items()
    ):
        raise ValidationError("at most 16 string pairs (keys up to 64, values up to 512 chars)")


class ReasoningSchema(BaseSchema):
    effort = fields.String(allow_none=True, validate=validate.OneOf(EFFORTS))
    summary = fields.String(allow_none=True)


class TextFormatSchema(BaseSchema):
    type = fields.String(
        required=True, validate=validate.OneOf(("text", "json_object", "json_schema"))
    )
    name = fields.String()
    schema = fields.Dict()


class TextSchema(BaseSchema):
    format = fields.Nested(TextFormatSchema, allow_none=True)


class CreateResponseSchema(BaseSchema):
    model = ModelName(required=True)
    input = fields.Raw(
        required=True,
        validate=_input,
        metadata={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
    )
    instructions = fields.String(allow_none=True)
    previous_response_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    stream = fields.Boolean(load_default=False)
    store = fields.Boolean(load_default=True)
    background = fields.Boolean(
        allow_none=True,
        validate=validate.Equal(
            False, error="background mode is not supported: the relay answers in the request"
        ),
    )
    tools = fields.List(fields.Dict(), allow_none=True)
    tool_choice = fields.Raw(allow_none=True)
    parallel_tool_calls = fields.Boolean(allow_none=True)
    text = fields.Nested(TextSchema, allow_none=True)
    reasoning = fields.Nested(ReasoningSchema, allow_none=True)
    max_output_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    temperature = fields.Float(allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1))
    metadata = fields.Dict(keys=fields.String(), allow_none=True, validate=_metadata)
    user = fields.String(allow_none=True)
    safety_identifier = fields.String(allow_none=True)
    truncation = fields.String(allow_none=True, validate=validate.OneOf(("auto", "disabled")))


class InputItemsQuerySchema(BaseSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    order = fields.String(load_default="desc", validate=validate.OneOf(("asc", "desc")))
    after = fields.String()
