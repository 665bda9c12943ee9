"""Liveness, readiness and the version: what load balancers and clients probe."""

import logging

from flask import Blueprint, Response, jsonify
from peewee import PeeweeException

from app.observability import metrics
from app.storage import db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# The Ollama release whose API this server implements: 0.14.0 added the
# Anthropic Messages API (/v1/messages) that `ollama launch claude` needs;
# Codex refuses below 0.13.4. Later releases added APIs the relay does not
# serve, so it does not claim them.
OLLAMA_API_VERSION = "0.14.0"


@bp.route("/", methods=["GET", "HEAD"])
def root():
    return "Ollama is running", 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/api/version")
def version():
    return jsonify({"version": OLLAMA_API_VERSION})


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    try:
        pending = db.pending_migrations()
    except (PeeweeException, OSError) as exc:
        log.warning("readiness check failed: database: %s", exc.__class__.__name__)
        return jsonify({"status": "unavailable", "reason": "database unreachable"}), 503
    if pending:
        return jsonify(
            {"status": "unavailable", "reason": f"schema not current: pending {', '.join(pending)}"}
        ), 503
    return jsonify({"status": "ok"})


@bp.get("/metrics")
def prometheus_metrics():
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
