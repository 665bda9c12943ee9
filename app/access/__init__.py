"""Access: client keys, browser origins, rate limits, usage accounting, audit.

Everything a request needs is in this worker's memory (keys, leases of the
rate buckets, the usage book); the database is read when the keys changed
(checked at most every second) and written in batches (every second).
This package knows no remote and no converter: views call `permit_model`
and `admit`, and telemetry hands each finished request to `account`.
"""

import atexit
import weakref

from app.access.guard import (
    ANONYMOUS,
    Caller,
    Gate,
    add_cors_headers,
    admin_only,
    admit,
    budgets,
    caller,
    calls_a_model,
    check_request,
    permit_model,
)
from app.access.keys import KeyCache
from app.access.limits import RateLimiter
from app.access.usage import Flusher, UsageBook
from app.observability import metrics
from app.spend import money, prices
from app.spend.budgets import BudgetBook
from app.storage.db import database

__all__ = [
    "ANONYMOUS",
    "Caller",
    "admin_only",
    "admit",
    "budgets",
    "calls_a_model",
    "caller",
    "init_app",
    "permit_model",
]


def init_app(app):
    book = UsageBook()
    limiter = RateLimiter()
    budget_book = BudgetBook(
        app.config["RELAY_BUDGET_ALERT_SHARE"], app.config["RELAY_BUDGET_LEASE_SECONDS"]
    )
    keys = KeyCache(app.config["RELAY_INSTANCE_PATH"])

    # Weak: the flusher must not keep a replaced database (and its pool) alive.
    own_database = weakref.ref(database.obj)

    def flush(leaving=False):
        """Write what this worker counted; False once this app's database is no
        longer the process's (a test process builds many apps, and one's
        leftovers must not land in another's database)."""
        if database.obj is not own_database():
            return False
        book.flush()
        limiter.flush()
        budget_book.flush(leaving=leaving)
        # What other parts batch (the request log) is written by the same flusher.
        for other in app.extensions.get("relay.flushes", ()):
            other()
        return True

    flusher = Flusher(flush)
    app.extensions["relay.gate"] = Gate(app.config, keys, book)
    app.extensions["relay.limiter"] = limiter
    app.extensions["relay.budgets"] = budget_book
    app.extensions["relay.usage"] = book
    app.extensions["relay.flush_usage"] = flush
    app.extensions.setdefault("relay.finish_hooks", []).append(
        lambda exchange: _account(exchange, book, limiter, flusher, budget_book)
    )
    # What a worker counted in its last second is written when it exits.
    atexit.register(flush, leaving=True)
    app.before_request(check_request)
    app.after_request(add_cors_headers)


def _account(exchange, book, limiter, flusher, budget_book):
    """A request ended: add it to the usage book, to its key's tokens and to
    its budgets (settling what was reserved)."""
    # Every request with a key updates its last use, which the flusher writes.
    flusher.ensure_running()
    usage = exchange.usage or {}
    if exchange.price is not None:
        exchange.cost = prices.cost(exchange.price, usage)
    if exchange.reservation is not None:
        budget_book.settle(exchange.reservation, exchange.cost or 0)
    if not exchange.model or (exchange.attempts == 0 and (exchange.status or 0) < 500):
        # It used no remote: management, a refused key, an unknown model, bad
        # input, count_tokens. (A remote in cool-down is a 503: an error.)
        return
    tokens_in = usage.get("prompt_tokens") or 0
    tokens_out = usage.get("completion_tokens") or 0
    failed = exchange.failed or (exchange.status or 0) >= 400
    if exchange.cost:
        metrics.child(metrics.COST, exchange.key, exchange.team, exchange.model).inc(
            exchange.cost / money.PICO
        )
    book.record(
        exchange.key,
        exchange.team,
        exchange.model,
        tokens_in,
        tokens_out,
        failed,
        exchange.cost or 0,
        unpriced=exchange.price is None,
    )
    limiter.used_tokens(exchange.key, tokens_in + tokens_out, exchange.team)
