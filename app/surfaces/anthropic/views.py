"""Anthropic's Messages API over Chat Completions remotes: /v1/messages and
/v1/messages/count_tokens (Claude Code, the anthropic SDKs).

Errors on these paths take Anthropic's shape (app.errors). The
anthropic-version and anthropic-beta headers are accepted and ignored.
"""

from flask import Blueprint, g, jsonify

from app.access import calls_a_model
from app.chat import forwarding
from app.chat.options import fill_defaults, with_system
from app.errors import BadRequest, RelayError, UpstreamError
from app.routing import model_to_show, serve
from app.surfaces.anthropic import request as messages_request
from app.surfaces.anthropic.schemas import CountTokensSchema, CreateMessageSchema
from app.surfaces.anthropic.stream import MessagesStream
from app.surfaces.openai.views import chat_remote
from app.surfaces.schema import load
from app.web.body import json_body
from app.web.streaming import relay, sse_event, sse_response

bp = Blueprint("messages", __name__, url_prefix="/v1")

_create = CreateMessageSchema()
_count = CountTokensSchema()


@bp.after_request
def request_id_header(response):
    # Anthropic's SDKs read `request-id` (exceptions and responses carry it).
    if g.get("request_id"):
        response.headers["request-id"] = g.request_id
    return response


def _chat_request(body, model):
    try:
        chat = messages_request.chat_request(body, model.remote_model)
    except messages_request.RequestProblem as problem:
        raise BadRequest(problem.message, param=problem.param) from None
    chat["messages"] = with_system(chat["messages"], model.system)
    chat = forwarding.allowed(fill_defaults(chat, model.parameters), model.forward)
    # Anthropic requires max_tokens, so a model's num_predict could never fill
    # it: here it is a ceiling instead (Claude Code asks 32,000, more than many
    # providers allow).
    ceiling = (model.parameters or {}).get("num_predict")
    if isinstance(ceiling, int) and ceiling > 0 and chat.get("max_tokens", 0) > ceiling:
        chat["max_tokens"] = ceiling
    return chat


def _remote_refused(exc):
    """A remote's 401/403 is the operator's problem: 403 permission_error,
    which Claude Code reports at once ("Failed to authenticate"), where a 401
    would be retried for three minutes and then read "Not logged in"."""
    if exc.status in (401, 403):
        return RelayError(
            f"{exc.message} (the remote provider refused the relay's credentials "
            f"for this model: tell the relay's operator)",
            status=403,
        )
    return exc


@bp.post("/messages")
@calls_a_model
def create_message():
    try:
        return serve(load(_create, json_body()), _message_with)
    except UpstreamError as exc:
        raise _remote_refused(exc) from None


def _message_with(body, model):
    chat = _chat_request(body, model)
    remote = chat_remote(model)
    stream = MessagesStream(body["model"], body.get("stop_sequences"))
    if body["stream"]:
        upstream = remote.chat_stream(chat)
        return sse_response(
            relay(upstream, stream, sse_event, head=stream.start(), ping=stream.ping)
        )
    stream.feed(remote.chat(chat))
    stream.finish()
    if stream.message is None:
        raise RelayError("the remote's answer was not complete", status=502)
    return jsonify(stream.message)


@bp.post("/messages/count_tokens")
def count_tokens():
    """{"input_tokens": N}, estimated without calling the remote (Chat
    Completions has no way to count): see messages_request.estimate_tokens.
    The model is checked (403/404) but no rate limit is spent."""
    body = load(_count, json_body())
    model = model_to_show(body["model"])
    chat = _chat_request(body, model)
    return jsonify({"input_tokens": messages_request.estimate_tokens(chat)})
