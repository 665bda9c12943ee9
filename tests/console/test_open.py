"""The console of an open relay (no RELAY_ADMIN_TOKEN): open on loopback
without a sign-in, under the Host and Origin rules of the rest, and its
forms still need their CSRF token."""

import re

import pytest
import requests

from tests.support.access import start_relay, unique

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    server = start_relay(tmp_path_factory.mktemp("open-console"))
    yield server
    server.stop()


def test_the_console_is_open_on_loopback(relay):
    browser = requests.Session()
    answer = browser.get(relay.url + "/console/", timeout=10)
    assert answer.status_code == 200 and answer.url.endswith("/console/overview")
    assert "Sign out" not in answer.text
    assert browser.get(relay.url + "/console/sign-in", timeout=10).url.endswith("/console/overview")
    form = browser.get(relay.url + "/console/keys", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    made = browser.post(
        relay.url + "/console/teams", data={"csrf": csrf, "name": unique("open")}, timeout=10
    )
    assert made.status_code == 200
    refused = browser.post(relay.url + "/console/teams", data={"name": unique("x")}, timeout=10)
    assert refused.status_code == 403 and "CSRF" in refused.text


def test_a_foreign_host_or_origin_is_refused(relay):
    # DNS rebinding: a hostile name resolved to 127.0.0.1.
    answer = requests.get(
        relay.url + "/console/overview", headers={"Host": "evil.example"}, timeout=10
    )
    assert answer.status_code == 403
    answer = requests.get(
        relay.url + "/console/overview", headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert answer.status_code == 403
