"""A reload (HUP) or stop (TERM) of gunicorn lets streams in flight finish.

A stream is held open by the fake upstream (gated after its first event);
the master is signalled; the test waits until the worker serving the stream
is provably draining (it alone of the old workers is left, and for TERM the
port no longer accepts connections); only then is the rest of the stream
released, and the client must receive all of it, ending with `data: [DONE]`.
"""

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from tests.support.fake_upstream import Reply, text_stream

SLOW = 3  # seconds the stream stays held once the worker is draining
PIECES = ("Still", " here", " after", " the", " signal")


def children(pid):
    """Pids of the live (not zombie) child processes of `pid`."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry))
    return found


def wait_until(predicate, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


def refuses_connections(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def relay(relay_with):
    # Generous, but short enough that a stream cut at the deadline fails this
    # test in a minute rather than after the default 300 s.
    return relay_with(workers=2, RELAY_GRACEFUL_TIMEOUT="60")


class HeldStream:
    """A streaming chat completion through the relay whose upstream pauses
    after its first event until `release()`."""

    def __init__(self, relay, upstream):
        created = requests.post(
            relay.url + "/api/create",
            timeout=30,
            json={
                "name": "slow",
                "from": "remote-model",
                "remote_type": "openai",
                "remote_host": upstream.url + "/v1",
                "stream": False,
            },
        )
        assert created.status_code == 200, created.text
        self.gate = threading.Event()
        upstream.reply(Reply(sse=text_stream(*PIECES), gate=self.gate))
        # `Connection: close`: gunicorn's gevent worker, once told to stop,
        # still waits (up to `keepalive` seconds) for the next request on a
        # connection the client keeps open, and requests keeps a streamed
        # response's socket open for as long as the Response object lives.
        self.session = requests.Session()
        self.response = self.session.post(
            relay.url + "/v1/chat/completions",
            stream=True,
            timeout=(10, 90),
            headers={"Connection": "close"},
            json={
                "model": "slow",
                "stream": True,
                "messages": [{"role": "user", "content": "take your time"}],
            },
        )
        assert self.response.status_code == 200, self.response.text
        self.lines = self.response.iter_lines(decode_unicode=True)
        self.first = next(line for line in self.lines if line.startswith("data: "))

    def release_and_read(self):
        # A slow stream: it goes on for a while after the worker began
        # draining (longer than the worker's 1 s drain tick plus the 1 s that
        # `server.stop(timeout=1)` grants), so a worker that cut streams at
        # once or a graceful_timeout of 0-1 s would break it.
        time.sleep(SLOW)
        self.gate.set()
        rest = [line for line in self.lines if line]
        self.response.close()
        self.session.close()
        return [self.first] + rest


@pytest.fixture
def held_stream(relay, upstream):
    streams = []

    def start():
        streams.append(HeldStream(relay, upstream))
        return streams[-1]

    yield start
    for stream in streams:  # never leave the fake upstream waiting on a gate
        stream.gate.set()


def assert_complete(events):
    assert events[-1] == "data: [DONE]", events
    chunks = [json.loads(line[len("data: ") :]) for line in events[:-1]]
    assert not any("error" in chunk for chunk in chunks), events
    text = "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )
    assert text == "".join(PIECES)
    assert any(
        choice.get("finish_reason") == "stop" for chunk in chunks for choice in chunk["choices"]
    )


def test_term_lets_the_stream_in_flight_finish_then_the_master_exits(relay, held_stream):
    master = relay.process.pid
    workers = children(master)
    assert len(workers) == 2
    stream = held_stream()

    relay.process.send_signal(signal.SIGTERM)
    # Draining: the listeners are closed everywhere, the idle worker has
    # gone, and the worker holding the stream is still alive.
    wait_until(lambda: refuses_connections(relay.port), "the relay stops accepting")
    wait_until(lambda: len(children(master)) == 1, "the idle worker exits")
    assert children(master) <= workers
    assert relay.process.poll() is None

    events = stream.release_and_read()
    assert_complete(events)
    assert relay.process.wait(timeout=120) == 0
    assert "Worker graceful timeout" not in relay.log()


def test_hup_lets_the_stream_in_flight_finish_and_new_requests_are_served(relay, held_stream):
    master = relay.process.pid
    old = children(master)
    assert len(old) == 2
    stream = held_stream()

    relay.process.send_signal(signal.SIGHUP)
    # Two new workers, and of the old ones only the one holding the stream.
    wait_until(lambda: len(children(master) - old) == 2, "two new workers are up")
    wait_until(lambda: len(children(master) & old) == 1, "the idle old worker exits")
    (draining,) = children(master) & old

    # New requests are served meanwhile, by the new workers.
    response = requests.post(
        relay.url + "/v1/chat/completions",
        timeout=30,
        json={"model": "slow", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200, response.text
    assert draining in children(master)

    events = stream.release_and_read()
    assert_complete(events)
    wait_until(lambda: draining not in children(master), "the old worker exits", 120)
    assert len(children(master)) == 2
    assert relay.process.poll() is None

    response = requests.post(
        relay.url + "/v1/chat/completions",
        timeout=30,
        json={"model": "slow", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    assert "Worker graceful timeout" not in relay.log()
