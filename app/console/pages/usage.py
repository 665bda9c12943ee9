"""Usage: cost and tokens per UTC day for a chosen range, stacked by team,
key or model, with totals per group and the CLI's CSV export."""

import datetime

from flask import Response, current_app, render_template, request

from app.access import usage, usage_report
from app.console import charts
from app.console.auth import admin_page
from app.console.blueprint import bp
from app.console.pages.overview import days_between, today
from app.errors import BadRequest
from app.spend import money

GROUPS = ("team", "key", "model")
# A chart shows this many groups (those that cost most); the rest are
# summed as "others". The table lists TABLE_ROWS.
SHOWN_GROUPS = 8
TABLE_ROWS = 50
LONGEST_RANGE_DAYS = 366


def _day(name, default):
    value = request.args.get(name) or default.isoformat()
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not a date YYYY-MM-DD", param=name) from None


def _range():
    last = _day("until", today())
    first = _day("since", last - datetime.timedelta(days=29))
    if first > last:
        raise BadRequest("since: must not be after until", param="since")
    if (last - first).days >= LONGEST_RANGE_DAYS:
        raise BadRequest(f"since: a range is at most {LONGEST_RANGE_DAYS} days", param="since")
    return first, last


def _by():
    by = request.args.get("by") or "team"
    if by not in GROUPS:
        raise BadRequest(f"by: must be one of {', '.join(GROUPS)}", param="by")
    return by


def stacked_series(labels, shown, daily, totals, measure):
    """{group: [value per day]} for the `shown` groups, and "others": what
    the day's total holds beyond them."""
    where = {day: n for n, day in enumerate(labels)}
    series = {str(group): [0] * len(labels) for group in shown}
    for (day, group), counts in daily.items():
        series[str(group)][where[day]] += measure(counts)
    others = [0] * len(labels)
    for (day, _), counts in totals.items():
        n = where[day]
        others[n] = measure(counts) - sum(values[n] for values in series.values())
    if any(value > 0 for value in others):
        series["others"] = others
    return series


@bp.get("/usage")
@admin_page
def usage_page():
    first, last = _range()
    by = _by()
    labels = days_between(first, last)
    leaders = usage_report.top(by, labels[0], labels[-1], limit=TABLE_ROWS)
    shown = [row["name"] for row in leaders[:SHOWN_GROUPS]]
    daily = usage_report.per_day(labels[0], labels[-1], by=by, among=shown)
    totals = usage_report.per_day(labels[0], labels[-1])
    currency = current_app.config["RELAY_CURRENCY"]
    pictures = {
        "cost": charts.stacked(
            f"Cost per UTC day by {by} ({currency})",
            labels,
            stacked_series(labels, shown, daily, totals, lambda c: c["cost"] / money.PICO),
        ),
        "tokens": charts.stacked(
            f"Tokens per UTC day by {by}",
            labels,
            stacked_series(
                labels, shown, daily, totals, lambda c: c["input_tokens"] + c["output_tokens"]
            ),
        ),
    }
    return render_template(
        "console/usage.html",
        since=labels[0],
        until=labels[-1],
        by=by,
        groups=GROUPS,
        pictures=pictures,
        totals=[dict(row, cost_shown=money.shown(row["cost"])) for row in leaders],
        table_rows=TABLE_ROWS,
        currency=currency,
    )


@bp.get("/usage.csv")
@admin_page
def usage_csv():
    """What `ollama-relay usage [--since DAY] [--by GROUP] --format csv` prints."""
    since = request.args.get("since") or None
    if since is not None:
        _day("since", today())
    by = request.args.get("by") or None
    if by is not None and by not in usage.GROUPS:
        raise BadRequest(f"by: must be one of {', '.join(usage.GROUPS)}", param="by")
    current_app.extensions["relay.flush_usage"]()
    rows = usage.rows(since, None, current_app.config["RELAY_CURRENCY"])
    if by:
        rows = usage.grouped(rows, by)
    name = f"usage-{since or 'all'}{'-by-' + by if by else ''}.csv"
    return Response(
        usage_report.csv_text(rows, by),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
