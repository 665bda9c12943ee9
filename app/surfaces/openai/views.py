"""OpenAI-compatible surface: /v1/models, /v1/chat/completions, /v1/completions,
/v1/embeddings."""

from flask import Blueprint, jsonify

from app.access import calls_a_model
from app.catalog import describe
from app.chat import forwarding
from app.chat.options import fill_defaults, with_system
from app.chat.problems import RequestProblem
from app.errors import BadRequest
from app.remotes.ollama import OllamaRemote
from app.routing import model_to_show, remote_for, serve, visible_models
from app.surfaces.openai import chat, completions
from app.surfaces.openai import embeddings as encodings
from app.surfaces.openai.schemas import ChatCompletionSchema, CompletionSchema, EmbeddingsSchema
from app.surfaces.schema import load
from app.web.body import json_body
from app.web.streaming import relay, sse_data, sse_response

bp = Blueprint("openai", __name__, url_prefix="/v1")

_chat = ChatCompletionSchema()
_completions = CompletionSchema()
_embeddings = EmbeddingsSchema()


def chat_remote(model):
    remote = remote_for(model)
    # A remote Ollama has its own OpenAI-compatible endpoints.
    return remote.openai() if isinstance(remote, OllamaRemote) else remote


@bp.get("/models")
def list_models():
    return jsonify({"object": "list", "data": [describe.openai_model(m) for m in visible_models()]})


@bp.get("/models/<path:model>")
def get_model(model):
    return jsonify(describe.openai_model(model_to_show(model)))


@bp.post("/chat/completions")
@calls_a_model
def chat_completions():
    return serve(load(_chat, json_body()), _chat_with)


def _chat_with(body, model):
    try:
        forwarding.check_n(body, model.max_n)
    except RequestProblem as problem:
        raise BadRequest(problem.message, param=problem.param) from None
    remote = chat_remote(model)
    request = fill_defaults(
        dict(body, model=model.remote_model, messages=with_system(body["messages"], model.system)),
        model.parameters,
    )
    request = forwarding.allowed(request, model.forward)
    if body.get("stream"):
        upstream = remote.chat_stream(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        converter = chat.ChatChunks(body["model"], include_usage)
        return sse_response(relay(upstream, converter, sse_data))
    return jsonify(chat.completion(remote.chat(request), body["model"]))


@bp.post("/completions")
@calls_a_model
def legacy_completions():
    return serve(load(_completions, json_body()), _completions_with)


def _completions_with(body, model):
    """Relayed to the remote's own /v1/completions (an Ollama remote's too):
    the relay has no template to make a prompt of a chat, or a chat of a
    prompt with a suffix (fill-in-the-middle)."""
    for name in ("n", "best_of"):
        try:
            # best_of makes that many answers, each billed, as n does.
            forwarding.check_n({"n": body.get(name)}, model.max_n)
        except RequestProblem as problem:
            raise BadRequest(problem.message.replace("n:", f"{name}:", 1), param=name) from None
    request = fill_defaults(dict(body, model=model.remote_model), model.parameters)
    request = forwarding.allowed(request, model.forward)
    remote = chat_remote(model)
    if body.get("stream"):
        upstream = remote.completions_stream(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        converter = completions.CompletionChunks(body["model"], include_usage)
        return sse_response(relay(upstream, converter, sse_data))
    return jsonify(completions.completion(remote.completions(request), body["model"]))


@bp.post("/embeddings")
@calls_a_model
def embeddings():
    return serve(load(_embeddings, json_body()), _embeddings_with)


def _embeddings_with(body, model):
    answer = chat_remote(model).embeddings(dict(body, model=model.remote_model))
    answer = encodings.encoded(answer, body.get("encoding_format"))
    return jsonify(dict(answer, model=body["model"]))
