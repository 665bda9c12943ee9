"""Digests that tell apart models that differ only in their API key.

Digests used to leave the key out, so such models shared one, and clients
that take one digest for one model (llm-ollama) sent one model's calls on the
other's key. New and rewritten models mix in an HMAC of the key under the
instance secret (app/catalog/registry.py), which a migration cannot read:
rows stored before get the hash of their encrypted key mixed in instead,
which tells different keys apart too (each was encrypted on its own) and,
being a hash of ciphertext, says nothing about the key.
"""

import hashlib


def up(migrator, db):
    rows = db.execute_sql(
        "SELECT id, digest, api_key FROM remote_model WHERE api_key IS NOT NULL"
    ).fetchall()
    for row_id, digest, token in rows:
        sealed = hashlib.sha256(token.encode()).hexdigest()
        mixed = hashlib.sha256(f"{digest}\n{sealed}".encode()).hexdigest()
        db.execute_sql(
            f"UPDATE remote_model SET digest = {db.param} WHERE id = {db.param}",
            ("sha256:" + mixed, row_id),
        )


def down(migrator, db):
    # The old digests are not needed back: a digest only names a configuration.
    pass
