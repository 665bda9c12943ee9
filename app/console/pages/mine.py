"""My usage: what a colleague signed in with a client key may see of their
own key: its models, its usage and cost per day, its budgets and its team's."""

import datetime

from flask import current_app, g, render_template

from app import access
from app.access import usage_report
from app.catalog import registry
from app.console import charts
from app.console.blueprint import bp
from app.console.pages.overview import days_between, today, totals
from app.errors import Forbidden
from app.spend import money
from app.spend.budgets import status as budget_status

DAYS = 30


@bp.get("/mine")
def mine():
    who = g.caller
    if who.key is None:
        raise Forbidden("My usage is for a client key: the admin sees Usage", code="key_only")
    last = today()
    labels = days_between(last - datetime.timedelta(days=DAYS - 1), last)
    daily = usage_report.per_day(labels[0], labels[-1], key=who.name)
    zero = dict.fromkeys(usage_report.COUNTS, 0)
    per_day = [daily.get((day, None), zero) for day in labels]
    currency = current_app.config["RELAY_CURRENCY"]
    budgets = []
    for budget in access.budgets():
        state = budget_status(budget)
        spent = money.to_pico(state["spent"])
        budgets.append(
            {
                **state,
                "spent_shown": money.shown(spent),
                "remaining_shown": money.shown(money.to_pico(state["remaining"])),
                "budget_shown": money.shown(budget.amount),
                "value": min(spent, budget.amount),
                "max": max(budget.amount, 1),
            }
        )
    return render_template(
        "console/mine.html",
        models=[m.name for m in registry.all_models() if who.may_use(m.name)],
        month=totals(per_day),
        cost_chart=charts.stacked(
            f"My cost per UTC day ({currency})",
            labels,
            {"cost": [d["cost"] / money.PICO for d in per_day]},
        ),
        tokens_chart=charts.stacked(
            "My tokens per UTC day",
            labels,
            {
                "input": [d["input_tokens"] for d in per_day],
                "output": [d["output_tokens"] for d in per_day],
            },
        ),
        budgets=budgets,
        currency=currency,
    )
