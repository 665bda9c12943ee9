"""The admin's API for client keys and usage: /api/keys, /api/usage."""

from flask import Blueprint, current_app, jsonify, request

from app import access
from app.access import admin_only, audit, caller, keys, usage
from app.spend.budgets import status as budgets_status
from app.surfaces.admin.key_schemas import (
    CreateKeySchema,
    KeyNameSchema,
    UpdateKeySchema,
    UsageQuerySchema,
)
from app.surfaces.schema import load
from app.web.body import json_body

bp = Blueprint("keys", __name__, url_prefix="/api")

_create = CreateKeySchema()
_name = KeyNameSchema()
_update = UpdateKeySchema()
_usage = UsageQuerySchema()


@bp.post("/keys")
@admin_only
def create():
    spec = load(_create, json_body())
    description, secret = keys.issue(spec, caller().name, "http")
    current_app.extensions["relay.gate"].keys.expire()
    # The only time the key is shown: it is not kept, only its hash.
    return jsonify({"name": description["name"], "key": secret, **description})


@bp.patch("/keys")
@admin_only
def update():
    description = keys.update(load(_update, json_body()), caller().name, "http")
    current_app.extensions["relay.gate"].keys.expire()
    return jsonify(description)


@bp.get("/keys")
@admin_only
def listing():
    return jsonify({"keys": [keys.describe(row) for row in keys.all_keys()]})


@bp.delete("/keys")
@admin_only
def revoke():
    spec = load(_name, json_body())
    keys.revoke(spec["name"])
    current_app.extensions["relay.gate"].keys.expire()
    audit.record(caller().name, "key.revoke", spec["name"], via="http")
    return jsonify({"name": spec["name"], "revoked": True})


@bp.get("/usage")
def usage_rows():
    """The admin's view of every key's usage; a client key's of its own, with
    where its budgets (its own and its team's) stand."""
    query = load(_usage, request.args.to_dict())
    who = caller()
    # What this worker counted is written first; other workers' within a second.
    current_app.extensions["relay.flush_usage"]()
    key = query["key"] if who.admin else who.name
    team = query["team"] if who.admin else None
    rows = usage.rows(query["since"], key, current_app.config["RELAY_CURRENCY"], team)
    answer = {"usage": usage.grouped(rows, query["by"]) if query["by"] else rows}
    if not who.admin:
        answer["budgets"] = [budgets_status(b) for b in access.budgets()]
    return jsonify(answer)
