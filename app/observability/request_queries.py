"""Reading the request log: filters, keyset pages, one row with its capture.

Pages are newest first, ordered by (time, id); the cursor is the last row's
(time, id), opaque to clients, and the next page is the rows before it: one
index range read per page whatever the table's size, never an OFFSET or a
COUNT. Filter values are parsed here, for the CLI and the API alike; a bad
one is a ValueError saying what is expected.
"""

import base64
import datetime
import re

from peewee import Tuple

from app.catalog.names import normalize_model_name
from app.spend import money
from app.storage.db import database
from app.storage.models import RequestCapture, RequestLog, utcnow

_MAX_MS = 2**31 - 1
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
FILTERS = ("since", "until", "key", "team", "model", "status", "slower_than")

_AGO = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$")
_STATUS = re.compile(r"^([1-5])xx$|^([1-5][0-9]{2})$")
TIME_RULE = (
    "must be an ISO 8601 date or date-time (UTC unless it says), or an age such as 30m, 2h, 7d"
)
STATUS_RULE = "must be a status such as 429, or a class such as 5xx"
DURATION_RULE = "must be a duration such as 2s, 1.5s, 500ms or 2m"


def moment(text, now=None):
    """A time filter: `2026-12-07`, `2026-12-07T10:42:00Z` (UTC unless it
    says), or an age (`30m`, `2h`, `7d`) before now; a naive UTC datetime."""
    text = text.strip()
    ago = _AGO.match(text)
    if ago:
        seconds = int(ago.group(1)) * _UNITS[ago.group(2)]
        try:
            return (now or utcnow()) - datetime.timedelta(seconds=seconds)
        except OverflowError:
            return datetime.datetime.min
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(TIME_RULE) from None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def status_range(text):
    """`429` -> (429, 429); `5xx` -> (500, 599)."""
    found = _STATUS.match(text.strip().lower())
    if found is None:
        raise ValueError(STATUS_RULE)
    if found.group(1):
        low = int(found.group(1)) * 100
        return low, low + 99
    code = int(found.group(2))
    return code, code


def milliseconds(text):
    """`2s`, `1.5s`, `500ms`, `2m` or a bare number of seconds, in ms."""
    found = _DURATION.match(text.strip().lower())
    if found is None:
        raise ValueError(DURATION_RULE)
    value, unit = float(found.group(1)), found.group(2) or "s"
    # The column is a 32-bit integer: a longer wait matches nothing anyway.
    return round(min(value * {"ms": 1, "s": 1000, "m": 60000}[unit], _MAX_MS))


def encode_cursor(row):
    text = f"{row.time.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor):
    """(time, id) of an encode_cursor() string; ValueError if it is not one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, row_id = text.partition("|")
        moment_, number = datetime.datetime.fromisoformat(stamp), int(row_id)
        if not 0 <= number < 2**63:
            raise ValueError(row_id)
        return moment_, number
    except (ValueError, UnicodeDecodeError):
        raise ValueError("must be a next_cursor from an earlier page") from None


def parse(raw):
    """Filters as given (strings, None when absent) -> the values page() takes."""
    parsed = {}
    for name, parser in (
        ("since", moment),
        ("until", moment),
        ("status", status_range),
        ("slower_than", milliseconds),
        ("cursor", decode_cursor),
    ):
        value = raw.get(name)
        if value not in (None, ""):
            try:
                parsed[name] = parser(value)
            except ValueError as exc:
                raise FilterError(name, str(exc)) from None
    for name in ("key", "team"):
        if raw.get(name) not in (None, ""):
            parsed[name] = raw[name]
    if raw.get("model") not in (None, ""):
        parsed["model"] = normalize_model_name(raw["model"]) or raw["model"]
    return parsed


class FilterError(ValueError):
    def __init__(self, field, rule):
        super().__init__(f"{field} {rule}")
        self.field, self.rule = field, rule


def page(filters, limit=DEFAULT_LIMIT, currency="USD"):
    """(rows newest first, the cursor of the next page or None)."""
    query = RequestLog.select()
    if "since" in filters:
        query = query.where(RequestLog.time >= filters["since"])
    if "until" in filters:
        query = query.where(RequestLog.time < filters["until"])
    for name, column in (
        ("key", RequestLog.key_name),
        ("team", RequestLog.team),
        ("model", RequestLog.model),
    ):
        if name in filters:
            query = query.where(column == filters[name])
    # With a key, team or model, its (…, time, id) index gives the page in
    # order, and status and latency are checked on the rows it reads: as
    # expressions (+ 0), their own indexes are not combined with it into a
    # bitmap that must then be sorted whole (ops/bench/request_log.py).
    narrowed = any(name in filters for name in ("key", "team", "model"))
    status = RequestLog.status + 0 if narrowed else RequestLog.status
    latency = RequestLog.latency_ms + 0 if narrowed else RequestLog.latency_ms
    if "status" in filters:
        low, high = filters["status"]
        query = query.where((status == low) if low == high else status.between(low, high))
    if "slower_than" in filters:
        query = query.where(latency > filters["slower_than"])
    if "cursor" in filters:
        query = query.where(Tuple(RequestLog.time, RequestLog.id) < Tuple(*filters["cursor"]))
    query = query.order_by(RequestLog.time.desc(), RequestLog.id.desc()).limit(limit + 1)
    with database.connection_context():
        rows = list(query)
    following = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return [describe(row, currency) for row in rows[:limit]], following


def _stamp(value):
    return value.isoformat(timespec="milliseconds") + "Z"


def describe(row, currency="USD"):
    """A row as the CLI's --json and /api/requests give it."""
    return {
        "id": row.id,
        "time": _stamp(row.time),
        "request_id": row.request_id,
        "trace_id": row.trace_id,
        "key": row.key_name,
        "team": row.team,
        "model": row.model,
        "remote_model": row.remote_model,
        "surface": row.surface,
        "route": row.route,
        "stream": row.stream,
        "status": row.status,
        "error_code": row.error_code,
        "latency_ms": row.latency_ms,
        "ttfb_ms": row.ttfb_ms,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost": None if row.cost is None else money.exact(row.cost),
        "currency": currency,
        "retries": row.retries,
        "fallback": row.fallback,
        "captured": row.captured,
    }


def one(row_id, currency="USD"):
    """The row `row_id` with its captured payloads ("capture": null when none), or None."""
    with database.connection_context():
        row = RequestLog.get_or_none(RequestLog.id == row_id)
        if row is None:
            return None
        kept = RequestCapture.get_or_none(RequestCapture.log_id == row_id)
    answer = describe(row, currency)
    answer["capture"] = None
    if kept is not None:
        answer["capture"] = {
            "request": kept.request,
            "answer": kept.answer,
            "request_bytes": kept.request_bytes,
            "answer_bytes": kept.answer_bytes,
        }
    return answer


def ids_of(request_id):
    """Row ids whose request id is `request_id`, newest first (a client may reuse one)."""
    with database.connection_context():
        query = (
            RequestLog.select(RequestLog.id)
            .where(RequestLog.request_id == request_id)
            .order_by(RequestLog.time.desc(), RequestLog.id.desc())
            .limit(20)
        )
        return [row.id for row in query]
