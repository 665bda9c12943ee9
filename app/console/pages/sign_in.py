"""Sign-in with the admin token or a client key, and sign-out."""

from flask import current_app, g, redirect, render_template, request, url_for

from app.access import audit
from app.access.keys import digest
from app.console import session
from app.console.blueprint import bp
from app.errors import RelayError, Unauthorized


def _failures():
    return current_app.extensions["relay.console.failures"]


def home_of(who):
    return url_for("console.overview" if who.admin else "console.mine")


@bp.get("/")
def home():
    return redirect(home_of(g.caller))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    gate = current_app.extensions["relay.gate"]
    if not gate.auth:
        # An open relay (this machine only) has nobody to sign in.
        return redirect(url_for("console.overview"))
    if request.method == "GET":
        return render_template("console/sign_in.html", problem=None)
    peer = request.remote_addr or "-"
    wait = _failures().wait(peer)
    if wait:
        raise RelayError(
            f"too many failed sign-ins from {peer}: try again in {wait:.0f} seconds",
            status=429,
            code="sign_in_throttled",
            headers={"Retry-After": str(round(wait))},
        )
    secret = request.form.get("token", "").strip()
    try:
        who = gate.identify(secret or None)
    except Unauthorized as refusal:
        _failures().failed(peer)
        # What was typed is never logged: it may be a real key with a typo.
        audit.record("-", "console.sign_in_failed", peer, via="console", reason=refusal.message)
        return render_template("console/sign_in.html", problem=refusal.message), 401
    audit.record(who.name, "console.sign_in", peer, via="console")
    response = redirect(home_of(who))
    g.pop("console_new_session", None)
    session.write(response, session.for_caller(who, digest(secret)))
    return response


@bp.post("/sign-out")
def sign_out():
    audit.record(g.caller.name, "console.sign_out", request.remote_addr or "-", via="console")
    response = redirect(url_for("console.sign_in"))
    session.clear(response)
    g.pop("console_new_session", None)
    return response
