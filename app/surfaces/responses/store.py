"""Stored responses: save, read, delete, prune. Usable outside a request
(a stream saves its response from the generator, after the view returned).

Each row keeps one turn and links to the turn before (parent_id), so a
conversation takes storage in proportion to its length; history() reads it
back in one recursive query, each step a primary-key lookup.

Deleting a response hides it at once (404 everywhere, its items can no longer
be referenced) but the row stays, as a tombstone, while a live response
continues the conversation through it: their history needs its turn. The
tombstone goes when the last such response is deleted or pruned. Expiry
works the same way: an expired response is gone from the API, and its row
is pruned once nothing live descends from it.

Age is measured from created_at against the current RELAY_RESPONSES_MAX_AGE_DAYS,
so a changed setting applies to responses already stored.
"""

import datetime
import json

from peewee import PostgresqlDatabase

from app.errors import NotFound
from app.storage.db import commit_without_waiting_for_disk, database, write_transaction
from app.storage.models import ResponseItem, StoredResponse, utcnow
from app.surfaces.responses.items import turn_from_items

_TABLE = StoredResponse._meta.table_name
# Expressions, so == and not `is` (peewee builds SQL from the comparison).
_DELETED = StoredResponse.deleted == True  # noqa: E712
_NOT_DELETED = StoredResponse.deleted == False  # noqa: E712


def _cutoff(max_age_days):
    return utcnow() - datetime.timedelta(days=max_age_days)


def _lock_parent(response_id):
    """The id of the row a new turn will link to, or None when it is gone.
    On PostgreSQL the row is share-locked until commit, so a concurrent
    delete() either waits and then sees the new child, or has removed the
    row already; SQLite's IMMEDIATE transaction serialises writers anyway."""
    query = StoredResponse.select(StoredResponse.id).where(StoredResponse.id == response_id)
    if isinstance(database.obj, PostgresqlDatabase):
        query = query.for_update("FOR SHARE")
    return query.scalar()


# The store's two INSERTs, written once: peewee builds a query's SQL anew on
# every call, which cost more than SQLite's own work for the write
# (ops/bench/README.md, "Stored responses on the hot path").
_ROW_FIELDS = (
    StoredResponse.id,
    StoredResponse.model,
    StoredResponse.previous_response_id,
    StoredResponse.parent_id,
    StoredResponse.created_at,
    StoredResponse.input_items,
    StoredResponse.messages,
    StoredResponse.response,
    StoredResponse.owner,
    StoredResponse.deleted,
)
_INSERT_ROW = "INSERT INTO {table} ({columns}) VALUES ({params})"
_INSERT_ITEMS = "INSERT INTO {table} (item_id, response_id) VALUES {rows} ON CONFLICT DO NOTHING"


def _insert(*values):
    p = database.param
    sql = _INSERT_ROW.format(
        table=_TABLE,
        columns=", ".join(field.column_name for field in _ROW_FIELDS),
        params=", ".join([p] * len(_ROW_FIELDS)),
    )
    database.execute_sql(sql, [f.db_value(v) for f, v in zip(_ROW_FIELDS, values, strict=True)])


def _insert_items(response_id, item_ids):
    p = database.param
    sql = _INSERT_ITEMS.format(
        table=ResponseItem._meta.table_name, rows=", ".join([f"({p}, {p})"] * len(item_ids))
    )
    database.execute_sql(sql, [value for item in item_ids for value in (item, response_id)])


def save(response_id, model, previous_response_id, input_items, history, turn, response, owner):
    """Store one turn: `turn` is its chat messages (input, then answer),
    `history` those of the conversation before it. The history is written
    only when the previous response's row vanished while this answer was
    made (deleted with nothing depending on it, or pruned): this row then
    starts a conversation of its own, and the caller's history stays whole.
    The turn itself is written only when its input and output items (kept
    anyway, for /input_items and GET) do not convert back to it exactly:
    most turns are then stored once, not twice."""
    items = [item["id"] for item in response.get("output") or [] if item.get("id")]
    # One transaction: a response is either stored whole, with its items, or not at all.
    with database.connection_context(), write_transaction():
        # An answer is acknowledged once committed, not once on the server's disk.
        commit_without_waiting_for_disk()
        parent = _lock_parent(previous_response_id) if previous_response_id else None
        if not parent:
            messages = list(history) + list(turn)
        elif turn_from_items(input_items, response.get("output")) == list(turn):
            messages = None
        else:
            messages = list(turn)
        _insert(
            response_id,
            model,
            previous_response_id,
            parent,
            utcnow(),
            input_items,
            messages,
            response,
            owner,
            False,
        )
        if items:
            _insert_items(response_id, items)


def _visible(response_id, owner):
    """Responses are their owner's: with `owner` given, another's is as
    absent as one that never existed (404, not 403, which would confirm it).
    A deleted response is absent for everyone."""
    where = (StoredResponse.id == response_id) & _NOT_DELETED
    return where if owner is None else where & (StoredResponse.owner == owner)


def get(response_id, max_age_days, param=None, owner=None):
    """The stored response, or 404 when there is none, it has expired or was
    deleted, or `owner` is given and it is someone else's."""
    stored = StoredResponse.get_or_none(
        _visible(response_id, owner) & (StoredResponse.created_at > _cutoff(max_age_days))
    )
    if stored is None:
        raise NotFound(f"response '{response_id}' not found", param=param)
    return stored


# Up the links from one row to the start of its conversation; `n` counts
# the steps, so ordering by it descending gives the turns oldest first. Each
# step must be a primary-key lookup: PostgreSQL's planner, guessing the
# chain to be 10 rows, picks a hash join over the whole table otherwise (a
# scan per step), so there the step is a LATERAL subquery (LIMIT keeps it
# from being flattened back into that join), answered through the key.
# SQLite always joins through the key.
_CHAIN = """
WITH RECURSIVE chain(id, parent_id, messages, input_items, response, n) AS (
    SELECT id, parent_id, messages, input_items, response, 0 FROM {table} WHERE id = {p}
    UNION ALL
    SELECT r.id, r.parent_id, r.messages, r.input_items, r.response, chain.n + 1
    FROM chain {step}
)
SELECT parent_id, messages, input_items, response FROM chain ORDER BY n DESC"""
_STEP = "JOIN {table} r ON r.id = chain.parent_id"
_PG_STEP = (
    "CROSS JOIN LATERAL (SELECT id, parent_id, messages, input_items, response "
    "FROM {table} WHERE id = chain.parent_id LIMIT 1) r"
)


def _chain_sql():
    step = _PG_STEP if isinstance(database.obj, PostgresqlDatabase) else _STEP
    return _CHAIN.format(table=_TABLE, p=database.param, step=step.format(table=_TABLE))


def history(response_id, param=None):
    """The conversation up to and including `response_id` as chat messages:
    one query, whatever its length (get() it first: this does not check
    visibility)."""
    rows = database.execute_sql(_chain_sql(), (response_id,)).fetchall()
    if not rows or rows[0][0] is not None:
        # An earlier turn was pruned while this one was being stored (the
        # only way a link can dangle): the conversation is no longer whole.
        raise NotFound(
            f"the conversation of response '{response_id}' is no longer stored", param=param
        )
    return [message for row in rows for message in _turn(*row[1:])]


def _turn(messages, input_items, response):
    if messages is not None:
        return json.loads(messages)
    return turn_from_items(json.loads(input_items), json.loads(response).get("output"))


def output_items(item_ids, max_age_days, owner=None):
    """{item id: output item} for those of `item_ids` that a live response
    visible to `owner` holds (the item_reference input items of a request)."""
    if not item_ids:
        return {}
    query = (
        StoredResponse.select(StoredResponse.response)
        .join(ResponseItem, on=(ResponseItem.response_id == StoredResponse.id))
        .where(
            ResponseItem.item_id.in_(list(item_ids))
            & _NOT_DELETED
            & (StoredResponse.created_at > _cutoff(max_age_days))
        )
        .distinct()
    )
    if owner is not None:
        query = query.where(StoredResponse.owner == owner)
    wanted = set(item_ids)
    return {
        item["id"]: item
        for stored in query
        for item in stored.response.get("output") or []
        if item.get("id") in wanted
    }


def delete(response_id, owner=None):
    # Marking it first takes the row's lock (PostgreSQL): a save() linking to
    # it waits, or has committed and is seen by the check for children below.
    with write_transaction():
        if not StoredResponse.update(deleted=True).where(_visible(response_id, owner)).execute():
            raise NotFound(f"response '{response_id}' not found")
        ResponseItem.delete().where(ResponseItem.response_id == response_id).execute()
        _remove_tombstones(response_id)


def _remove_tombstones(response_id):
    """Remove the deleted row `response_id` if no row links to it, then its
    parent the same way: deleting the newest turn of a conversation whose
    earlier turns were deleted before takes them along."""
    while response_id is not None:
        row = (
            StoredResponse.select(StoredResponse.parent_id)
            .where((StoredResponse.id == response_id) & _DELETED)
            .first()
        )
        if (
            row is None
            or StoredResponse.select().where(StoredResponse.parent_id == response_id).exists()
        ):
            return
        StoredResponse.delete().where(StoredResponse.id == response_id).execute()
        response_id = row.parent_id


def _unneeded(cutoff):
    """Rows that are dead (deleted or expired) and that no live row descends
    from: the ancestors of live rows are collected up the links, stopping at
    the first live one (its own ancestors are collected from it)."""
    R, Up = StoredResponse, StoredResponse.alias()
    dead = (R.deleted == True) | (R.created_at <= cutoff)  # noqa: E712
    kept = (
        R.select(R.parent_id.alias("id"))
        .where(~dead & R.parent_id.is_null(False))
        .cte("kept", recursive=True, columns=("id",))
    )
    up = (
        Up.select(Up.parent_id)
        .join(kept, on=(Up.id == kept.c.id))
        # peewee builds SQL from `== True`; `is True` would be Python's.
        .where(Up.parent_id.is_null(False) & ((Up.deleted == True) | (Up.created_at <= cutoff)))  # noqa: E712
    )
    kept = kept.union(up)
    # The WITH goes inside the subquery: Python's sqlite3 reports no row
    # count for a statement that starts with WITH.
    return dead & R.id.not_in(kept.select_from(kept.c.id))


def prune(max_age_days):
    """Delete expired responses, and deleted ones kept for conversations that
    have since expired too; returns how many rows went. An expired response
    that a live one continues stays (hidden) until that one expires."""
    cutoff = _cutoff(max_age_days)
    with database.connection_context(), write_transaction():
        ResponseItem.delete().where(
            ResponseItem.response_id.in_(
                StoredResponse.select(StoredResponse.id).where(StoredResponse.created_at <= cutoff)
            )
        ).execute()
        return StoredResponse.delete().where(_unneeded(cutoff)).execute()
