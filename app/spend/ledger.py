"""What the database knows of budgets: each window's spent and held amounts,
and the leases workers hold of them (tables budget_spend and budget_lease).

Every change to a window happens in one transaction with its row locked (FOR
UPDATE on PostgreSQL, the write lock on SQLite), and keeps
spent + held <= budget for what it grants. A lease not renewed by its
expiry belonged to a worker that died: whoever next leases from the window
settles it in full as spent. The relay cannot know what the remote did for
the requests that worker had in flight, so each is charged its worst case
(and an unused rest of that lease with it): a budget is never overspent,
at the price of counting a dead worker's lease whole.
"""

import time

from peewee import PostgresqlDatabase

from app.storage.db import database, write_transaction
from app.storage.models import BudgetLease, BudgetSpend


def _where(scope, name, window):
    return (
        (BudgetSpend.scope == scope) & (BudgetSpend.name == name) & (BudgetSpend.window == window)
    )


def _lease_where(holder, scope, name, window):
    return (
        (BudgetLease.holder == holder)
        & (BudgetLease.scope == scope)
        & (BudgetLease.name == name)
        & (BudgetLease.window == window)
    )


def _locked_row(scope, name, window):
    def read():
        # A new query each time: a peewee query keeps the rows it read.
        query = BudgetSpend.select().where(_where(scope, name, window))
        if isinstance(database.obj, PostgresqlDatabase):
            query = query.for_update()
        return query.first()

    row = read()
    if row is None:
        BudgetSpend.insert(scope=scope, name=name, window=window).on_conflict_ignore().execute()
        row = read()
    return row


def _release_expired(scope, name, window, now):
    expired = BudgetLease.select().where(
        (BudgetLease.scope == scope)
        & (BudgetLease.name == name)
        & (BudgetLease.window == window)
        & (BudgetLease.expires_at < now)
    )
    released = 0
    for lease in expired:
        released += lease.amount
        lease.delete_instance()
    return released


def lease(holder, budget, window, need, want, ttl, now=None):
    """Take `want(free)` (at least `need`) of what is free in `budget`'s
    window for `holder`; returns what was granted (0: not even `need` is free)."""
    now = time.time() if now is None else now
    scope, name = budget.scope, budget.name
    with write_transaction():
        row = _locked_row(scope, name, window)
        expired = _release_expired(scope, name, window, now)
        spent, held = row.spent + expired, row.held - expired
        free = budget.amount - spent - held
        granted = min(max(need, want(free)), free) if free >= need else 0
        BudgetSpend.update(spent=spent, held=held + granted).where(
            _where(scope, name, window)
        ).execute()
        if granted:
            BudgetLease.insert(
                holder=holder,
                scope=scope,
                name=name,
                window=window,
                amount=granted,
                expires_at=now + ttl,
            ).on_conflict(
                conflict_target=[
                    BudgetLease.holder,
                    BudgetLease.scope,
                    BudgetLease.name,
                    BudgetLease.window,
                ],
                update={
                    BudgetLease.amount: BudgetLease.amount + granted,
                    BudgetLease.expires_at: now + ttl,
                },
            ).execute()
    return granted


def settle(holder, scope, name, window, spent, released):
    """Add `spent` to the window's spend and take `released` (what the
    worker's lease no longer holds: spent within it, and what it returns) off
    its held amount; returns the window's spent amount after, and whether the
    lease was gone: released as expired (a renewal came too late) and so
    already charged whole, which this spend was part of."""
    with write_transaction():
        row = _locked_row(scope, name, window)
        where = _lease_where(holder, scope, name, window)
        if BudgetLease.get_or_none(where) is None:
            return row.spent, True
        BudgetSpend.update(spent=BudgetSpend.spent + spent, held=BudgetSpend.held - released).where(
            _where(scope, name, window)
        ).execute()
        BudgetLease.update(amount=BudgetLease.amount - released).where(where).execute()
        BudgetLease.delete().where(where & (BudgetLease.amount <= 0)).execute()
    return row.spent + spent, False


def renew(holder, ttl, now=None):
    """Push back the expiry of every lease `holder` holds: it is alive."""
    now = time.time() if now is None else now
    BudgetLease.update(expires_at=now + ttl).where(BudgetLease.holder == holder).execute()


def mark_alerted(scope, name, window):
    """True for the one caller that marks the window's soft alert as given."""
    with write_transaction():
        return bool(
            BudgetSpend.update(alerted=1)
            .where(_where(scope, name, window) & (BudgetSpend.alerted == 0))
            .execute()
        )


def spent(scope, name, window):
    """(spent, held) of a window as the database has it now."""
    row = BudgetSpend.get_or_none(_where(scope, name, window))
    return (0, 0) if row is None else (row.spent, row.held)
