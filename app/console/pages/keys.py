"""Teams and keys: create (a key is shown once, with a copy button), revoke,
edit models, limits and budgets; each budget with its period's progress."""

from flask import current_app, g, redirect, render_template, request, url_for

from app.access import audit, keys, teams
from app.access.teams import budget_of
from app.console.auth import admin_page
from app.console.blueprint import bp
from app.console.forms import listed, number, text
from app.spend import money
from app.spend.budgets import status as budget_status
from app.surfaces.admin.key_schemas import (
    CreateKeySchema,
    CreateTeamSchema,
    UpdateKeySchema,
    UpdateTeamSchema,
)
from app.surfaces.schema import load

_create_key = CreateKeySchema()
_update_key = UpdateKeySchema()
_create_team = CreateTeamSchema()
_update_team = UpdateTeamSchema()

PAGE = 50


def _progress(scope, row):
    budget = budget_of(scope, row)
    if budget is None:
        return None
    state = budget_status(budget)
    spent = money.to_pico(state["spent"])
    return {
        **state,
        "spent_shown": money.shown(spent),
        "budget_shown": money.shown(budget.amount),
        # <progress> takes numbers: pico-units are exact and need no style.
        "value": min(spent, budget.amount),
        "max": max(budget.amount, 1),
    }


def _key_row(row):
    return {**keys.describe(row), "progress": _progress("key", row)}


def _team_row(row):
    return {**teams.describe(row), "progress": _progress("team", row)}


def _fields(form):
    """A key's or team's form as the JSON API's payload: empty fields are
    not given (on an edit: left as they are)."""
    spec = {"name": text(form, "name")}
    models = listed(form, "models")
    if models is not None:
        spec["models"] = models
    for name in ("rpm", "tpm"):
        value = number(form, name)
        if value is not None:
            spec[name] = value
    budget, period = text(form, "budget"), text(form, "period")
    if budget is not None:
        spec["budget"] = budget
    if period is not None:
        spec["period"] = period
    for name in ("team", "expires"):
        value = text(form, name)
        if value is not None:
            spec[name] = value
    return spec


def _page(new_key=None, status=200):
    after = request.args.get("after") or None
    rows, more = keys.page(after, PAGE)
    return render_template(
        "console/keys.html",
        keys=[_key_row(r) for r in rows],
        more=more,
        next_after=rows[-1].name if rows and more else None,
        teams=[_team_row(t) for t in teams.all_teams()],
        new_key=new_key,
        currency=current_app.config["RELAY_CURRENCY"],
    ), status


def _seen_at_once():
    current_app.extensions["relay.gate"].keys.expire()


@bp.get("/keys")
@admin_page
def keys_page():
    return _page()


@bp.post("/keys")
@admin_page
def create_key():
    spec = load(_create_key, _fields(request.form))
    description, secret = keys.issue(spec, g.caller.name, "console")
    _seen_at_once()
    # The only time the key is shown: the page is not cached (no-store).
    return _page(new_key={"name": description["name"], "secret": secret})


@bp.post("/keys/update")
@admin_page
def update_key():
    keys.update(load(_update_key, _fields(request.form)), g.caller.name, "console")
    _seen_at_once()
    return redirect(url_for("console.keys_page"))


@bp.post("/keys/revoke")
@admin_page
def revoke_key():
    name = text(request.form, "name") or ""
    keys.revoke(name)
    _seen_at_once()
    audit.record(g.caller.name, "key.revoke", name, via="console")
    return redirect(url_for("console.keys_page"))


@bp.post("/teams")
@admin_page
def create_team():
    spec = _fields(request.form)
    spec.pop("team", None)
    spec.pop("expires", None)
    teams.create(load(_create_team, spec), g.caller.name, "console")
    _seen_at_once()
    return redirect(url_for("console.keys_page"))


@bp.post("/teams/update")
@admin_page
def update_team():
    spec = _fields(request.form)
    spec.pop("team", None)
    spec.pop("expires", None)
    teams.update(load(_update_team, spec), g.caller.name, "console")
    _seen_at_once()
    return redirect(url_for("console.keys_page"))
