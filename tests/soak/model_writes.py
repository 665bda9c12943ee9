"""The model writes of the soak (tests/soak/workload.py): creates, bursts of
concurrent replaces of one name, creates the relay must refuse (a bad field, a
remote_host its policy refuses, a fallback that does not exist), creates whose
client dies mid-body, deletes, and chats with the models meanwhile. Each
write goes into the Ledger with when it began and ended, for
tests/soak/checks.py to tell which writes could have been the last.
"""

import json
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests

from tests.soak.workload import TIMEOUT

CHURN = ["churn-0", "churn-1", "churn-2"]  # the names the model clients fight over


def _model_fields(upstream, name, rng):
    kind = rng.choice(["openai", "ollama"])
    fields = {
        "name": name,
        "from": f"remote-{rng.randrange(1000)}",
        "remote_type": kind,
        # An Ollama remote is the fake's root (/api/chat); an OpenAI one a path.
        "remote_host": upstream.url + ("/good/v1" if kind == "openai" else ""),
        "system": f"sys-{uuid.uuid4().hex[:8]}",
        "stream": False,
        "context_length": rng.choice([4096, 8192, 32768]),
    }
    if rng.random() < 0.3:
        fields["fallbacks"] = ["good"]
    return fields


def _refused_fields(upstream, name, rng):
    fields = _model_fields(upstream, name, rng)
    spoil = rng.choice(["type", "host", "fallback", "context"])
    if spoil == "type":
        fields["remote_type"] = "carrier-pigeon"
    elif spoil == "host":
        fields["remote_host"] = "http://10.9.8.7/v1"  # the policy allows 127.0.0.1 only
    elif spoil == "fallback":
        fields["fallbacks"] = ["no-such-model"]
    else:
        fields["context_length"] = "long"
    return fields


def interrupted_create(url, fields):
    """POST /api/create whose body stops short of its Content-Length: a
    client that died while sending. What did arrive is valid JSON."""
    payload = json.dumps(fields).encode()
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            f"POST /api/create HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(payload) + 64}\r\n\r\n".encode()
            + payload
        )
        time.sleep(0.05)
        sock.shutdown(socket.SHUT_WR)
        try:
            answer = sock.recv(64)
        except OSError:
            answer = b""
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None


def model_client(url, upstream, budget, ledger, rng):
    """One model write (or a burst of concurrent ones on a name), or a chat
    with a model that may be mid-replace or gone."""
    name, roll = rng.choice(CHURN), rng.random()
    if roll < 0.1:
        if budget.take("model_client"):
            answer = requests.post(
                url + "/v1/chat/completions",
                timeout=TIMEOUT,
                json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
            )
            ledger.add(
                answer.status_code,
                None
                if answer.status_code in (200, 404)
                else f"chat with {name}: {answer.status_code} {answer.text[:200]}",
            )
        return
    if roll < 0.3:
        ops = [("delete", None)]
    elif roll < 0.45:
        ops = [("refused", _refused_fields(upstream, name, rng))]
    elif roll < 0.55:
        ops = [("interrupted", _model_fields(upstream, name, rng))]
    else:  # a create, or a few replacing each other at once
        ops = [
            ("create", _model_fields(upstream, name, rng)) for _ in range(rng.choice([1, 1, 2, 3]))
        ]
    ops = [op for op in ops if budget.take("model_client")]
    threads = [
        threading.Thread(target=_model_op, args=(url, name, op, fields, ledger))
        for op, fields in ops
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _model_op(url, name, op, fields, ledger):
    started = time.monotonic()
    if op == "delete":
        status = requests.delete(
            url + "/api/delete", json={"model": name}, timeout=TIMEOUT
        ).status_code
        expected = (200, 404)
    elif op == "interrupted":
        status, expected = interrupted_create(url, fields), (400, None)
    else:
        answer = requests.post(url + "/api/create", json=fields, timeout=TIMEOUT)
        status, expected = answer.status_code, (200,) if op == "create" else (400,)
    with ledger.lock:
        ledger.model_ops.append((name, op, fields, status, started, time.monotonic()))
        ledger.counts[f"model {op} {status}"] += 1
    ledger.add(status, None if status in expected else f"model {op} {name}: {status}")
