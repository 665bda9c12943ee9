"""Ollama's model management API for remote models (/api/create, tags, show, ...)."""
from flask import Blueprint, jsonify

from app import describe, registry
from app.errors import BadRequest
from app.api.body import json_body
from app.schemas.base import load
from app.schemas.models import CopySchema, CreateSchema, ModelRefSchema
from app.streaming import ndjson_line, ndjson_response

bp = Blueprint("models", __name__, url_prefix="/api")

_create = CreateSchema()
_model_ref = ModelRefSchema()
_copy = CopySchema()


@bp.post("/create")
def create():
    spec = load(_create, json_body())
    # The write happens before the first byte is sent, so a failure is a
    # plain error status and the status lines report finished steps.
    registry.create(spec)
    steps = [{"status": "using remote model"}, {"status": "writing manifest"},
             {"status": "success"}]
    if not spec["stream"]:
        return jsonify(steps[-1])
    return ndjson_response(ndjson_line(step) for step in steps)


@bp.get("/tags")
def tags():
    return jsonify({"models": [describe.tags_entry(m) for m in registry.all_models()]})


@bp.post("/show")
def show():
    spec = load(_model_ref, json_body())
    return jsonify(describe.show(registry.resolve(spec["model"])))


@bp.delete("/delete")
def delete():
    spec = load(_model_ref, json_body())
    registry.delete(spec["model"])
    return "", 200


@bp.post("/copy")
def copy():
    spec = load(_copy, json_body())
    registry.copy(spec["source"], spec["destination"])
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
        f"and stores no weights; create one with /api/create and remote_host")
