"""Payloads of the admin's key and usage API (/api/keys, /api/usage)."""

import re

from marshmallow import ValidationError, fields, validate, validates

from app.access import usage
from app.access.keys import NAME_PATTERN, NAME_RULE
from app.observability import capture
from app.spend import budgets, money
from app.surfaces.schema import BaseSchema, ModelName, Text

# [0-9], not \d: \d takes any script's digits.
_DAY_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DAY = re.compile(_DAY_PATTERN)
# The database's integer columns are 32-bit (PostgreSQL's integer).
_LIMIT = validate.Range(min=1, max=2**31 - 1)


class Money(fields.Field):
    """An amount in RELAY_CURRENCY (a number or a numeric string), as pico-units."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("must be an amount such as 25 or 12.50")
        try:
            return money.to_pico(value)
        except money.MoneyError as exc:
            raise ValidationError(str(exc)) from None


class _Budgeted(BaseSchema):
    """A budget in RELAY_CURRENCY per period; null budget: none."""

    budget = Money(allow_none=True, metadata={"type": "number", "minimum": 0})
    period = fields.String(allow_none=True, validate=validate.OneOf(budgets.PERIODS))


class CreateKeySchema(_Budgeted):
    # The whole name must match (NAME_PATTERN ends in \Z); the document shows the pattern.
    name = Text(
        required=True, validate=validate.Regexp(NAME_PATTERN, error=NAME_RULE.removeprefix("name "))
    )
    # Model names as clients write them; the registry's normal form is kept.
    models = fields.List(ModelName(), allow_none=True, load_default=None)
    rpm = fields.Integer(allow_none=True, load_default=None, strict=True, validate=_LIMIT)
    tpm = fields.Integer(allow_none=True, load_default=None, strict=True, validate=_LIMIT)
    expires = Text(allow_none=True, load_default=None)
    team = Text(allow_none=True, load_default=None)


class UpdateKeySchema(_Budgeted):
    """Only the fields given change; null clears one (no model list: every model)."""

    name = Text(required=True)
    models = fields.List(ModelName(), allow_none=True)
    rpm = fields.Integer(allow_none=True, strict=True, validate=_LIMIT)
    tpm = fields.Integer(allow_none=True, strict=True, validate=_LIMIT)
    expires = Text(allow_none=True)
    team = Text(allow_none=True)
    # Payload capture for this key: off, errors or all; null: RELAY_CAPTURE decides.
    capture = fields.String(allow_none=True, validate=validate.OneOf(capture.MODES))


class CreateTeamSchema(_Budgeted):
    name = Text(required=True)
    models = fields.List(ModelName(), allow_none=True, load_default=None)
    rpm = fields.Integer(allow_none=True, load_default=None, strict=True, validate=_LIMIT)
    tpm = fields.Integer(allow_none=True, load_default=None, strict=True, validate=_LIMIT)


class UpdateTeamSchema(_Budgeted):
    """Only the fields given change; null clears one."""

    name = Text(required=True)
    models = fields.List(ModelName(), allow_none=True)
    rpm = fields.Integer(allow_none=True, strict=True, validate=_LIMIT)
    tpm = fields.Integer(allow_none=True, strict=True, validate=_LIMIT)


class KeyNameSchema(BaseSchema):
    name = Text(required=True)


class UsageQuerySchema(BaseSchema):
    since = fields.String(load_default=None, metadata={"pattern": _DAY_PATTERN})
    key = Text(load_default=None)
    team = Text(load_default=None)
    by = fields.String(load_default=None, validate=validate.OneOf(usage.GROUPS))

    @validates("since")
    def is_a_day(self, value, **kwargs):
        if value is not None and not _DAY.fullmatch(value):
            raise ValidationError("must be a date YYYY-MM-DD")
