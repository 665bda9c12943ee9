"""Stored responses: save, read, delete, prune. Usable outside a request
(a stream saves its response from the generator, after the view returned).

Age is measured from created_at against the current RELAY_RESPONSES_MAX_AGE_DAYS,
so a changed setting applies to responses already stored.
"""
import datetime

from app.db import database
from app.errors import NotFound
from app.models import StoredResponse, utcnow


def _cutoff(max_age_days):
    return utcnow() - datetime.timedelta(days=max_age_days)


def save(response_id, model, previous_response_id, input_items, history, response, owner):
    # One INSERT: a response is either stored whole or not at all.
    with database.connection_context():
        StoredResponse.insert(
            id=response_id, model=model, previous_response_id=previous_response_id,
            created_at=utcnow(), input_items=input_items, history=history,
            response=response, owner=owner).execute()


def _visible(response_id, owner):
    """Responses are their owner's: with `owner` given, another's is as
    absent as one that never existed (404, not 403, which would confirm it)."""
    where = StoredResponse.id == response_id
    return where if owner is None else where & (StoredResponse.owner == owner)


def get(response_id, max_age_days, param=None, owner=None):
    """The stored response, or 404 when there is none, it has expired, or
    `owner` is given and it is someone else's."""
    stored = StoredResponse.get_or_none(
        _visible(response_id, owner) & (StoredResponse.created_at > _cutoff(max_age_days)))
    if stored is None:
        raise NotFound(f"response '{response_id}' not found", param=param)
    return stored


def delete(response_id, owner=None):
    if not StoredResponse.delete().where(_visible(response_id, owner)).execute():
        raise NotFound(f"response '{response_id}' not found")


def prune(max_age_days):
    """Delete expired responses; returns how many."""
    with database.connection_context():
        return StoredResponse.delete().where(
            StoredResponse.created_at <= _cutoff(max_age_days)).execute()
