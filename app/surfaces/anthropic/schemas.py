"""Payloads of Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens).

Only the fields the relay reads are checked; everything else (context_management,
output_config, container, mcp_servers, ...) is kept and ignored: Claude Code
retries a 400 six times, each with one beta fewer. (service_tier is read, and
reaches the remote only if the model forwards it: app/chat/forwarding.py.)
"""

from marshmallow import ValidationError, fields, validate

from app.surfaces.schema import BaseSchema, ModelName


def _system(value):
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(block, dict) for block in value):
        raise ValidationError("must be a string or a list of text blocks (objects)")


def _messages(value):
    if not all(isinstance(message, dict) for message in value):
        raise ValidationError("each message must be an object with role and content")


def _stop_sequences(value):
    if not all(isinstance(item, str) for item in value):
        raise ValidationError("must be a list of strings")


class CountTokensSchema(BaseSchema):
    model = ModelName(required=True)
    messages = fields.List(
        fields.Raw(
            metadata={
                "type": "object",
                "properties": {
                    "role": {"enum": ["user", "assistant", "system"]},
                    "content": {
                        "anyOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "object"}},
                        ]
                    },
                },
                "required": ["role", "content"],
            }
        ),
        required=True,
        validate=_messages,
    )
    system = fields.Raw(
        allow_none=True,
        validate=_system,
        metadata={
            "anyOf": [{"type": ["string", "null"]}, {"type": "array", "items": {"type": "object"}}]
        },
    )
    tools = fields.List(fields.Dict(), allow_none=True)
    tool_choice = fields.Dict(allow_none=True)
    thinking = fields.Dict(allow_none=True)


class CreateMessageSchema(CountTokensSchema):
    # Anthropic requires max_tokens; the relay does not refuse a request without it.
    max_tokens = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    stream = fields.Boolean(load_default=False)
    temperature = fields.Float(allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1))
    top_k = fields.Integer(allow_none=True, validate=validate.Range(min=0))
    stop_sequences = fields.List(
        fields.Raw(metadata={"type": "string"}), allow_none=True, validate=_stop_sequences
    )
    metadata = fields.Dict(allow_none=True)
