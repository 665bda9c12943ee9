"""Overview: requests, tokens, cost and error rate per UTC day for the last
30 days (today's the last bar), the top teams, keys and models, and the
remotes this worker skips in cool-down."""

import datetime

from flask import current_app, render_template

from app.access import usage_report
from app.catalog.urls import shown_url
from app.console import charts
from app.console.auth import admin_page
from app.console.blueprint import bp
from app.spend import money

DAYS = 30


def days_between(first, last):
    count = (last - first).days + 1
    return [(first + datetime.timedelta(days=n)).isoformat() for n in range(count)]


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def totals(counts):
    """Sums of a list of count dicts, with cost shown and the error rate."""
    total = {name: sum(c[name] for c in counts) for name in usage_report.COUNTS}
    total["cost_shown"] = money.shown(total["cost"])
    total["tokens"] = total["input_tokens"] + total["output_tokens"]
    total["error_rate"] = (
        f"{100 * total['errors'] / total['requests']:.1f} %" if total["requests"] else "-"
    )
    return total


def _cooling():
    # A target is "<remote_host> <remote model>" (app/routing.py).
    shown = []
    for target, left in current_app.extensions["relay.cooldown"].cooling():
        host, _, model = target.partition(" ")
        shown.append({"remote": shown_url(host), "model": model, "seconds": round(left)})
    return shown


@bp.get("/overview")
@admin_page
def overview():
    last = today()
    labels = days_between(last - datetime.timedelta(days=DAYS - 1), last)
    daily = usage_report.per_day(labels[0], labels[-1])
    zero = dict.fromkeys(usage_report.COUNTS, 0)
    per_day = [daily.get((day, None), zero) for day in labels]
    pictures = {
        "requests": charts.stacked(
            "Requests per UTC day",
            labels,
            {
                "answered": [d["requests"] - d["errors"] for d in per_day],
                "failed": [d["errors"] for d in per_day],
            },
        ),
        "tokens": charts.stacked(
            "Tokens per UTC day",
            labels,
            {
                "input": [d["input_tokens"] for d in per_day],
                "output": [d["output_tokens"] for d in per_day],
            },
        ),
        "cost": charts.stacked(
            f"Cost per UTC day ({current_app.config['RELAY_CURRENCY']})",
            labels,
            {"cost": [d["cost"] / money.PICO for d in per_day]},
        ),
        "errors": charts.lines(
            "Error rate per UTC day (%)",
            labels,
            {
                "errors": [
                    round(100 * d["errors"] / d["requests"], 1) if d["requests"] else None
                    for d in per_day
                ]
            },
        ),
    }
    top = {
        column: [
            dict(row, cost_shown=money.shown(row["cost"]))
            for row in usage_report.top(column, labels[0], labels[-1])
        ]
        for column in ("team", "key", "model")
    }
    return render_template(
        "console/overview.html",
        today=totals([per_day[-1]]),
        month=totals(per_day),
        first_day=labels[0],
        last_day=labels[-1],
        pictures=pictures,
        top=top,
        cooling=_cooling(),
        currency=current_app.config["RELAY_CURRENCY"],
    )
