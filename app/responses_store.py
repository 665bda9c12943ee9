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


def save(response_id, model, previous_response_id, input_items, history, response):
    # One INSERT: a response is either stored whole or not at all.
    with database.connection_context():
        StoredResponse.insert(
            id=response_id, model=model, previous_response_id=previous_response_id,
            created_at=utcnow(), input_items=input_items, history=history,
            response=response).execute()


def get(response_id, max_age_days, param=None):
    """The stored response, or 404 when there is none or it has expired."""
    stored = StoredResponse.get_or_none(
        (StoredResponse.id == response_id) & (StoredResponse.created_at > _cutoff(max_age_days)))
    if stored is None:
        raise NotFound(f"response '{response_id}' not found", param=param)
    return stored


def delete(response_id):
    if not StoredResponse.delete().where(StoredResponse.id == response_id).execute():
        raise NotFound(f"response '{response_id}' not found")


def prune(max_age_days):
    """Delete expired responses; returns how many."""
    with database.connection_context():
        return StoredResponse.delete().where(
            StoredResponse.created_at <= _cutoff(max_age_days)).execute()
