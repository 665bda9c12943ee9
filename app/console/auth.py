"""Every console request: who is signed in, may they see this page, and
does a form carry its session's CSRF token."""

import hmac
from functools import wraps

from flask import current_app, g, redirect, render_template, request, url_for

from app.console import session
from app.console.blueprint import bp
from app.errors import Forbidden, RelayError
from app.observability import telemetry

# Pages anyone may reach: the sign-in form and the console's own files.
OPEN_ENDPOINTS = ("console.static", "console.sign_in")


def _gate():
    return current_app.extensions["relay.gate"]


@bp.before_request
def who_is_there():
    gate = _gate()
    current = session.read()
    if current is None:
        # Forms need a nonce even before sign-in; it is sent with the answer.
        current = session.fresh()
        g.console_new_session = current
    g.console_session = current
    if request.endpoint in OPEN_ENDPOINTS:
        return _checked_form()
    who = session.caller_of(current, gate)
    if who is None:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("console.sign_in"))
        raise Forbidden("sign in to the console first", code="not_signed_in")
    g.caller = who
    exchange = telemetry.current()
    if exchange is not None:
        exchange.key = who.name
        exchange.team = who.key.team_name if who.key is not None else "-"
    return _checked_form()


def _checked_form():
    if request.method != "POST":
        return None
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), g.console_session.nonce.encode()):
        raise Forbidden(
            "this form's CSRF token is missing or wrong: reload the page and send it again",
            param="csrf",
            code="csrf",
        )
    return None


@bp.after_request
def keep_session(response):
    new = g.pop("console_new_session", None)
    if new is not None:
        session.write(response, new)
    return response


@bp.errorhandler(RelayError)
def error_page(error):
    return (
        render_template("console/error.html", error=error, status=error.status),
        error.status,
        error.headers,
    )


@bp.context_processor
def page_context():
    current = g.get("console_session")
    who = g.get("caller")
    return {
        "csrf_token": current.nonce if current is not None else "",
        "signed_in": who,
        "auth_on": _gate().auth,
    }


def admin_page(view):
    """A page or action for the admin alone: a client key gets 403."""

    @wraps(view)
    def checked(*args, **kwargs):
        who = g.get("caller")
        if who is None or not who.admin:
            raise Forbidden(
                f"key '{who.name if who else '-'}' may not open {request.path}: the console "
                f"shows a client key its own usage only",
                code="admin_only",
            )
        return view(*args, **kwargs)

    return checked
