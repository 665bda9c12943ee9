"""Ollama's model management API for remote models (/api/create, tags, show, ...)."""

from flask import Blueprint, jsonify

from app.access import admin_only, audit, caller
from app.catalog import describe, registry
from app.catalog.names import normalize_model_name
from app.errors import BadRequest
from app.routing import model_to_show, visible_models
from app.spend import prices
from app.surfaces.admin.model_schemas import CopySchema, CreateSchema, ModelRefSchema
from app.surfaces.schema import load
from app.web.body import json_body
from app.web.streaming import ndjson_line, ndjson_response

bp = Blueprint("models", __name__, url_prefix="/api")

_create = CreateSchema()
_model_ref = ModelRefSchema()
_copy = CopySchema()


@bp.post("/create")
@admin_only
def create():
    spec = load(_create, json_body())
    # The write happens before the first byte is sent, so a failure is a
    # plain error status and the status lines report finished steps.
    replacing = registry.exists(spec["model"])
    model = registry.create(spec)
    audit.record(
        caller().name,
        "model.replace" if replacing else "model.create",
        model.name,
        via="http",
        remote_host=model.remote_host,
        parent_model=model.parent_model,
        price=None if prices.of(model) is None else prices.of(model).per_million(),
    )
    steps = [
        {"status": "using remote model"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    if not spec["stream"]:
        return jsonify(steps[-1])
    return ndjson_response(ndjson_line(step) for step in steps)


@bp.get("/tags")
def tags():
    return jsonify({"models": [describe.tags_entry(m) for m in visible_models()]})


@bp.post("/show")
def show():
    spec = load(_model_ref, json_body())
    return jsonify(describe.show(model_to_show(spec["model"])))


@bp.delete("/delete")
@admin_only
def delete():
    spec = load(_model_ref, json_body())
    registry.delete(spec["model"])
    audit.record(caller().name, "model.delete", normalize_model_name(spec["model"]), via="http")
    return "", 200


@bp.post("/copy")
@admin_only
def copy():
    spec = load(_copy, json_body())
    model = registry.copy(spec["source"], spec["destination"])
    audit.record(caller().name, "model.copy", model.name, via="http", source=spec["source"])
    return "", 200


@bp.get("/ps")
def ps():
    # Remote models are never loaded in this process' memory.
    return jsonify({"models": []})


@bp.post("/pull")
@bp.post("/push")
def pull_or_push():
    spec = load(_model_ref, json_body())
    raise BadRequest(
        f"cannot pull or push '{spec['model']}': this server serves remote models only "
        f"and stores no weights; create one with /api/create and remote_host"
    )
