"""The soak's mixed workload, shared by ops/bench/soak and tests/soak/test_soak.py:
the faults of tests/support/faults.py on every surface, stored Responses chained with
previous_response_id (turns failing before headers or mid-stream, clients
leaving, responses deleted) and the model writes of tests/soak/model_writes.py, all
at once. A Ledger records what each client saw, for tests/soak/checks.py."""

import collections
import json
import random
import threading
import time
import uuid

import requests

from tests.support.fake_upstream import FakeUpstream, Reply, completion, default_reply, text_stream
from tests.support.faults import ANSWERED, SURFACES, _sse, check_answer, fault_names, faults

TIMEOUT = 30  # a request still unanswered by then hung
GOOD_SHARE = 0.5  # of fault-traffic requests that meet no fault
CHAIN_MODEL = "chain"
# The chain model has no fallback to serve "fallback"; 10 MB lines cost time only.
CHAIN_FAULTS = {
    s: [n for n in fault_names(s) if n != "fallback" and "10mb" not in n] for s in (False, True)
}


class Upstream(FakeUpstream):
    """The fake upstream, answering each request by the fault its model's
    remote_host names (/<fault>/v1), or its last user message ("... fault:<name>":
    a turn of a stored conversation, whose model cannot change), and by the
    request's X-Request-ID: the relay's retries and fallbacks of one client
    request get that fault's successive replies, whatever else is going on.
    A "turn:" or "verify:" message is answered with every user message of the
    conversation, so the client sees what history reached the remote."""

    def __init__(self):
        super().__init__()
        self.faults = {
            stream: {f.name: f for f in faults(stream, self.url)} for stream in (False, True)
        }
        self._calls = collections.Counter()

    def _next_reply(self, recorded):
        self.requests.clear()  # nobody reads them here: keep memory flat
        body = recorded.body if isinstance(recorded.body, dict) else {}
        users = [
            _text(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "user"
        ]
        last = users[-1] if users else ""
        name = last.split("fault:", 1)[1] if "fault:" in last else recorded.path.split("/")[1]
        fault = self.faults[bool(body.get("stream"))].get(name)
        with self._lock:
            attempt = self._calls[recorded.headers.get("x-request-id")]
            self._calls[recorded.headers.get("x-request-id")] += 1
        # A check's turn meets no fault, whichever model it continues.
        if fault is not None and attempt < len(fault.replies) and not last.startswith("verify:"):
            return fault.replies[attempt]
        if last.startswith(("turn:", "verify:")):
            text = echo(users)  # streamed in two pieces, as deltas add up
            return (
                Reply(sse=text_stream(*text.split(" ", 1)))
                if body.get("stream")
                else Reply(json=completion(text))
            )
        return default_reply(recorded)


def _text(content):  # a chat message's content: a string, or a list of parts
    parts = content if isinstance(content, list) else [{"text": content or ""}]
    return "".join(part.get("text", "") for part in parts if isinstance(part, dict))


def echo(user_messages):
    """What the upstream answers a conversation of these user messages."""
    return "re: " + "|".join(user_messages)


class Budget:
    """N requests, or until the deadline, whichever comes first; each kind of
    client has its share of N (model writes are fast, stalled streams slow:
    without shares the fast ones would take most of it)."""

    SHARES = {"fault_client": 0.5, "chain_client": 0.35, "model_client": 0.15}

    def __init__(self, requests_, seconds):
        self.left = {kind: max(1, int(requests_ * share)) for kind, share in self.SHARES.items()}
        self.deadline, self.lock = time.monotonic() + seconds, threading.Lock()

    def take(self, kind):
        with self.lock:
            if self.left[kind] <= 0 or time.monotonic() > self.deadline:
                return False
            self.left[kind] -= 1
            return True


class Ledger:
    """What the clients saw. `acked`: id -> (output text, user messages of its
    conversation, model) of each response whose response.completed (or 200 with
    status "completed") reached the client; `failed`: ids (or None, when the
    client never saw one) of turns that failed; `abandoned`: ids of streams
    the client left; `deleted`: acknowledged ids whose DELETE answered 200;
    `model_ops`: (name, op, fields, status, started, ended) of model writes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked, self.failed, self.abandoned, self.deleted = {}, [], [], set()
        self.model_ops, self.unexpected = [], []
        self.by_status, self.counts = collections.Counter(), collections.Counter()
        self.hung = 0

    def add(self, status=None, problem=None, **counts):
        with self.lock:
            if status is not None:
                self.by_status[status] += 1
            if problem:
                self.unexpected.append(problem[:300])
            self.counts.update(counts)


def fault_client(url, upstream, budget, ledger, rng):
    """One request of tests/support/faults.py's kind, checked as test_fault_injection does."""
    surface, stream = rng.choice(SURFACES), rng.random() < 0.5
    name = "good" if rng.random() < GOOD_SHARE else rng.choice(fault_names(stream))
    outcome = ANSWERED if name == "good" else upstream.faults[stream][name].outcome
    try:
        response = surface.ask(url, name, stream, TIMEOUT)
    except requests.Timeout:
        with ledger.lock:
            ledger.hung += 1
        return
    except requests.RequestException as exc:
        return ledger.add("no answer", f"{name} {surface} stream={stream}: {exc!r}")
    try:
        check_answer(surface, outcome, stream, response)
        if surface.name == "responses":  # stored (store defaults to true): into the ledger
            _record(ledger, name, stream, response)
    except (AssertionError, ValueError, KeyError, IndexError) as exc:
        ledger.add(response.status_code, f"{name} {surface} stream={stream}: {exc!r}")
    else:
        ledger.add(response.status_code)


def _record(ledger, model, stream, response):
    rid, text = None, None
    if response.status_code == 200 and not stream:
        rid, text = response.json()["id"], _output(response.json())
    elif response.status_code == 200:
        events = [event for _, event in _sse(response.text)]
        rid = events[0]["response"]["id"]
        if events[-1]["type"] == "response.completed":
            text = _output(events[-1]["response"])
    with ledger.lock:
        if text is not None:
            ledger.acked[rid] = (text, ["hi"], model)
        else:
            ledger.failed.append(rid)
        ledger.counts["responses " + ("completed" if text is not None else "failed")] += 1


def ask_turn(url, model, text, previous, stream, store=True, leave_after=None):
    """(outcome, id or None, output text, status): outcome is "completed",
    "failed" (an error status, response.failed, or the stream cut by the
    relay) or "abandoned" (this client left after the delta `leave_after`)."""
    body = {"model": model, "input": text, "stream": stream, "store": store}
    if previous:
        body["previous_response_id"] = previous
    response_id, pieces = None, []
    try:
        with requests.post(
            url + "/v1/responses", json=body, timeout=TIMEOUT, stream=stream
        ) as response:
            if response.status_code != 200 or not stream:
                data = response.json()
                if response.status_code == 200 and data.get("status") == "completed":
                    return "completed", data["id"], _output(data), 200
                return "failed", None, None, response.status_code
            for line in response.iter_lines():
                if not line.startswith(b"data: "):
                    continue
                event = json.loads(line[len(b"data: ") :])
                kind = event["type"]
                if kind == "response.created":
                    response_id = event["response"]["id"]
                elif kind == "response.output_text.delta":
                    pieces.append(event["delta"])
                    if leave_after is not None and event["delta"] == leave_after:
                        return "abandoned", response_id, None, 200
                elif kind == "response.completed":
                    assert event["response"]["id"] == response_id
                    assert _output(event["response"]) == "".join(pieces)
                    return "completed", response_id, "".join(pieces), 200
                elif kind in ("response.failed", "response.incomplete"):
                    return "failed", response_id, None, 200
    except requests.RequestException:
        pass  # the relay cut the stream: failed, whatever it had said
    return "failed", response_id, None, 200


def _output(response):
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def chain_client(url, upstream, budget, ledger, rng):
    """One stored conversation of 1-6 turns; a failed turn is followed by one
    continuing from the last acknowledged response, as a client would retry.
    Now and then an earlier response is deleted (which must break no later
    one), or the last one while the next turn continues it (which then either
    fails with 404 or is stored whole, with the conversation before it)."""
    history, tip, acked_here = [], None, []
    for _ in range(rng.randint(1, 6)):
        if not budget.take("chain_client"):
            return
        stream = rng.random() < 0.6
        text = f"turn:{uuid.uuid4().hex[:8]}"
        leave = None
        if stream and rng.random() < 0.05:
            # A client leaving is checkable while the remote stalls: the relay
            # must close that stream and store nothing.
            text += " fault:stall-later"
            leave = "Hello"
        elif rng.random() < 0.3:
            text += " fault:" + rng.choice(CHAIN_FAULTS[stream])
        racing = None
        if tip and rng.random() < 0.1 and budget.take("chain_client"):
            racing = threading.Thread(target=_delete, args=(url, tip, ledger))
            racing.start()
            acked_here.remove(tip)  # deleted once only
        try:
            outcome, rid, output, status = ask_turn(
                url, CHAIN_MODEL, text, tip, stream, leave_after=leave
            )
        except (AssertionError, ValueError, KeyError) as exc:
            ledger.add("bad stream", f"turn {text} after {tip}: {exc!r}")
            return
        finally:
            if racing:
                racing.join()
        ledger.add(status, f"500 for turn {text} after {tip}" if status == 500 else None)
        with ledger.lock:
            if outcome == "completed":
                history = history + [text]
                ledger.acked[rid] = (output, history, CHAIN_MODEL)
                acked_here.append(rid)
            elif outcome == "abandoned":
                ledger.abandoned.append(rid)
            else:
                ledger.failed.append(rid)
            ledger.counts[f"responses {outcome}"] += 1
        if outcome == "completed":
            tip = rid
        elif racing:
            return  # continuing a deleted response: the conversation is over
        if len(acked_here) > 1 and rng.random() < 0.15 and budget.take("chain_client"):
            _delete(url, acked_here.pop(rng.randrange(len(acked_here) - 1)), ledger)


def _delete(url, rid, ledger):
    deleted = requests.delete(f"{url}/v1/responses/{rid}", timeout=TIMEOUT)
    ledger.add(
        deleted.status_code,
        None
        if deleted.status_code == 200
        else f"DELETE {rid} (acknowledged): {deleted.status_code}",
    )
    with ledger.lock:
        ledger.deleted.add(rid)
        ledger.counts["responses deleted"] += 1


def create_models(url, upstream):
    """The models of the fault traffic (one per fault) and of the chains."""
    names = set(fault_names(False)) | set(fault_names(True))
    models = [
        {"name": "good", "remote_host": f"{upstream.url}/good/v1"},
        {"name": CHAIN_MODEL, "remote_host": f"{upstream.url}/good/v1"},
        {"name": "backup", "remote_host": f"{upstream.url}/fallback/backup/v1"},
    ]
    models += [
        {
            "name": name,
            "remote_host": f"{upstream.url}/{name}/v1",
            **({"fallbacks": ["backup"]} if name == "fallback" else {}),
        }
        for name in sorted(names)
    ]
    for fields in models:
        requests.post(
            url + "/api/create",
            timeout=TIMEOUT,
            json={"from": "remote-model", "remote_type": "openai", "stream": False, **fields},
        ).raise_for_status()


def run(url, upstream, requests_, seconds, clients=8, seed=0):
    """The mixed workload from `clients` threads (half on the fault traffic,
    the rest on chains and model writes) until the budget is spent."""
    budget, ledger = Budget(requests_, seconds), Ledger()
    from tests.soak.model_writes import model_client  # which imports this module

    kinds = [fault_client, chain_client, fault_client, model_client]

    def loop(index):
        rng = random.Random(seed * 1000 + index)
        kind = kinds[index % len(kinds)]
        while time.monotonic() < budget.deadline and budget.left[kind.__name__] > 0:
            # Others take each request they make (a chain is several).
            if kind is fault_client and not budget.take("fault_client"):
                return
            try:
                kind(url, upstream, budget, ledger, rng)
            except requests.RequestException as exc:
                ledger.add("no answer", f"{kind.__name__}: {exc!r}")

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ledger
