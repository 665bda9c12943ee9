"""Stored responses: save, read, delete, prune. Usable outside a request
(a stream saves its response from the generator, after the view returned).

Age is measured from created_at against the current RELAY_RESPONSES_MAX_AGE_DAYS,
so a changed setting applies to responses already stored.
"""
import datetime

from app.db import database
from app.errors import NotFound
from app.models import ResponseItem, StoredResponse, utcnow


def _cutoff(max_age_days):
    return utcnow() - datetime.timedelta(days=max_age_days)


def save(response_id, model, previous_response_id, input_items, history, response, owner):
    # One transaction: a response is either stored whole, with its items, or not at all.
    items = [{"item_id": item["id"], "response_id": response_id}
             for item in response.get("output") or [] if item.get("id")]
    with database.connection_context(), database.atomic():
        StoredResponse.insert(
            id=response_id, model=model, previous_response_id=previous_response_id,
            created_at=utcnow(), input_items=input_items, history=history,
            response=response, owner=owner).execute()
        if items:
            ResponseItem.insert_many(items).on_conflict_ignore().execute()


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


def output_items(item_ids, max_age_days, owner=None):
    """{item id: output item} for those of `item_ids` that a live response
    visible to `owner` holds (the item_reference input items of a request)."""
    if not item_ids:
        return {}
    query = (StoredResponse.select(StoredResponse.response)
             .join(ResponseItem, on=(ResponseItem.response_id == StoredResponse.id))
             .where(ResponseItem.item_id.in_(list(item_ids))
                    & (StoredResponse.created_at > _cutoff(max_age_days)))
             .distinct())
    if owner is not None:
        query = query.where(StoredResponse.owner == owner)
    wanted = set(item_ids)
    return {item["id"]: item for stored in query
            for item in stored.response.get("output") or [] if item.get("id") in wanted}


def delete(response_id, owner=None):
    with database.atomic():
        if not StoredResponse.delete().where(_visible(response_id, owner)).execute():
            raise NotFound(f"response '{response_id}' not found")
        ResponseItem.delete().where(ResponseItem.response_id == response_id).execute()


def prune(max_age_days):
    """Delete expired responses; returns how many."""
    expired = StoredResponse.created_at <= _cutoff(max_age_days)
    with database.connection_context(), database.atomic():
        ResponseItem.delete().where(ResponseItem.response_id.in_(
            StoredResponse.select(StoredResponse.id).where(expired))).execute()
        return StoredResponse.delete().where(expired).execute()
