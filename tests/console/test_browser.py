"""The console in a real browser: Debian's Chromium driven by Playwright,
against the relay under gunicorn and the fake upstream.

One relay (keys on) serves the module; one test goes through it as an admin
would: sign in, create a team, a priced model and a key, use the key from
the OpenAI SDK, see the call, revoke the key; then a colleague signs in with
a key of their own. Every page is checked for its CSP (the header, and
Chromium's violation reports) and photographed: the screenshots go to
RELAY_CONSOLE_SCREENSHOTS, or the module's temporary directory.
"""

import os
import re
import shutil

import openai
import pytest
import requests

from tests.support.access import ADMIN, ADMIN_TOKEN, REMOTE_KEY, start_relay, unique, until

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("RELAY_TEST_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]

POLICY_PARTS = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
)
# Collects what the CSP refused, before any page script runs (an init
# script comes from the browser, so the page's CSP does not apply to it).
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    server = start_relay(tmp_path_factory.mktemp("console"), RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("RELAY_CONSOLE_SCREENSHOTS") or str(tmp_path_factory.mktemp("shots"))
    os.makedirs(folder, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Visitor:
    """A browser context (its own cookies) that records every console
    answer's headers and every CSP violation or console error."""

    def __init__(self, browser, relay, shots):
        self.relay = relay
        self.shots = shots
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=relay.url)
        self.context.add_init_script(WATCH_VIOLATIONS)
        self.page = self.context.new_page()
        self.console_errors = []
        self.answers = []
        self.page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        self.page.on("response", lambda answer: self.answers.append(answer))

    def open(self, path):
        answer = self.page.goto(self.relay.url + path)
        self.check_page()
        return answer

    def check_page(self):
        self.page.wait_for_load_state("load")
        violations = self.page.evaluate("window.__violations")
        assert violations == [], violations
        refused = [e for e in self.console_errors if "Content Security Policy" in e]
        assert refused == [], refused

    def shoot(self, name):
        self.page.screenshot(path=os.path.join(self.shots, f"{name}.png"), full_page=True)

    def submit(self, button):
        """Click a form's button and wait for the page it leads to."""
        with self.page.expect_navigation():
            button.click()
        self.check_page()

    def sign_in(self, token):
        self.open("/console/sign-in")
        self.page.get_by_label("Admin token, or your client key").fill(token)
        self.submit(self.page.get_by_role("button", name="Sign in"))


def test_an_admin_and_a_colleague_use_the_console(browser, relay, shots, upstream_server):
    """The whole story in one test: its steps build on each other, and one
    test stays on one xdist worker (one relay, one browser)."""
    names = {"team": unique("search"), "model": unique("priced"), "key": unique("alice")}
    state = {}
    admin = Visitor(browser, relay, shots)
    try:
        sign_in_with_the_admin_token(admin)
        create_a_team_a_priced_model_and_a_key(admin, names, upstream_server, state)
        use_the_copied_key_from_the_openai_sdk(relay, names, state, upstream_server)
        see_the_call_on_overview_and_usage(admin, names)
        revoke_the_key_and_see_its_next_call_refused(admin, relay, names, state)
        sign_in_with_a_client_key_and_see_only_my_usage(browser, relay, shots, names, admin)
        post_a_form_from_another_site_without_the_csrf_token(admin, relay)
        check_the_policy_of_every_answer_and_the_shots(admin, shots)
    finally:
        admin.context.close()


def sign_in_with_the_admin_token(admin):
    admin.open("/console/overview")
    assert admin.page.url.endswith("/console/sign-in")
    admin.shoot("sign-in")
    admin.sign_in(ADMIN_TOKEN)
    assert admin.page.url.endswith("/console/overview")
    assert admin.page.get_by_role("heading", name="Overview").is_visible()
    cookie = next(c for c in admin.context.cookies() if c["name"] == "relay_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in cookie["value"]


def create_a_team_a_priced_model_and_a_key(admin, names, upstream_server, state):
    page = admin.page
    admin.open("/console/keys")
    page.get_by_label("Team name").fill(names["team"])
    page.locator("#t-budget").fill("25")
    page.locator("#t-period").select_option("month")
    admin.submit(page.get_by_role("button", name="Create team"))
    row = page.get_by_role("row").filter(has_text=names["team"])
    assert row.locator("progress").count() == 1
    assert "0.000000 of 25.000000 per month" in row.inner_text()

    admin.open("/console/models")
    page.get_by_label("Name", exact=True).fill(names["model"])
    page.get_by_label("Remote model id").fill("remote-model")
    page.get_by_label("Remote host").fill(upstream_server.url + "/v1")
    page.get_by_label("Remote type").select_option("openai")
    page.get_by_label("Remote API key").fill(REMOTE_KEY)
    page.get_by_label("Price per 1M input tokens").fill("2")
    page.get_by_label("Price per 1M output tokens").fill("10")
    admin.submit(page.get_by_role("button", name="Create"))
    row = page.get_by_role("row").filter(has_text=names["model"])
    assert "2.0 / 10.0" in row.inner_text()
    admin.shoot("models")

    admin.open("/console/keys")
    page.get_by_label("Key name").first.fill(names["key"])
    page.locator("#k-team").select_option(names["team"])
    admin.submit(page.get_by_role("button", name="Create key"))
    shown = page.locator("#new-key").input_value()
    assert shown.startswith("orl-")
    page.get_by_role("button", name="Copy", exact=True).click()
    page.get_by_text("Copied").wait_for()
    state["key"] = page.evaluate("navigator.clipboard.readText()")
    assert state["key"] == shown
    admin.shoot("keys")


def use_the_copied_key_from_the_openai_sdk(relay, names, state, upstream_server):
    upstream_server.reset()
    client = openai.OpenAI(base_url=relay.url + "/v1/", api_key=state["key"], max_retries=0)
    answer = client.chat.completions.create(
        model=names["model"], messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "Hello from upstream"
    # The key typed into the model's form is the one the remote receives.
    headers = {k.lower(): v for k, v in upstream_server.last.headers.items()}
    assert headers["authorization"] == f"Bearer {REMOTE_KEY}"


def _cells(page, caption):
    table = page.locator("table").filter(has=page.locator("caption", has_text=caption))
    return table.inner_text()


def see_the_call_on_overview_and_usage(admin, names):
    # 11 tokens in at 2 and 7 out at 10 per million: 0.000092.
    def overview_has_it():
        admin.open("/console/overview")
        today = admin.page.get_by_role("row").filter(has_text="Today")
        return re.search(r"\b1\s+18\s+0\.000092\s+0\.0 %", today.inner_text()) is not None

    until(overview_has_it, "the call on the Overview page", deadline=60)
    assert names["team"] in _cells(admin.page, "Top teams")
    assert names["model"] in _cells(admin.page, "Top models")
    admin.shoot("overview")

    admin.open("/console/usage?by=model")
    totals = admin.page.get_by_role("row").filter(has_text=names["model"]).inner_text()
    assert re.search(r"\b1\s+11\s+7\s+0\s+0\.000092", totals), totals
    chart = admin.page.get_by_alt_text(re.compile("Cost per day by model"))
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
    svg = _svg_of(chart.get_attribute("src"))
    # The day's bar is drawn with its value (pygal's <desc class="value">).
    assert names["model"] in svg and ("0.000092" in svg or "9.2e-05" in svg)
    admin.shoot("usage")

    csv = admin.page.request.get(admin.relay.url + "/console/usage.csv?by=model")
    assert csv.status == 200
    assert f"{names['model']}:latest,1,11,7,0,0.000092,USD,false" in csv.text()


def _svg_of(uri):
    import base64

    assert uri.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(uri.split(",", 1)[1]).decode()


def revoke_the_key_and_see_its_next_call_refused(admin, relay, names, state):
    page = admin.page
    admin.open("/console/keys")
    admin.submit(page.get_by_role("button", name=f"Revoke {names['key']}"))
    assert "revoked" in page.get_by_role("row").filter(has_text=names["key"]).inner_text()
    client = openai.OpenAI(base_url=relay.url + "/v1/", api_key=state["key"], max_retries=0)

    def refused():
        try:
            client.models.list()
        except openai.AuthenticationError:
            return True
        return False

    until(refused, "the revoked key refused", deadline=30)


def sign_in_with_a_client_key_and_see_only_my_usage(browser, relay, shots, names, admin):
    name = unique("bob")
    admin.open("/console/keys")
    admin.page.get_by_label("Key name").first.fill(name)
    admin.page.locator("#k-team").select_option(names["team"])
    admin.submit(admin.page.get_by_role("button", name="Create key"))
    secret = admin.page.locator("#new-key").input_value()

    colleague = Visitor(browser, relay, shots)
    try:
        colleague.sign_in(secret)
        assert colleague.page.url.endswith("/console/mine")
        text = colleague.page.inner_text("main")
        assert names["model"] in text
        assert f"team {names['team']}: 25.000000 per month" in text
        nav = colleague.page.get_by_role("navigation").inner_text()
        assert "My usage" in nav and "Overview" not in nav and "Models" not in nav
        colleague.shoot("my-usage")
        for path in (
            "/console/overview",
            "/console/models",
            "/console/keys",
            "/console/usage",
            "/console/usage.csv",
            "/console/audit",
            "/console/requests",
        ):
            answer = colleague.page.request.get(relay.url + path)
            assert answer.status == 403, path
        # An action too: the form's token is right, the caller is not the admin.
        token = colleague.page.locator("input[name=csrf]").first.input_value()
        answer = colleague.page.request.post(
            relay.url + "/console/keys", form={"csrf": token, "name": unique("mallory")}
        )
        assert answer.status == 403
        listed = requests.get(relay.url + "/api/keys", headers=ADMIN, timeout=10).json()["keys"]
        assert not any(k["name"].startswith("mallory") for k in listed)
    finally:
        colleague.context.close()


def post_a_form_from_another_site_without_the_csrf_token(admin, relay):
    # Another port of the same host is the same site: the browser sends the
    # session cookie with it, so the CSRF token alone refuses the post.
    evil = "http://127.0.0.1:9/evil"
    victim = unique("evil")
    admin.page.route(
        evil,
        lambda route: route.fulfill(
            content_type="text/html",
            body=(
                f'<form id="f" method="post" action="{relay.url}/console/keys">'
                f'<input name="name" value="{victim}"></form>'
                '<script>document.getElementById("f").submit()</script>'
            ),
        ),
    )
    with admin.page.expect_response(lambda r: r.url.endswith("/console/keys")) as posted:
        admin.page.goto(evil)
    assert posted.value.status == 403
    assert "CSRF" in admin.page.inner_text("main")
    listed = requests.get(relay.url + "/api/keys", headers=ADMIN, timeout=10).json()["keys"]
    assert victim not in [k["name"] for k in listed]


def check_the_policy_of_every_answer_and_the_shots(admin, shots):
    for path in ("/console/audit", "/console/requests"):
        admin.open(path)
        admin.shoot(path.rsplit("/", 1)[1])
    console = [a for a in admin.answers if "/console/" in a.url]
    assert console
    for answer in console:
        policy = answer.headers.get("content-security-policy", "")
        assert all(part in policy for part in POLICY_PARTS), (answer.url, policy)
        assert "unsafe" not in policy
        assert answer.headers.get("x-content-type-options") == "nosniff"
    for name in ("sign-in", "overview", "models", "keys", "usage", "my-usage", "audit"):
        assert os.path.getsize(os.path.join(shots, f"{name}.png")) > 0
