"""The admin's API for teams: /api/teams."""

from flask import Blueprint, current_app, jsonify

from app.access import admin_only, caller, teams
from app.surfaces.admin.key_schemas import CreateTeamSchema, KeyNameSchema, UpdateTeamSchema
from app.surfaces.schema import load
from app.web.body import json_body

bp = Blueprint("teams", __name__, url_prefix="/api")

_create = CreateTeamSchema()
_update = UpdateTeamSchema()
_name = KeyNameSchema()


def _seen_at_once():
    # This worker's keys carry their team: reload them now, not in a second.
    current_app.extensions["relay.gate"].keys.expire()


@bp.post("/teams")
@admin_only
def create():
    description = teams.create(load(_create, json_body()), caller().name, "http")
    _seen_at_once()
    return jsonify(description)


@bp.get("/teams")
@admin_only
def listing():
    return jsonify({"teams": [teams.describe(row) for row in teams.all_teams()]})


@bp.patch("/teams")
@admin_only
def update():
    description = teams.update(load(_update, json_body()), caller().name, "http")
    _seen_at_once()
    return jsonify(description)


@bp.delete("/teams")
@admin_only
def delete():
    name = load(_name, json_body())["name"]
    teams.delete(name, caller().name, "http")
    _seen_at_once()
    return jsonify({"name": name, "deleted": True})
