"""Liveness, readiness and the version: what load balancers and clients probe."""

import logging

from flask import Blueprint, Response, jsonify
from peewee import PeeweeException

from app.observability import metrics
from app.storage import db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# The Ollama release whose API this server implements: 0.30.0 lists
# `capabilities` in /api/tags, the newest of what the relay serves (think
# "max" came in 0.22, /api/status in 0.16.2, logprobs in 0.12.11, tool-call
# ids in 0.12.10, /v1/embeddings base64 in 0.12.7, /api/embed dimensions in
# 0.11.11; the Messages API that `ollama launch claude` needs in 0.14.0, and
# Codex refuses below 0.13.4). Clients gate features on it.
OLLAMA_API_VERSION = "0.30.0"

# What an Ollama server without its cloud answers on /api/status (run with
# OLLAMA_NO_CLOUD=1): the relay offers no ollama.com models or web search.
CLOUD_STATUS = {"cloud": {"disabled": True, "source": "env"}}


@bp.route("/", methods=["GET", "HEAD"])
def root():
    return "Ollama is running", 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/api/version")
def version():
    return jsonify({"version": OLLAMA_API_VERSION})


@bp.get("/api/status")
def status():
    return jsonify(CLOUD_STATUS)


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
