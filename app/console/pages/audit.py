"""Audit, and Requests: what the console will show once the data is in the
database. Today the audit trail is one JSON log line per action
(app/access/audit.py, logger app.audit) and nothing of it is stored."""

from flask import render_template

from app.console.auth import admin_page
from app.console.blueprint import bp


@bp.get("/audit")
@admin_page
def audit_page():
    return render_template("console/audit.html")


@bp.get("/requests")
@admin_page
def requests_page():
    return render_template("console/requests.html")
