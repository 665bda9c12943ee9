"""Budgets in money that no number of concurrent requests can overspend,
across workers and hosts: reserve before the call, settle after.

Before a request calls its remote, its worst-case cost is reserved against
every budget it falls under (its key's and its team's); when it ends, the
reservation is settled to what it cost and the rest is released. A request
whose reservation does not fit is refused (429 insufficient_quota).

Reservations come from memory: a worker leases a slice of what is left of a
budget's window (app/spend/ledger.py: spent + held <= budget, in one locked
statement) and reserves from the slice. A slice is an eighth of what is left
(LEASE_SHARE), so slices shrink as a budget runs down; once that is less than
EXACT_BELOW reservations, each request leases exactly its own reservation,
so that nothing is stranded in other workers' slices at the end. Settled
spend is written every second with the usage rows; a slice unused for
IDLE_RETURN seconds, or of a past window, goes back; a worker that dies
stops renewing its leases, and they are released RELAY_BUDGET_LEASE_SECONDS
(LEASE_TTL) later.
"""

import dataclasses
import datetime
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from app.access import audit
from app.errors import RelayError
from app.observability import metrics
from app.spend import ledger, money

log = logging.getLogger(__name__)

PERIODS = ("day", "month", "total")
LEASE_SHARE = 8
EXACT_BELOW = 2
LEASE_TTL = 30.0
IDLE_RETURN = 2.0


@dataclass(frozen=True)
class Budget:
    scope: str  # "key" or "team"
    name: str
    amount: int  # pico-units per period
    period: str  # day, month or total


def window(period, now=None):
    """(the window's id, when it ends or None) for `period` at `now` (UTC)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.date().isoformat(), start + datetime.timedelta(days=1)
    if period == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (start + datetime.timedelta(days=32)).replace(day=1)
        return start.strftime("%Y-%m"), following
    return "total", None


class OverBudget(RelayError):
    """A request whose worst-case cost does not fit in a budget it falls under."""

    status = 429
    type = "insufficient_quota"

    def __init__(self, budget, ends):
        when = f"; it resets at {ends:%Y-%m-%dT%H:%M:%SZ}" if ends else ""
        headers = {}
        if ends:
            wait = (ends - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            headers["Retry-After"] = str(max(1, int(wait) + 1))
        super().__init__(
            f"the {budget.period} budget of {budget.scope} '{budget.name}' "
            f"({money.exact(budget.amount)}) does not cover this request{when}",
            code="insufficient_quota",
            headers=headers,
        )


@dataclass
class _Slice:
    """This worker's share of one budget window, in pico-units."""

    budget: Budget
    window: str
    available: int = 0  # leased, not reserved
    outstanding: int = 0  # reserved by requests in flight
    unwritten: int = 0  # settled spend not yet written
    overrun: int = 0  # of `unwritten`, spent beyond reservations (not in the lease)
    used_at: float = 0.0
    # Held while one request leases for this slice: those arriving meanwhile
    # wait and reserve from what it got. Each had leased on its own before:
    # a burst of a thousand took an eighth of what was left a thousand
    # times, the last ones found nothing left and were refused although the
    # slice held plenty (and every lease held one of the pool's connections).
    leasing: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, compare=False, repr=False
    )


@dataclass
class Reservation:
    amount: int
    slices: list = dataclasses.field(default_factory=list)


class BudgetBook:
    """One per worker."""

    def __init__(self, alert_share=0.8, lease_seconds=LEASE_TTL):
        self._ttl = lease_seconds
        self.holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._slices = {}
        self._alert_share = alert_share
        self._lock = threading.Lock()

    def _slice(self, budget, window_id):
        key = (budget.scope, budget.name, window_id)
        current = self._slices.get(key)
        if current is None or current.budget != budget:
            # A budget changed keeps what this worker holds of its window.
            current = self._slices[key] = _Slice(budget, window_id, *_kept(current))
        return current

    def reserve(self, budgets, amount, now=None):
        """Reserve `amount` against every budget; OverBudget names the first
        that cannot take it (and nothing stays reserved)."""
        now = time.time() if now is None else now
        taken = Reservation(amount)
        for budget in budgets:
            window_id, ends = window(budget.period)
            chunk = self._slice(budget, window_id)
            if chunk.available < amount:
                with chunk.leasing:
                    if chunk.available < amount and not self._lease(chunk, amount, now):
                        self.release(taken)
                        raise OverBudget(budget, ends)
            chunk.available -= amount
            chunk.outstanding += amount
            chunk.used_at = now
            taken.slices.append(chunk)
        return taken

    def _lease(self, chunk, amount, now):
        need = amount - chunk.available

        def want(free):
            share = free // LEASE_SHARE
            return share if share >= EXACT_BELOW * amount else need

        granted = ledger.lease(self.holder, chunk.budget, chunk.window, need, want, self._ttl, now)
        chunk.available += granted
        return granted > 0

    def release(self, reservation):
        """Give a reservation back whole (the request never reached a remote)."""
        self.settle(reservation, 0)

    def settle(self, reservation, cost):
        """The request ended having cost `cost`: the rest of its reservation is free."""
        for chunk in reservation.slices:
            chunk.outstanding -= reservation.amount
            chunk.unwritten += cost
            chunk.available += reservation.amount - cost
            if chunk.available < 0:
                chunk.overrun, chunk.available = chunk.overrun - chunk.available, 0
        reservation.slices = []

    def flush(self, now=None, leaving=False):
        """Write settled spend, return idle slices and those of past windows
        (all unreserved ones when `leaving`), renew this worker's leases, and
        give each soft alert once."""
        now = time.time() if now is None else now
        with self._lock:
            for key, chunk in list(self._slices.items()):
                current = window(chunk.budget.period)[0] == chunk.window
                idle = leaving or now - chunk.used_at >= IDLE_RETURN or not current
                returned = chunk.available if idle and chunk.outstanding == 0 else 0
                spent, overrun = chunk.unwritten, chunk.overrun
                if spent or returned:
                    chunk.unwritten -= spent
                    chunk.overrun -= overrun
                    chunk.available -= returned
                    total, gone = ledger.settle(
                        self.holder, *key, spent=spent, released=spent - overrun + returned
                    )
                    if gone:
                        # Charged whole when it expired: nothing of it is left to reserve.
                        chunk.available = 0
                    self._alert(chunk, total)
                if not current and not (chunk.outstanding or chunk.available or chunk.unwritten):
                    del self._slices[key]
            if self._slices:
                ledger.renew(self.holder, self._ttl, now)

    def _alert(self, chunk, spent):
        budget = chunk.budget
        if not budget.amount:
            return
        metrics.BUDGET_USED.labels(budget.scope, budget.name).set(spent / budget.amount)
        if spent >= budget.amount * self._alert_share and ledger.mark_alerted(
            budget.scope, budget.name, chunk.window
        ):
            log.warning(
                "budget alert",
                extra={
                    "fields": {
                        "scope": budget.scope,
                        "name": budget.name,
                        "period": budget.period,
                        "window": chunk.window,
                        "spent": money.exact(spent),
                        "budget": money.exact(budget.amount),
                    }
                },
            )
            audit.record(
                "relay",
                "budget.alert",
                f"{budget.scope}:{budget.name}",
                window=chunk.window,
                spent=money.exact(spent),
            )


def status(budget):
    """Where `budget` stands in its current window, as a client may read it."""
    window_id, ends = window(budget.period)
    spent, _ = ledger.spent(budget.scope, budget.name, window_id)
    return {
        "scope": budget.scope,
        "name": budget.name,
        "period": budget.period,
        "window": window_id,
        "budget": money.exact(budget.amount),
        "spent": money.exact(spent),
        "remaining": money.exact(max(0, budget.amount - spent)),
        "resets_at": None if ends is None else f"{ends:%Y-%m-%dT%H:%M:%SZ}",
    }


def _kept(previous):
    if previous is None:
        return ()
    return (previous.available, previous.outstanding, previous.unwritten, previous.overrun)
