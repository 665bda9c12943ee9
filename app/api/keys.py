"""The admin's API for client keys and usage: /api/keys, /api/usage."""
from flask import Blueprint, current_app, jsonify, request

from app.access import admin_only, audit, caller, keys, usage
from app.api.body import json_body
from app.errors import RelayError
from app.schemas.base import load, normalize_model_name
from app.schemas.keys import CreateKeySchema, KeyNameSchema, UsageQuerySchema

bp = Blueprint("keys", __name__, url_prefix="/api")

_create = CreateKeySchema()
_name = KeyNameSchema()
_usage = UsageQuerySchema()


def _problem(exc):
    return RelayError(str(exc), status=exc.status, param=exc.field)


def create_key(spec, actor, via):
    """Create a key from a loaded CreateKeySchema payload; (description, secret).
    Shared with `ollama-relay keys create`."""
    models = spec["models"]
    if models is not None:
        models = sorted({normalize_model_name(m) for m in models})
    try:
        row, secret = keys.create(spec["name"], models, spec["rpm"], spec["tpm"],
                                  spec["expires"])
    except keys.KeyProblem as exc:
        raise _problem(exc) from None
    audit.record(actor, "key.create", row.name, via=via, models=models, rpm=row.rpm,
                 tpm=row.tpm)
    return keys.describe(row), secret


@bp.post("/keys")
@admin_only
def create():
    spec = load(_create, json_body())
    description, secret = create_key(spec, caller().name, "http")
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
    try:
        keys.revoke(spec["name"])
    except keys.KeyProblem as exc:
        raise _problem(exc) from None
    current_app.extensions["relay.gate"].keys.expire()
    audit.record(caller().name, "key.revoke", spec["name"], via="http")
    return jsonify({"name": spec["name"], "revoked": True})


@bp.get("/usage")
@admin_only
def usage_rows():
    query = load(_usage, request.args.to_dict())
    # What this worker counted is written first; other workers' within a second.
    current_app.extensions["relay.flush_usage"]()
    return jsonify({"usage": usage.rows(query["since"], query["key"])})
