"""The query of GET /api/requests: the request log's filters, parsed as the
CLI parses them (app/observability/request_queries.py)."""

from marshmallow import ValidationError, fields, validate

from app.observability import request_queries as queries
from app.surfaces.schema import BaseSchema, Text


class _Parsed(fields.String):
    """A string parsed by one of request_queries' parsers; its rule on error."""

    def __init__(self, parser, **kwargs):
        super().__init__(load_default=None, **kwargs)
        self._parser = parser

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self._parser(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class RequestQuerySchema(BaseSchema):
    since = _Parsed(queries.moment, metadata={"description": "ISO 8601, or an age: 30m, 2h, 7d"})
    until = _Parsed(queries.moment, metadata={"description": "ISO 8601, or an age: 30m, 2h, 7d"})
    key = Text(load_default=None)
    team = Text(load_default=None)
    model = Text(load_default=None)
    status = _Parsed(
        queries.status_range,
        metadata={
            "description": "A status (429) or a class (5xx)",
            "pattern": "^[1-5]([0-9]{2}|xx)$",
        },
    )
    slower_than = _Parsed(
        queries.milliseconds, metadata={"description": "A latency: 2s, 1.5s, 500ms, 2m"}
    )
    cursor = _Parsed(queries.decode_cursor, metadata={"description": "next_cursor of a page"})
    limit = fields.Integer(
        load_default=queries.DEFAULT_LIMIT, validate=validate.Range(min=1, max=queries.MAX_LIMIT)
    )
