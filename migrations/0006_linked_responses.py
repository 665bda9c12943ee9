"""Stored responses keep their own turn only (`messages`), linked to the turn
before (`parent_id`), instead of the whole conversation so far (`history`),
which made a conversation's storage grow with the square of its length; a
DELETEd response stays as a tombstone (`deleted`) while later ones need it.

Rows are converted in batches (by id, and by size: an old history can be
megabytes), so a big table never sits in memory at once. A row's own turn is
its history minus its previous response's; when that one is gone (deleted or
pruned), or its history is not a prefix of this one, the row keeps its whole
history as the start of its conversation and nothing is lost.
"""

import json

from peewee import BooleanField, CharField, TextField
from playhouse.migrate import migrate

TABLE = "stored_response"
PAGE = 500  # rows whose ids and sizes are read at once
BUDGET = 8_000_000  # characters of history parsed at once (the row's and its previous')


def _dumps(value):
    # As app/models.py's JSONField writes it.
    return json.dumps(value, separators=(",", ":"))


def _pages(db, columns):
    """Lists of rows of `columns` (id first), in id order, PAGE at a time."""
    last = ""
    while True:
        rows = db.execute_sql(
            f"SELECT {columns} FROM {TABLE} WHERE id > {db.param} ORDER BY id LIMIT {PAGE}", (last,)
        ).fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _chunks(rows):
    """`rows` (id, previous id, history length) in runs of at most BUDGET
    characters (a previous history is no longer than the one continuing it)."""
    chunk, size = [], 0
    for row in rows:
        if chunk and size + 2 * (row[2] or 0) > BUDGET:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += 2 * (row[2] or 0)
    if chunk:
        yield chunk


def _histories(db, ids):
    if not ids:
        return {}
    marks = ", ".join([db.param] * len(ids))
    return {
        row_id: json.loads(history)
        for row_id, history in db.execute_sql(
            f"SELECT id, history FROM {TABLE} WHERE id IN ({marks})", list(ids)
        ).fetchall()
    }


def _split(db):
    for page in _pages(db, "id, previous_response_id, LENGTH(history)"):
        for chunk in _chunks(page):
            own = _histories(db, [row[0] for row in chunk])
            previous = _histories(db, {row[1] for row in chunk if row[1]})
            for row_id, previous_id, _ in chunk:
                history, prefix = own[row_id], previous.get(previous_id)
                if prefix is not None and history[: len(prefix)] == prefix:
                    parent, messages = previous_id, history[len(prefix) :]
                else:
                    parent, messages = None, history
                db.execute_sql(
                    f"UPDATE {TABLE} SET parent_id = {db.param}, messages = {db.param} "
                    f"WHERE id = {db.param}",
                    (parent, _dumps(messages), row_id),
                )


def up(migrator, db):
    migrate(
        migrator.add_column(TABLE, "parent_id", CharField(max_length=64, null=True)),
        migrator.add_column(TABLE, "messages", TextField(null=True)),
        migrator.add_column(TABLE, "deleted", BooleanField(default=False)),
    )
    _split(db)
    migrate(migrator.drop_column(TABLE, "history"), migrator.add_index(TABLE, ("parent_id",)))


# Down: every row gets its whole conversation back (tombstones did not exist
# before, so they go once their turns are copied into the rows after them).
_CHAIN = """
WITH RECURSIVE chain(id, parent_id, messages, input_items, response, n) AS (
    SELECT id, parent_id, messages, input_items, response, 0 FROM {table} WHERE id = {p}
    UNION ALL
    SELECT r.id, r.parent_id, r.messages, r.input_items, r.response, chain.n + 1
    FROM {table} r JOIN chain ON r.id = chain.parent_id
)
SELECT messages, input_items, response FROM chain ORDER BY n DESC"""


def _turn(messages, input_items, response):
    if messages is not None:
        return json.loads(messages)
    # Stored since the upgrade: the turn is what its items convert to (as
    # app/responses_store.py reads it).
    from app.surfaces.responses.items import turn_from_items

    return turn_from_items(json.loads(input_items), json.loads(response).get("output"))


def _join(db):
    sql = _CHAIN.format(table=TABLE, p=db.param)
    for page in _pages(db, "id"):
        for (row_id,) in page:
            history = [
                message
                for row in db.execute_sql(sql, (row_id,)).fetchall()
                for message in _turn(*row)
            ]
            db.execute_sql(
                f"UPDATE {TABLE} SET history = {db.param} WHERE id = {db.param}",
                (_dumps(history), row_id),
            )


def down(migrator, db):
    migrate(migrator.add_column(TABLE, "history", TextField(null=True)))
    _join(db)
    db.execute_sql(f"DELETE FROM {TABLE} WHERE deleted = {db.param}", (True,))
    migrate(
        migrator.drop_index(TABLE, f"{TABLE}_parent_id"),
        migrator.drop_column(TABLE, "deleted"),
        migrator.drop_column(TABLE, "messages"),
        migrator.drop_column(TABLE, "parent_id"),
    )
