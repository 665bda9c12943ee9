"""The console over plain HTTP (no browser): what its pages never show,
how its sessions start, hold and end, and how sign-ins are refused.

One relay under gunicorn (keys on) serves the module.
"""

import base64
import re
import zlib

import pytest
import requests

from tests.support.access import (
    ADMIN,
    ADMIN_TOKEN,
    REMOTE_KEY,
    create_key,
    log_lines,
    start_relay,
    unique,
    until,
)
from tests.support.models import create_model

pytestmark = pytest.mark.server

HOST_SECRET = "hostsecret-5f2a9c"
PAGES = (
    "/console/overview",
    "/console/models",
    "/console/keys",
    "/console/usage",
    "/console/usage.csv",
    "/console/audit",
    "/console/requests",
)


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    server = start_relay(tmp_path_factory.mktemp("console"), RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    yield server
    server.stop()


def csrf_of(html):
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def signed_in(relay, token):
    """A requests.Session signed in to the console with `token`."""
    browser = requests.Session()
    form = browser.get(relay.url + "/console/sign-in", timeout=10)
    answer = browser.post(
        relay.url + "/console/sign-in",
        data={"csrf": csrf_of(form.text), "token": token},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return browser


def cookie_payload(browser):
    """What the session cookie holds, decoded (it is signed, not encrypted)."""
    value = browser.cookies["relay_console"]
    compressed = value.startswith(".")
    data = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return (zlib.decompress(raw) if compressed else raw).decode()


def test_no_page_or_form_shows_a_remote_key_a_client_key_or_the_admin_token(relay, upstream_server):
    model = unique("secretive")
    create_model(
        relay,
        model,
        f"{upstream_server.url}/v1?code={HOST_SECRET}",
        headers=ADMIN,
        remote_api_key=REMOTE_KEY,
    )
    key_name, secret = create_key(relay)
    admin = signed_in(relay, ADMIN_TOKEN)

    # A key made in the console is shown once, in the answer to its form.
    form = admin.get(relay.url + "/console/keys", timeout=10).text
    made = admin.post(
        relay.url + "/console/keys",
        data={"csrf": csrf_of(form), "name": unique("made")},
        timeout=10,
    )
    shown = re.search(r'id="new-key" readonly value="(orl-[^"]+)"', made.text).group(1)

    pages = [*PAGES, f"/console/models?edit={model}"]
    for path in pages:
        answer = admin.get(relay.url + path, timeout=10)
        assert answer.status_code == 200, path
        for hidden in (REMOTE_KEY, secret, shown, ADMIN_TOKEN, HOST_SECRET):
            assert hidden not in answer.text, (path, hidden)
    edit = admin.get(relay.url + f"/console/models?edit={model}", timeout=10).text
    assert 'name="remote_api_key" type="password"' in edit
    assert "?code=***" in edit
    for hidden in (ADMIN_TOKEN, REMOTE_KEY, secret):
        assert hidden not in cookie_payload(admin)


def test_saving_a_model_unchanged_keeps_its_key_and_its_host(relay, upstream_server):
    model = unique("kept")
    host = f"{upstream_server.url}/v1?code={HOST_SECRET}"
    create_model(relay, model, host, headers=ADMIN, remote_api_key=REMOTE_KEY)
    admin = signed_in(relay, ADMIN_TOKEN)
    edit = admin.get(relay.url + f"/console/models?edit={model}", timeout=10).text
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', edit))
    answer = admin.post(
        relay.url + "/console/models",
        data={
            "csrf": csrf_of(edit),
            "name": fields["name"],
            "from": fields["from"],
            "remote_host": fields["remote_host"].replace("&amp;", "&"),
            "remote_type": "openai",
            "remote_api_key": "",
        },
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    upstream_server.reset()
    chat = requests.post(
        relay.url + "/v1/chat/completions",
        headers=ADMIN,
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert chat.status_code == 200, chat.text
    called = upstream_server.last
    assert called.query.get("code") == [HOST_SECRET]
    headers = {k.lower(): v for k, v in called.headers.items()}
    assert headers["authorization"] == f"Bearer {REMOTE_KEY}"


def test_the_session_cookie_is_http_only_strict_and_not_secure_over_plain_http(relay):
    browser = requests.Session()
    answer = browser.get(relay.url + "/console/sign-in", timeout=10)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    assert "Max-Age=43200" in cookie  # RELAY_CONSOLE_SESSION_HOURS' default, 12


def test_a_revoked_keys_session_ends_at_its_next_page(relay):
    name, secret = create_key(relay)
    colleague = signed_in(relay, secret)
    assert colleague.get(relay.url + "/console/mine", timeout=10).status_code == 200
    assert secret not in cookie_payload(colleague)
    assert requests.delete(
        relay.url + "/api/keys", headers=ADMIN, json={"name": name}, timeout=10
    ).ok
    answer = colleague.get(relay.url + "/console/mine", timeout=10, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/console/sign-in")


def test_a_client_key_gets_403_on_every_admin_page(relay):
    _, secret = create_key(relay)
    colleague = signed_in(relay, secret)
    for path in PAGES:
        assert colleague.get(relay.url + path, timeout=10).status_code == 403, path


def test_a_forged_or_foreign_cookie_is_not_a_session(relay):
    browser = requests.Session()
    browser.cookies.set("relay_console", "eyJyIjoiYWRtaW4ifQ.forged.signature", path="/console")
    answer = browser.get(relay.url + "/console/overview", timeout=10, allow_redirects=False)
    assert answer.status_code == 302


def test_a_form_from_another_origin_is_refused(relay):
    admin = signed_in(relay, ADMIN_TOKEN)
    form = admin.get(relay.url + "/console/keys", timeout=10).text
    victim = unique("victim")
    answer = admin.post(
        relay.url + "/console/keys",
        data={"csrf": csrf_of(form), "name": victim},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert answer.status_code == 403
    answer = admin.post(relay.url + "/console/keys", data={"name": victim}, timeout=10)
    assert answer.status_code == 403 and "CSRF" in answer.text
    listed = requests.get(relay.url + "/api/keys", headers=ADMIN, timeout=10).json()["keys"]
    assert victim not in [k["name"] for k in listed]


def test_failed_sign_ins_are_audited_and_throttled(tmp_path):
    # A relay of its own: once throttled, its address may not sign in at all,
    # and the module's relay serves the other tests' sign-ins.
    relay = start_relay(tmp_path, RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    try:
        _throttled(relay)
    finally:
        relay.stop()


def _throttled(relay):
    wrong = "orl-" + "x" * 43
    browser = requests.Session()
    statuses = []
    # Ten failures per address and worker in ten minutes; two workers.
    for _ in range(25):
        form = browser.get(relay.url + "/console/sign-in", timeout=10).text
        answer = browser.post(
            relay.url + "/console/sign-in", data={"csrf": csrf_of(form), "token": wrong}, timeout=10
        )
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) > 0
            break
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    until(
        lambda: any(line.get("action") == "console.sign_in_failed" for line in log_lines(relay)),
        "an audit line for the failed sign-in",
    )
    assert wrong not in relay.log()


def test_the_admin_edits_a_keys_and_a_teams_limits_and_budgets(relay):
    admin = signed_in(relay, ADMIN_TOKEN)
    team = unique("team")
    form = admin.get(relay.url + "/console/keys", timeout=10).text
    csrf = csrf_of(form)
    made = admin.post(relay.url + "/console/teams", data={"csrf": csrf, "name": team}, timeout=10)
    assert made.status_code == 200
    name, _ = create_key(relay, team=team)
    saved = admin.post(
        relay.url + "/console/keys/update",
        data={"csrf": csrf, "name": name, "rpm": "60", "budget": "5", "period": "day"},
        timeout=10,
    )
    assert saved.status_code == 200
    saved = admin.post(
        relay.url + "/console/teams/update",
        data={"csrf": csrf, "name": team, "tpm": "1000", "budget": "50", "period": "month"},
        timeout=10,
    )
    assert saved.status_code == 200
    keys = requests.get(relay.url + "/api/keys", headers=ADMIN, timeout=10).json()["keys"]
    key = next(k for k in keys if k["name"] == name)
    assert (key["rpm"], key["budget"], key["period"], key["team"]) == (60, "5", "day", team)
    teams = requests.get(relay.url + "/api/teams", headers=ADMIN, timeout=10).json()["teams"]
    found = next(t for t in teams if t["name"] == team)
    assert (found["tpm"], found["budget"], found["period"]) == (1000, "50", "month")
    bad = admin.post(
        relay.url + "/console/keys/update", data={"csrf": csrf, "name": name, "rpm": "many"}
    )
    assert bad.status_code == 400 and "rpm" in bad.text


def test_sign_out_ends_the_session_in_the_browser(relay):
    admin = signed_in(relay, ADMIN_TOKEN)
    page = admin.get(relay.url + "/console/overview", timeout=10)
    answer = admin.post(
        relay.url + "/console/sign-out",
        data={"csrf": csrf_of(page.text)},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/console/sign-in")
    assert "relay_console" not in admin.cookies
    after = admin.get(relay.url + "/console/overview", timeout=10, allow_redirects=False)
    assert after.status_code == 302
