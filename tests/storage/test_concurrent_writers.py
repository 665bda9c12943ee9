"""Two workers writing one SQLite file at once (stored responses, key changes,
rate-limit leases, usage and budget flushes) wait their turn: none answers
"database is locked"."""

import concurrent.futures
import random

import requests

from tests.support.access import ADMIN, ADMIN_TOKEN
from tests.support.models import create_model


def test_two_workers_writing_at_once_never_find_the_database_locked(relay_with, upstream):
    relay = relay_with(workers=2, RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    create_model(
        relay, "remote", upstream.url + "/v1", headers=ADMIN, price={"input": 0.4, "output": 1.6}
    )
    keys = {}
    for i in range(4):
        name = f"writer-{i}"
        created = requests.post(
            relay.url + "/api/keys",
            # Low enough limits that requests lease rate-limit tokens and
            # write token usage; a budget, so they lease and settle spend.
            json={"name": name, "rpm": 6000, "tpm": 10_000_000, "budget": 1000, "period": "day"},
            headers=ADMIN,
            timeout=30,
        )
        assert created.status_code == 200, created.text
        keys[name] = created.json()["key"]

    def one(i):
        rng = random.Random(i)
        name = rng.choice(list(keys))
        with requests.Session() as session:  # a new connection: either worker
            kind = rng.choice(("stored", "stored", "chat", "key"))
            if kind == "key":
                answer = session.patch(
                    relay.url + "/api/keys",
                    json={"name": name, "rpm": rng.choice((6000, 6001))},
                    headers=ADMIN,
                    timeout=60,
                )
            else:
                path, body = (
                    ("/v1/responses", {"input": f"write {i}"})
                    if kind == "stored"
                    else ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
                )
                answer = session.post(
                    relay.url + path,
                    json={"model": "remote", **body},
                    headers={"Authorization": f"Bearer {keys[name]}"},
                    timeout=60,
                )
        return kind, answer.status_code, answer.text[:300]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(400)))
    failed = [r for r in results if r[1] != 200]
    assert not failed, failed[:5]
    assert "database is locked" not in relay.log()
