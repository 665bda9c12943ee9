"""The web console at /console/: pages for the admin, and a colleague's own
usage, served by the relay itself (Jinja templates, files under static/, no
front-end build, nothing from the internet).

Every console answer carries a strict Content-Security-Policy: no inline
script or style, so a value that slipped into a page could not run. Charts
are SVG drawn on the server (app/console/charts.py) and shown as images.
"""

from flask import request

from app.console import pages  # noqa: F401  (the pages' routes)
from app.console.blueprint import bp
from app.console.session import CONSOLE_PREFIX
from app.console.throttle import FailedSignIns

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def init_app(app):
    app.extensions["relay.console.failures"] = FailedSignIns()
    app.register_blueprint(bp)
    app.after_request(_security_headers)


def _security_headers(response):
    """On every answer under /console (errors and static files too)."""
    if request.path == CONSOLE_PREFIX or request.path.startswith(CONSOLE_PREFIX + "/"):
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Not no-referrer: under it Chromium posts forms with `Origin: null`,
        # which the relay refuses (app/access/guard.py).
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if response.mimetype == "text/html":
            # Pages name keys, teams and spend: no cache keeps them.
            response.headers["Cache-Control"] = "no-store"
    return response
