"""The fast paths (app/fast/): each runs only on the exact versions it was
tested with and with RELAY_FAST_PATHS on; otherwise the relay takes the
public path and answers the same. Private APIs of other libraries appear in
no module outside app/fast/.
"""

import http.client
import json
import pathlib
import re

import pytest
import requests

from app import config, fast
from app.fast import kept_connection, log_line, pool_liveness, response_head, schema_subsets
from app.remotes.http.client import RemoteHTTP
from app.remotes.policy import RemoteHostPolicy
from app.surfaces.openai.schemas import ChatCompletionSchema

APP = pathlib.Path(__file__).resolve().parents[2] / "app"
MODULES = [kept_connection, log_line, pool_liveness, response_head, schema_subsets]


def test_the_gate_wants_exactly_the_tested_versions():
    needs = {"python": "3.11", "urllib3": "2.8.0"}
    assert fast.tested(needs, {"python": "3.11", "urllib3": "2.8.0", "flask": "9"})
    assert not fast.tested(needs, {"python": "3.12", "urllib3": "2.8.0"})
    assert not fast.tested(needs, {"python": "3.11", "urllib3": "2.8.1"})
    assert not fast.tested(needs, {"python": "3.11", "urllib3": "2.9.0"})
    assert not fast.tested(needs, {"python": "3.11"})  # not installed


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_each_fast_path_refuses_any_other_version(module):
    tested = dict(module.TESTED_WITH)
    assert "python" in tested
    assert fast.tested(tested, tested)
    for name, version in tested.items():
        other = dict(tested, **{name: version + ".1"})
        assert not fast.tested(tested, other), (name, other)
    # On the versions this checkout pins (requirements.txt, CI's Python), it runs.
    assert module.SUPPORTED == fast.tested(tested)


def test_the_installed_versions_are_read_from_the_environment():
    found = fast.installed()
    assert re.fullmatch(r"3\.\d+", found["python"])
    assert found["urllib3"] == __import__("urllib3").__version__
    assert found["marshmallow"] == __import__("importlib").metadata.version("marshmallow")


def _http(**settings):
    return RemoteHTTP(
        config.load(dict(settings, RELAY_REMOTE_ALLOWLIST="127.0.0.1"), environ={}),
        RemoteHostPolicy(["127.0.0.1"]),
    )


def test_the_setting_turns_off_the_fast_paths_of_the_remote_client(upstream):
    url = upstream.url + "/v1/chat/completions"
    on, off = _http(RELAY_FAST_PATHS="1"), _http(RELAY_FAST_PATHS="0")
    for client in (on, off):
        for _ in range(2):  # a new connection, then the kept one
            answer = client.request("POST", url, json={"model": "m"})
            assert client.json(answer)["choices"][0]["message"]["content"] == "Hello from upstream"
    on_route, off_route = on._route(url), off._route(url)
    assert on_route.kept == kept_connection.SUPPORTED
    assert off_route.kept is False
    on_class, off_class = on_route.pool.ConnectionCls, off_route.pool.ConnectionCls
    assert off_class.response_class is http.client.HTTPResponse
    assert issubclass(on_class, response_head.LeanHeads) == response_head.SUPPORTED
    assert not issubclass(off_class, (response_head.LeanHeads, pool_liveness.Liveness))
    assert issubclass(on_class, pool_liveness.Liveness) == pool_liveness.SUPPORTED


def test_the_setting_turns_off_the_schema_and_log_line_fast_paths(make_app):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    schema = ChatCompletionSchema()
    try:
        make_app(RELAY_FAST_PATHS="0")
        assert not fast.wanted()
        assert not schema_subsets.active() and not log_line.active()
        assert schema_subsets.for_body(schema, body) is schema
        make_app(RELAY_FAST_PATHS="1")
        assert fast.wanted()
        assert schema_subsets.active() == schema_subsets.SUPPORTED
        assert log_line.active() == log_line.SUPPORTED
        assert (schema_subsets.for_body(schema, body) is not schema) == schema_subsets.SUPPORTED
    finally:
        fast.configure(config.load()["RELAY_FAST_PATHS"])


def test_the_setting_must_be_a_flag():
    with pytest.raises(config.ConfigError, match="RELAY_FAST_PATHS"):
        config.load({"RELAY_FAST_PATHS": "sometimes"}, environ={})


@pytest.mark.parametrize("setting", ["1", "0"])
def test_a_relay_answers_the_same_with_the_fast_paths_on_and_off(relay_with, upstream, setting):
    relay = relay_with(workers=1, RELAY_FAST_PATHS=setting)
    created = requests.post(
        relay.url + "/api/create",
        timeout=30,
        json={
            "name": "m",
            "from": "remote-model",
            "remote_type": "openai",
            "stream": False,
            "remote_host": upstream.url + "/v1",
        },
    )
    assert created.status_code == 200, created.text
    for stream in (False, False, True):
        response = requests.post(
            relay.url + "/v1/chat/completions",
            timeout=30,
            json={"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200, response.text
        if stream:
            chunks = [
                json.loads(line[len("data: ") :])
                for line in response.text.splitlines()
                if line.startswith("data: {")
            ]
            text = "".join(
                c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
            )
        else:
            text = response.json()["choices"][0]["message"]["content"]
        assert text == "Hello from upstream"
    bad = requests.post(relay.url + "/v1/chat/completions", timeout=30, json={"model": 5})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "model"


# Private names of urllib3, http.client, marshmallow and Flask the fast paths use.
PRIVATE = (
    "_get_conn",
    "_put_conn",
    "_new_conn",
    "_normalize_header_values",
    "_read_status",
    "_check_close",
    "_hooks",
    "_declared_fields",
    "_prepare_response_obj",
)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in APP.rglob("*.py") if "fast" not in p.relative_to(APP).parts),
    ids=lambda p: str(p.relative_to(APP)),
)
def test_private_apis_of_other_libraries_are_used_only_in_app_fast(path):
    text = path.read_text()
    assert not [name for name in PRIVATE if re.search(rf"\b{name}\b", text)]
