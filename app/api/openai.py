"""OpenAI-compatible surface: /v1/models (chat completions join later)."""
from flask import Blueprint, jsonify

from app import registry

bp = Blueprint("openai", __name__, url_prefix="/v1")


@bp.get("/models")
def list_models():
    return jsonify({"object": "list",
                    "data": [registry.openai_model(m) for m in registry.all_models()]})


@bp.get("/models/<path:model>")
def get_model(model):
    return jsonify(registry.openai_model(registry.resolve(model)))
