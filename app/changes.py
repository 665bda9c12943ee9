"""Change counters: how a worker learns, with one small read, that what it
caches (keys today) was changed by another worker or host.

A writer bumps the counter in the transaction that makes the change; a
reader compares the version it loaded with the current one.
"""
from app.models import ChangeCounter


def bump(name):
    ChangeCounter.update(version=ChangeCounter.version + 1).where(
        ChangeCounter.name == name).execute()


def version(name):
    return (ChangeCounter.select(ChangeCounter.version)
            .where(ChangeCounter.name == name).scalar())
