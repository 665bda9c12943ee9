"""Usage summed in the database for reports (the console's charts and
tables, the CSV export): one GROUP BY per question, never a whole table
read into memory."""

import csv
import io

from peewee import fn

from app.access.usage import KEY_COLUMNS
from app.storage.models import DailyUsage

COUNTS = ("requests", "input_tokens", "output_tokens", "errors", "cost")
_COLUMN = {
    "key": DailyUsage.key_name,
    "team": DailyUsage.team,
    "model": DailyUsage.model,
    "day": DailyUsage.day,
}


def _sums():
    return [fn.SUM(getattr(DailyUsage, name)).alias(name) for name in COUNTS]


def _where(query, since, until, key=None, team=None):
    if since:
        query = query.where(DailyUsage.day >= since)
    if until:
        query = query.where(DailyUsage.day <= until)
    if key:
        query = query.where(DailyUsage.key_name == key)
    if team:
        query = query.where(DailyUsage.team == team)
    return query


def _counted(row):
    return {name: int(getattr(row, name) or 0) for name in COUNTS}


def per_day(since, until=None, by=None, key=None, team=None, among=None):
    """{(day, group): counts} summed per UTC day, and per key, team or model
    when `by` says so (group is None otherwise), only for the groups `among`
    when given (a chart's few: a range of 10,000 keys is not read whole)."""
    columns = [DailyUsage.day] + ([_COLUMN[by]] if by else [])
    query = _where(DailyUsage.select(*columns, *_sums()), since, until, key, team)
    if by and among is not None:
        query = query.where(_COLUMN[by].in_(list(among)))
    query = query.group_by(*columns).tuples()
    width = len(columns)
    return {
        (row[0], row[1] if by else None): {
            name: int(value or 0) for name, value in zip(COUNTS, row[width:])
        }
        for row in query
    }


def top(column, since, until=None, limit=5, key=None, team=None):
    """The `limit` keys, teams or models that cost most (then made most
    requests) between the two days."""
    field = _COLUMN[column]
    query = _where(DailyUsage.select(field.alias("group"), *_sums()), since, until, key, team)
    query = query.group_by(field).order_by(
        fn.SUM(DailyUsage.cost).desc(), fn.SUM(DailyUsage.requests).desc()
    )
    return [{"name": row.group, **_counted(row)} for row in query.limit(limit)]


def csv_text(rows, by=None):
    """Usage rows (app.access.usage.rows, or grouped) as `ollama-relay usage
    --format csv` writes them: exact cost, unpriced as true or false."""
    columns = (*(c for c in KEY_COLUMNS if not by or c == by), *COUNTS, "currency")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns + ("unpriced",))
    writer.writerows([*(row[c] for c in columns), str(row["unpriced"]).lower()] for row in rows)
    return out.getvalue()
