"""Payloads of the admin's key and usage API (/api/keys, /api/usage)."""
import re

from marshmallow import ValidationError, fields, validate, validates

from app.schemas.base import BaseSchema, ModelName

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CreateKeySchema(BaseSchema):
    name = fields.String(required=True)
    # Model names as clients write them; the registry's normal form is kept.
    models = fields.List(ModelName(), allow_none=True, load_default=None)
    rpm = fields.Integer(allow_none=True, load_default=None, strict=True,
                         validate=validate.Range(min=1))
    tpm = fields.Integer(allow_none=True, load_default=None, strict=True,
                         validate=validate.Range(min=1))
    expires = fields.String(allow_none=True, load_default=None)


class KeyNameSchema(BaseSchema):
    name = fields.String(required=True)


class UsageQuerySchema(BaseSchema):
    since = fields.String(load_default=None)
    key = fields.String(load_default=None)

    @validates("since")
    def is_a_day(self, value, **kwargs):
        if value is not None and not _DAY.match(value):
            raise ValidationError("must be a date YYYY-MM-DD")
