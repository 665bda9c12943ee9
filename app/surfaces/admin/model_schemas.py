"""Payloads of Ollama's model management API (/api/create, show, copy, ...)."""

import re
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, post_load, validate, validates, validates_schema

from app.chat import forwarding
from app.spend import prices
from app.surfaces.schema import OPTIONS_DOC, BaseSchema, ModelName, Text, validate_options

REMOTE_TYPES = ("ollama", "openai")
# Ollama's capability names; clients read `vision` (send images?), `tools`,
# `thinking`, `embedding`.
CAPABILITIES = ("completion", "tools", "thinking", "vision", "embedding", "insert")
# A DNS name or an IP literal (IPv6 without its brackets, as urlsplit gives it).
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$|^[0-9a-fA-F:.]+$")


# Any value is refused (see no_local_weights).
_REFUSED = {"not": {}, "description": "refused: this server runs no local weights"}


_PRICE_DOC = {
    "type": "object",
    "description": "per million tokens, in RELAY_CURRENCY; at most 6 decimal places",
    "properties": {part: {"type": "number", "minimum": 0} for part in prices.PARTS},
    "required": ["input", "output"],
}


class PriceField(fields.Field):
    """{"input", "output"[, "cached_input"]} per million tokens, as a Price."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return prices.parse(value)
        except prices.PriceError as exc:
            raise ValidationError({exc.part: [exc.reason]} if exc.part else exc.reason) from None


class ModelRefSchema(BaseSchema):
    """Any request that names one model: ollama-python sends `model`, curl
    users and older clients `name`."""

    model = ModelName()
    name = ModelName()

    @validates_schema
    def names_a_model(self, data, **kwargs):
        if "model" not in data and "name" not in data:
            raise ValidationError("Missing data for required field.", "model")

    @post_load
    def name_is_model(self, data, **kwargs):
        data.setdefault("model", data.get("name"))
        return data


class CreateSchema(ModelRefSchema):
    from_ = Text(data_key="from", validate=validate.Length(min=1, max=255))
    remote_host = Text(validate=validate.Length(min=1, max=2048))
    remote_type = fields.String(load_default="ollama", validate=validate.OneOf(REMOTE_TYPES))
    remote_api_key = fields.String(
        allow_none=True,
        validate=[
            validate.Length(max=4096),
            # It travels in an HTTP header: a stray newline or non-ASCII character
            # would fail every call later, so it fails here instead.
            validate.Regexp(r"^[\x21-\x7e]*\Z", error="must be printable ASCII without spaces"),
        ],
    )
    system = Text(allow_none=True)
    parameters = fields.Dict(
        keys=fields.String(), allow_none=True, validate=validate_options, metadata=OPTIONS_DOC
    )
    context_length = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=1, max=100_000_000)
    )
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(CAPABILITIES)), allow_none=True
    )
    fallbacks = fields.List(ModelName(), allow_none=True, validate=validate.Length(max=8))
    fallback_on_auth_errors = fields.Boolean(allow_none=True)
    price = PriceField(allow_none=True, metadata=_PRICE_DOC)
    # Request fields that make the provider store data or bill beyond the
    # token price reach the remote only if named here (app/chat/forwarding.py).
    forward = fields.List(
        fields.String(validate=validate.OneOf(forwarding.GOVERNED)), allow_none=True
    )
    max_n = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=1, max=forwarding.MOST_N)
    )
    # False for a remote that refuses reasoning_effort "none": the relay then
    # drops it (app/remotes/openai.py).
    reasoning_none = fields.Boolean(allow_none=True)
    stream = fields.Boolean(load_default=True)
    # Ollama builds local models from these; this server has no local weights.
    files = fields.Raw(metadata=_REFUSED)
    adapters = fields.Raw(metadata=_REFUSED)
    quantize = fields.Raw(metadata=_REFUSED)

    @validates("remote_host")
    def remote_host_is_url(self, value, **kwargs):
        try:
            parts = urlsplit(value)
            parts.port
        except ValueError:
            raise ValidationError("is not a valid URL (check the host and port)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("must be an http(s) URL such as https://api.openai.com/v1")
        if not _HOST.match(parts.hostname) or parts.port == 0 or any(c.isspace() for c in value):
            raise ValidationError("is not a valid URL (check the host and port)")
        if parts.username or parts.password:
            raise ValidationError("must not contain credentials: send the key as remote_api_key")
        if parts.fragment:
            raise ValidationError("must not contain a #fragment")

    @validates("files", "adapters", "quantize")
    def no_local_weights(self, value, data_key, **kwargs):
        raise ValidationError(
            "this server runs no local weights: create a remote model with remote_host instead"
        )


class CopySchema(BaseSchema):
    source = ModelName(required=True)
    destination = ModelName(required=True)
