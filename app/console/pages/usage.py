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
# A chart shows this many groups; the rest are summed as "others".
SHOWN_GROUPS = 8
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


def stacked_series(daily, labels, measure):
    """{group: [value per day]} for the SHOWN_GROUPS largest groups, and "others"."""
    totals = {}
    for (_, group), counts in daily.items():
        totals[group] = totals.get(group, 0) + measure(counts)
    ranked = sorted(totals, key=lambda group: (-totals[group], str(group)))
    shown = ranked[:SHOWN_GROUPS]
    series = {str(group): [0] * len(labels) for group in shown}
    if len(ranked) > SHOWN_GROUPS:
        series["others"] = [0] * len(labels)
    where = {day: n for n, day in enumerate(labels)}
    for (day, group), counts in daily.items():
        name = str(group) if group in shown else "others"
        series[name][where[day]] += measure(counts)
    return series


def group_totals(daily):
    totals = {}
    for (_, group), counts in daily.items():
        total = totals.setdefault(group, dict.fromkeys(usage_report.COUNTS, 0))
        for name in usage_report.COUNTS:
            total[name] += counts[name]
    return [
        {"name": group, **t, "cost_shown": money.shown(t["cost"])}
        for group, t in sorted(totals.items(), key=lambda item: (-item[1]["cost"], str(item[0])))
    ]


@bp.get("/usage")
@admin_page
def usage_page():
    first, last = _range()
    by = _by()
    labels = days_between(first, last)
    daily = usage_report.per_day(labels[0], labels[-1], by=by)
    currency = current_app.config["RELAY_CURRENCY"]
    pictures = {
        "cost": charts.stacked(
            f"Cost per UTC day by {by} ({currency})",
            labels,
            stacked_series(daily, labels, lambda c: c["cost"] / money.PICO),
        ),
        "tokens": charts.stacked(
            f"Tokens per UTC day by {by}",
            labels,
            stacked_series(daily, labels, lambda c: c["input_tokens"] + c["output_tokens"]),
        ),
    }
    return render_template(
        "console/usage.html",
        since=labels[0],
        until=labels[-1],
        by=by,
        groups=GROUPS,
        pictures=pictures,
        totals=group_totals(daily),
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
