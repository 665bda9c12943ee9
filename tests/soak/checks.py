"""After tests/soak/workload.py: does the relay (and its database) hold
exactly what its clients were told? Shared by ops/bench/soak and tests/soak/test_soak.py.

- Every acknowledged response that was not deleted is readable with the
  output the client saw, and a turn continuing from it gets its whole
  conversation to the remote; every failed, abandoned or deleted one is 404.
- The database's stored-response rows are all acknowledged ones: a row for
  anything else is a response stored though its client was told it failed.
- Every model /api/tags lists is whole in /api/show, and each fought-over
  name ends as one of the last acknowledged writes to it left it.
"""

import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.soak.model_writes import CHURN
from tests.soak.workload import TIMEOUT, _output, ask_turn, echo

MODEL_CACHE_SECONDS = 1.5  # app.catalog.registry.REFRESH_SECONDS, and some


def verify(url, ledger, database_url, clients=8):
    """(summary lines, problems)."""
    problems = []
    live = {rid: seen for rid, seen in ledger.acked.items() if rid not in ledger.deleted}
    gone = (
        [(rid, "failed") for rid in ledger.failed if rid]
        + [(rid, "abandoned") for rid in ledger.abandoned if rid]
        + [(rid, "deleted") for rid in ledger.deleted]
    )
    with ThreadPoolExecutor(clients) as pool:
        problems += [p for p in pool.map(lambda item: _readable(url, *item), live.items()) if p]
        problems += [p for p in pool.map(lambda item: _gone(url, *item), gone) if p]
    rows = stored_ids(database_url)
    unacked = sorted(rows - set(ledger.acked))
    for rid in unacked:
        why = (
            "its client saw it fail"
            if rid in ledger.failed
            else "its client left"
            if rid in ledger.abandoned
            else "its client never saw it"
        )
        problems.append(f"{rid} is stored though {why}")
    time.sleep(MODEL_CACHE_SECONDS)  # every worker's model cache has caught up
    model_lines, model_problems = _models(url, ledger)
    problems += model_problems
    counts = ledger.counts
    summary = [
        f"responses: {len(ledger.acked)} acknowledged ({len(ledger.deleted)} deleted since), "
        f"{len(ledger.failed)} failed ({sum(1 for r in ledger.failed if r)} with an id seen), "
        f"{len(ledger.abandoned)} left by the client; {len(rows)} rows in the database",
        f"checked: {len(live)} readable and continued, {len(gone)} gone",
        "model writes: "
        + ", ".join(f"{k[6:]} x{v}" for k, v in sorted(counts.items()) if k.startswith("model ")),
        *model_lines,
    ]
    return summary, problems


def _readable(url, rid, seen):
    text, history, model = seen
    answer = requests.get(f"{url}/v1/responses/{rid}", timeout=TIMEOUT)
    if answer.status_code != 200:
        return f"{rid} (acknowledged) reads {answer.status_code}: {answer.text[:200]}"
    body = answer.json()
    if body.get("status") != "completed" or _output(body) != text:
        return f"{rid} reads {body.get('status')} {_output(body)!r}, the client saw {text!r}"
    # One more turn (not stored: the database keeps what the run left).
    turn = f"verify:{uuid.uuid4().hex[:8]}"
    outcome, _, output, status = ask_turn(url, model, turn, rid, stream=False, store=False)
    if output != echo(history + [turn]):
        return (
            f"continuing {rid}: {outcome} {status}, the remote got {output!r}, "
            f"not the conversation {history}"
        )
    return None


def _gone(url, rid, why):
    status = requests.get(f"{url}/v1/responses/{rid}", timeout=TIMEOUT).status_code
    return None if status == 404 else f"{rid} ({why}) reads {status}, not 404"


def stored_ids(database_url):
    """The ids of every stored-response row, hidden ones included, read from
    the database itself (the relay's API would hide a deleted one's row)."""
    from app.storage.models import StoredResponse

    sql = f"SELECT id FROM {StoredResponse._meta.table_name}"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url[len("sqlite:///") :]) as conn:
            return {row[0] for row in conn.execute(sql)}
    import psycopg

    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute(sql)}


def _matches(shown, op, fields):
    if op != "create":
        return shown is None
    if shown is None:
        return False
    fallbacks = [f"{name}:latest" for name in fields.get("fallbacks") or []] or None
    return (
        shown["remote_host"] == fields["remote_host"].rstrip("/")
        and shown["remote_type"] == fields["remote_type"]
        and shown["remote_model"] == fields["from"]
        and shown.get("system") == fields["system"]
        and shown.get("fallbacks") == fallbacks
        and shown["model_info"]["remote.context_length"] == fields["context_length"]
    )


def _show(url, name):
    answer = requests.post(url + "/api/show", json={"model": name}, timeout=TIMEOUT)
    return answer.json() if answer.status_code == 200 else None


def _models(url, ledger):
    lines, problems = [], []
    listed = [m["name"] for m in requests.get(url + "/api/tags", timeout=TIMEOUT).json()["models"]]
    for name in listed:
        shown = _show(url, name)
        missing = [
            key
            for key in (
                "remote_host",
                "remote_type",
                "remote_model",
                "details",
                "modified_at",
                "model_info",
            )
            if not (shown or {}).get(key)
        ]
        if missing:
            problems.append(f"{name} is listed but /api/show lacks {missing}: {shown}")
    for name in CHURN:
        ops = [op for op in ledger.model_ops if op[0] == name]
        # What each write the relay acknowledged leaves: a 404 delete too.
        acked = [
            op
            for op in ops
            if (op[1], op[3]) in (("create", 200), ("delete", 200), ("delete", 404))
        ]
        # The last ones: those no other acknowledged write began after.
        last = [op for op in acked if not any(other[4] > op[5] for other in acked)]
        shown = _show(url, name)
        if (shown is not None) != (f"{name}:latest" in listed):
            problems.append(f"{name}: /api/show and /api/tags disagree")
        if not last:
            if shown is not None:
                problems.append(f"{name} exists, though no create of it was acknowledged")
        elif not any(_matches(shown, op, fields) for _, op, fields, *_ in last):
            # The writes the state could have come from, to tell a lost one apart
            # from one the relay refused (or never finished reading) yet applied.
            unacked = [(write[1], write[3], write[2]) for write in ops if write not in acked]
            problems.append(
                f"{name} is {_describe(shown)}; the last acknowledged writes "
                f"were {[(op, status, fields) for _, op, fields, status, *_ in last]}"
                f"; unacknowledged ones {unacked}"
            )
        lines.append(
            f"{name}: {len(ops)} writes, ends "
            + ("absent" if shown is None else f"as {shown.get('system')}")
        )
    return lines, problems


def _describe(shown):
    if shown is None:
        return "absent"
    return {
        key: shown.get(key)
        for key in ("remote_host", "remote_type", "remote_model", "system", "fallbacks")
    }
