"""The admin's API for client keys and usage: /api/keys, /api/usage."""

from flask import Blueprint, current_app, jsonify, request

from app.access import admin_only, audit, caller, keys, usage
from app.surfaces.admin.key_schemas import CreateKeySchema, KeyNameSchema, UsageQuerySchema
from app.surfaces.schema import load
from app.web.body import json_body

bp = Blueprint("keys", __name__, url_prefix="/api")

_create = CreateKeySchema()
_name = KeyNameSchema()
_usage = UsageQuerySchema()


@bp.post("/keys")
@admin_only
def create():
    spec = load(_create, json_body())
    description, secret = keys.issue(spec, caller().name, "http")
    current_app.extensions["relay.gate"].keys.expire()
    # The only time the key is shown: it is not kept, only its hash.
    return jsonify({"name": description["name"], "key": secret, **description})


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
@admin_only
def usage_rows():
    query = load(_usage, request.args.to_dict())
    # What this worker counted is written first; other workers' within a second.
    current_app.extensions["relay.flush_usage"]()
    rows = usage.rows(query["since"], query["key"], current_app.config["RELAY_CURRENCY"])
    return jsonify({"usage": usage.grouped(rows, query["by"]) if query["by"] else rows})
