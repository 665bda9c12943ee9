"""Payloads of the admin's key and usage API (/api/keys, /api/usage)."""

import re

from marshmallow import ValidationError, fields, validate, validates

from app.access import usage
from app.surfaces.schema import BaseSchema, ModelName, Text

# [0-9], not \d: \d takes any script's digits.
_DAY_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DAY = re.compile(_DAY_PATTERN)
# The database's integer columns are 32-bit (PostgreSQL's integer).
_LIMIT = validate.Range(min=1, max=2**31 - 1)


class CreateKeySchema(BaseSchema):
    name = Text(required=True)
    # Model names as clients write them; the registry's normal form is kept.
    models = fields.List(ModelName(), allow_none=True, load_default=None)
    rpm = fields.Integer(allow_none=True, load_default=None, strict=True, validate=_LIMIT)
    tpm = fields.Integer(allow_none=True, load_default=None, strict=True, validate=_LIMIT)
    expires = Text(allow_none=True, load_default=None)


class KeyNameSchema(BaseSchema):
    name = Text(required=True)


class UsageQuerySchema(BaseSchema):
    since = fields.String(load_default=None, metadata={"pattern": _DAY_PATTERN})
    key = Text(load_default=None)
    by = fields.String(load_default=None, validate=validate.OneOf(usage.GROUPS))

    @validates("since")
    def is_a_day(self, value, **kwargs):
        if value is not None and not _DAY.fullmatch(value):
            raise ValidationError("must be a date YYYY-MM-DD")
