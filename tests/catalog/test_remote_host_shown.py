"""Issue 18, holes 2, 10 and 14: what is shown of remote_host (userinfo is refused at
creation already), IPv6 forms
that embed a private IPv4, and the modes of the files the relay makes. Over
real sockets, to the relay under gunicorn."""

import ipaddress
import json
import os
import socket
import stat

import pytest
import requests

from app.remotes.policy import RemoteHostPolicy, RemoteHostRefused
from tests.support.access import json_lines

SECRET = "QUERY-SECRET-4f1d9a"


# --- hole 2 ------------------------------------------------------------------


def test_remote_host_is_shown_without_its_query_values_or_userinfo(relay_with, upstream):
    relay = relay_with()
    created = requests.post(
        relay.url + "/api/create",
        timeout=10,
        json={
            "name": "keyed-gateway",
            "from": "remote-model",
            "remote_type": "ollama",
            "remote_host": f"{upstream.url}/?key={SECRET}&region=eu",
            "stream": False,
        },
    )
    assert created.status_code == 200, created.text
    shown = f"{upstream.url}/?key=***&region=***"

    tags = requests.get(relay.url + "/api/tags", timeout=10).json()["models"]
    assert [m["remote_host"] for m in tags] == [shown]
    show = requests.post(relay.url + "/api/show", json={"model": "keyed-gateway"}, timeout=10)
    assert show.json()["remote_host"] == shown
    streamed = requests.post(
        relay.url + "/api/chat",
        json={"model": "keyed-gateway", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    assert lines and {line["remote_host"] for line in lines} == {shown}
    whole = requests.post(
        relay.url + "/api/generate",
        json={"model": "keyed-gateway", "prompt": "hi", "stream": False},
        timeout=10,
    )
    assert whole.json()["remote_host"] == shown
    # The remote itself was called with the key (it is the remote's).
    assert upstream.last.query["key"] == [SECRET]

    for text in (json.dumps(tags), show.text, streamed.text, whole.text, relay.log()):
        assert SECRET not in text
    audits = [line for line in json_lines(relay.log()) if line.get("audit")]
    assert [line["remote_host"] for line in audits] == [shown]


# --- hole 10 -----------------------------------------------------------------

EMBEDDING_PRIVATE = [
    ("64:ff9b::a00:1", "10.0.0.1"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("2002:a00:1::1", "10.0.0.1"),  # 6to4
    ("::a00:1", "10.0.0.1"),  # IPv4-compatible
    ("::7f00:1", "127.0.0.1"),
    ("::ffff:0:a00:1", "10.0.0.1"),  # IPv4-translated
]


def test_ipv6_forms_embedding_a_private_ipv4_are_refused(relay_with):
    relay = relay_with(RELAY_REMOTE_ALLOWLIST="")
    for address, inner in EMBEDDING_PRIVATE + [("fec0::1", None)]:
        response = requests.post(
            relay.url + "/api/create",
            timeout=10,
            json={
                "name": "m",
                "from": "gpt-4o",
                "remote_type": "openai",
                "remote_host": f"https://[{address}]/v1",
                "stream": False,
            },
        )
        assert response.status_code == 400, (address, response.text)
        error = response.json()["error"]
        assert "remote_host" in error and "RELAY_REMOTE_ALLOWLIST" in error
        if inner:
            assert inner in error, error
    assert requests.get(relay.url + "/api/tags", timeout=10).json()["models"] == []
    # Public addresses in the same forms pass.
    for address in ("64:ff9b::808:808", "2002:808:808::1"):
        response = requests.post(
            relay.url + "/api/create",
            timeout=10,
            json={
                "name": "public",
                "from": "gpt-4o",
                "remote_type": "openai",
                "remote_host": f"https://[{address}]/v1",
                "stream": False,
            },
        )
        assert response.status_code == 200, (address, response.text)


def _answers(addresses):
    def resolve(host, port, proto=0):
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, proto, "", (a, 0))
            for a in addresses
        ]

    return resolve


@pytest.mark.parametrize(
    "answer, refused",
    [
        (["127.0.0.1", "10.0.0.7"], "10.0.0.7"),
        (["127.0.0.1", "64:ff9b::a00:7"], "64:ff9b::a00:7"),
        (["93.184.215.14", "::ffff:0:a00:7"], "::ffff:0:a00:7"),
    ],
)
def test_a_mixed_dns_answer_is_refused_naming_the_refused_address(answer, refused):
    policy = RemoteHostPolicy(["127.0.0.1"], resolver=_answers(answer))
    with pytest.raises(RemoteHostRefused) as raised:
        policy.approve("https", "mixed.example")
    assert f" is {refused}" in str(raised.value)


# --- hole 14 -----------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_instance_folder_and_database_are_private_whatever_the_umask(
    relay_with, upstream, tmp_path, umask
):
    previous = os.umask(umask)  # the relay inherits it
    try:
        relay = relay_with(
            RELAY_INSTANCE_PATH=str(tmp_path / "fresh" / "instance"), RELAY_DATABASE_URL=""
        )
    finally:
        os.umask(previous)
    # A write, so that SQLite's -wal and -shm files exist too.
    created = requests.post(
        relay.url + "/api/create",
        timeout=10,
        json={
            "name": "m",
            "from": "x",
            "remote_type": "openai",
            "remote_host": upstream.url + "/v1",
            "stream": False,
        },
    )
    assert created.status_code == 200, created.text
    instance = tmp_path / "fresh" / "instance"
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    database = instance / "relay.sqlite3"
    files = [database] + [instance / f"relay.sqlite3{s}" for s in ("-wal", "-shm")]
    for path in files:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert database.exists()
