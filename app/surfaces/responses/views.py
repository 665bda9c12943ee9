"""OpenAI's Responses API over Chat Completions remotes: /v1/responses."""

import logging

from flask import Blueprint, current_app, jsonify, request

from app.access import audit, caller, calls_a_model
from app.catalog.names import normalize_model_name
from app.chat import forwarding
from app.chat.options import fill_defaults, with_system
from app.errors import BadRequest, RelayError
from app.routing import serve
from app.surfaces.openai.views import chat_remote
from app.surfaces.responses import request as responses_request
from app.surfaces.responses import store as responses_store
from app.surfaces.responses.items import page, referenced_ids, resolve_references, resource_items
from app.surfaces.responses.schemas import CreateResponseSchema, InputItemsQuerySchema
from app.surfaces.responses.stream import ResponsesStream
from app.surfaces.schema import load
from app.web.body import json_body
from app.web.streaming import relay, sse_event, sse_response

log = logging.getLogger(__name__)

bp = Blueprint("responses", __name__, url_prefix="/v1")

_create = CreateResponseSchema()
_input_items = InputItemsQuerySchema()


class StoreFailed(Exception):
    """The answer exists but could not be kept; details are in the log."""


def _max_age():
    return current_app.config["RELAY_RESPONSES_MAX_AGE_DAYS"]


def _owner_filter():
    """None for callers who see every stored response, else the key's identity."""
    who = caller()
    return None if who.sees_everything else who.owner


def _history(body, model_name):
    """The chat messages of the stored conversation this request continues."""
    previous_id = body.get("previous_response_id")
    if not previous_id:
        return []
    previous = responses_store.get(
        previous_id, _max_age(), param="previous_response_id", owner=_owner_filter()
    )
    if previous.model != model_name:
        raise BadRequest(
            f"previous_response_id '{previous_id}' belongs to a conversation "
            f"with model '{previous.model}', not '{model_name}'",
            param="previous_response_id",
        )
    return responses_store.history(previous.id, param="previous_response_id")


def _saver(body, model_name, history, turn):
    """What to call, once the answer is complete, to store it (None: store nothing)."""
    if not body["store"]:
        return None
    items = resource_items(body["input"])
    owner = caller().owner

    def save(stream):
        try:
            responses_store.save(
                stream.id,
                model_name,
                body.get("previous_response_id"),
                items,
                history,
                turn + [stream.assistant_message()],
                stream.response,
                owner,
            )
        except Exception:
            log.exception("could not store response %s", stream.id)
            raise StoreFailed("the response could not be stored") from None

    return save


@bp.post("/responses")
@calls_a_model
def create_response():
    return serve(load(_create, json_body()), _response_with)


def _response_with(body, model):
    # The conversation is the asked model's, whichever model serves this turn.
    asked = normalize_model_name(body["model"])
    history = _history(body, asked)
    try:
        stored = responses_store.output_items(
            referenced_ids(body["input"]), _max_age(), _owner_filter()
        )
        body["input"] = resolve_references(body["input"], stored)
        chat, tool_names, turn = responses_request.chat_request(body, model.remote_model, history)
    except responses_request.RequestProblem as problem:
        raise BadRequest(problem.message, param=problem.param) from None
    chat["messages"] = with_system(chat["messages"], model.system)
    chat = forwarding.allowed(fill_defaults(chat, model.parameters), model.forward)
    remote = chat_remote(model)
    stream = ResponsesStream(
        body, body["model"], tool_names, on_complete=_saver(body, asked, history, turn)
    )
    if body["stream"]:
        upstream = remote.chat_stream(chat)
        return sse_response(relay(upstream, stream, sse_event, head=stream.start()))
    stream.feed(remote.chat(chat))
    stream.finish()
    if stream.response["status"] == "failed":
        raise RelayError(stream.response["error"]["message"])
    return jsonify(stream.response)


@bp.get("/responses/<response_id>")
def get_response(response_id):
    return jsonify(responses_store.get(response_id, _max_age(), owner=_owner_filter()).response)


@bp.delete("/responses/<response_id>")
def delete_response(response_id):
    owner = _owner_filter()
    responses_store.delete(response_id, owner=owner)
    if owner is None and caller().name != "-":
        audit.record(caller().name, "response.delete", response_id, via="http")
    return jsonify({"id": response_id, "object": "response", "deleted": True})


@bp.get("/responses/<response_id>/input_items")
def list_input_items(response_id):
    query = load(_input_items, request.args.to_dict())
    stored = responses_store.get(response_id, _max_age(), owner=_owner_filter())
    return jsonify(page(stored.input_items, query["limit"], query["order"], query.get("after")))
