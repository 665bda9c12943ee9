"""What maximal request bodies cost a relay worker: its RSS before, at the
peak, and after, for 1, 4 and 16 bodies of RELAY_MAX_BODY_BYTES sent at once.

    .venv/bin/python ops/bench/large_bodies.py [--bytes N] [--shape S ...]

One gunicorn worker, keys on, the fast upstream behind it. Shapes:
- `many-messages`: a Chat Completions request of as many tiny messages as
  fit (the most Python objects a body of that size parses into);
- `one-string`: one message whose content is one long string;
- `over-rpm`: the first shape from a key already over its rpm, which must
  be refused before its body is read.
The peak is the worker's VmHWM (reset before each round through
/proc/PID/clear_refs), or the highest VmRSS polled where that is refused.
"""

import argparse
import concurrent.futures
import http.client
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def many_messages(size):
    message = b'{"role":"user","content":"x"},'
    head, tail = b'{"model":"bench","messages":[', b'{"role":"user","content":"x"}]}'
    count = (size - len(head) - len(tail)) // len(message)
    body = head + message * count + tail
    return body + b" " * (size - len(body))


def one_string(size):
    head, tail = b'{"model":"bench","messages":[{"role":"user","content":"', b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


SHAPES = {"many-messages": many_messages, "one-string": one_string, "over-rpm": many_messages}


def _status(pid):
    return Path(f"/proc/{pid}/status").read_text().splitlines()


def _field(pid, name):
    for line in _status(pid):
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """The worker's highest RSS over a round."""

    def __init__(self, pid):
        self.pid, self.polled, self._stop = pid, 0.0, threading.Event()
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.hwm = True
        except OSError:
            self.hwm = False
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.wait(0.005):
            self.polled = max(self.polled, harness.rss_mb(self.pid))

    def result(self):
        self._stop.set()
        self._thread.join()
        return max(self.polled, _field(self.pid, "VmHWM") if self.hwm else 0.0)


def send(url, token, body):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        answer.read()
        return answer.status
    except OSError as exc:  # the relay may answer and close before all was sent
        return type(exc).__name__
    finally:
        connection.close()


def spent_key(relay, admin):
    """A key with an rpm of 1, its one request spent."""
    status, body = harness.http(
        "POST", relay.url + "/api/keys", {"name": "spent", "rpm": 1}, token=admin
    )
    key = json.loads(body)["key"]
    harness.http(
        "POST",
        relay.url + "/v1/chat/completions",
        {"model": "bench", "messages": [{"role": "user", "content": "hi"}]},
        token=key,
    )
    return key


def worker_pid(relay):
    children = [pid for pid in harness.descendants(relay.pid) if pid != relay.pid]
    # taskset execs gunicorn in place; the master's one child is the worker.
    return max(children)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bytes", type=int, default=None, help="default: the relay's RELAY_MAX_BODY_BYTES"
    )
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES))
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--root", default=str(harness.ROOT), help="the checkout to run")
    args = parser.parse_args()
    shapes = args.shape or ["over-rpm", "one-string", "many-messages"]
    rounds = args.concurrency or [1, 4, 16]
    upstream = harness.start_upstream()
    relay = harness.start_relay(upstream.url, root=Path(args.root))
    try:
        admin = relay_admin(relay)
        size = args.bytes or limit_of(relay)
        print(f"maximal body: {size} bytes; one worker (pid {worker_pid(relay)})")
        print(
            f"{'shape':<14} {'at once':>7} {'before MB':>10} {'peak MB':>8} {'after MB':>9}"
            "  statuses"
        )
        for shape in shapes:
            body = SHAPES[shape](size)
            token = spent_key(relay, admin) if shape == "over-rpm" else relay.key
            for count in rounds:
                pid = worker_pid(relay)
                harness.settle([pid], deadline=10)
                before = harness.rss_mb(pid)
                peak = Peak(pid)
                with concurrent.futures.ThreadPoolExecutor(count) as pool:
                    statuses = list(pool.map(lambda _: send(relay.url, token, body), range(count)))
                top = peak.result()
                time.sleep(1)  # what the worker gives back once the round is over
                after = harness.rss_mb(pid)
                summary = ",".join(
                    f"{s}x{statuses.count(s)}" for s in sorted(set(statuses), key=str)
                )
                print(
                    f"{shape:<14} {count:>7} {before:>10.0f} {top:>8.0f} {after:>9.0f}  {summary}"
                )
    finally:
        harness.stop_all()


def relay_admin(relay):
    env = Path(f"/proc/{relay.pid}/environ").read_bytes().split(b"\0")
    for item in env:
        if item.startswith(b"RELAY_ADMIN_TOKEN="):
            return item.split(b"=", 1)[1].decode()
    raise RuntimeError("the relay has no admin token")


def limit_of(relay):
    env = Path(f"/proc/{relay.pid}/environ").read_bytes().split(b"\0")
    for item in env:
        if item.startswith(b"RELAY_MAX_BODY_BYTES="):
            return int(item.split(b"=", 1)[1])
    sys.path.insert(0, str(harness.ROOT))
    from app import config

    return config.SETTINGS["RELAY_MAX_BODY_BYTES"][0](config.SETTINGS["RELAY_MAX_BODY_BYTES"][1])


if __name__ == "__main__":
    main()
