"""The request log over HTTP: GET /api/requests (the admin: every row; a
client key: its own) and GET /api/requests/{row_id} (a row with its captured
payloads: the admin only)."""

from flask import Blueprint, current_app, jsonify, request

from app.access import admin_only, audit, caller
from app.errors import NotFound
from app.observability import request_queries as queries
from app.surfaces.admin.request_schemas import RequestQuerySchema
from app.surfaces.schema import load

bp = Blueprint("requests", __name__, url_prefix="/api")

_query = RequestQuerySchema()


def _written_now():
    # What this worker logged is written first; other workers' within a second.
    current_app.extensions["relay.flush_usage"]()


@bp.get("/requests")
def listing():
    query = load(_query, request.args.to_dict())
    who = caller()
    filters = {
        name: query[name] for name in (*queries.FILTERS, "cursor") if query[name] is not None
    }
    if "model" in filters:
        filters.update(queries.parse({"model": filters["model"]}))
    if not who.admin:
        filters["key"] = who.name  # whatever it asked: its own rows only
    _written_now()
    rows, following = queries.page(filters, query["limit"], current_app.config["RELAY_CURRENCY"])
    return jsonify({"requests": rows, "next_cursor": following})


@bp.get("/requests/<row_id>")
@admin_only
def one(row_id):
    _written_now()
    found = None
    if row_id.isascii() and row_id.isdigit() and len(row_id) < 19:
        found = queries.one(int(row_id), current_app.config["RELAY_CURRENCY"])
    if found is None:
        raise NotFound(f"request log row '{row_id}' not found", param="row_id")
    if found["capture"] is not None:
        # Captured payloads are the most sensitive thing the relay keeps.
        audit.record(caller().name, "request.show", row_id, via="http")
    return jsonify(found)
