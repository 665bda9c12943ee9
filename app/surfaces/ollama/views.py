"""Ollama's inference API: /api/chat, /api/generate, /api/embed, /api/embeddings.

OpenAI-compatible remotes get Chat Completions (converted both ways); remote
Ollama servers get the request natively, relabelled on the way back.
"""

import math
import time
from functools import partial

from flask import Blueprint, jsonify

from app.access import calls_a_model
from app.chat import forwarding
from app.chat.options import with_system
from app.errors import BadRequest
from app.observability import telemetry
from app.remotes.ollama import OllamaRemote
from app.routing import remote_for, serve
from app.surfaces.ollama import chat as ollama_chat
from app.surfaces.ollama import generate as ollama_generate
from app.surfaces.ollama.lines import OllamaLines
from app.surfaces.ollama.schemas import ChatSchema, EmbeddingsSchema, EmbedSchema, GenerateSchema
from app.surfaces.schema import load
from app.web.body import json_body
from app.web.streaming import ndjson_line, ndjson_response, relay

bp = Blueprint("ollama", __name__, url_prefix="/api")

_chat = ChatSchema()
_generate = GenerateSchema()
_embed = EmbedSchema()
_embeddings = EmbeddingsSchema()


def _with_model_defaults(body, model):
    # The request's own options win over the model's stored parameters.
    return dict(body, options={**model.parameters, **body["options"]})


def _native(remote, endpoint, body, model):
    """Relay a request to a remote Ollama as it is, relabelled on the way back
    (less the fields the model does not forward, which Ollama has no use for)."""
    request = forwarding.allowed(dict(body, model=model.remote_model), model.forward)
    if body["stream"]:
        upstream = remote.stream(endpoint, request)
        return ndjson_response(relay(upstream, OllamaLines(model, body["model"]), ndjson_line))
    (line,) = OllamaLines(model, body["model"]).feed(remote.call(endpoint, request))
    return jsonify(line)


@bp.post("/chat")
@calls_a_model
def chat():
    return serve(load(_chat, json_body()), partial(_chat_with, started=time.monotonic_ns()))


def _chat_with(body, model, started):
    body = _with_model_defaults(body, model)
    body["messages"] = with_system(body["messages"], model.system)
    remote = remote_for(model)
    if isinstance(remote, OllamaRemote):
        return _native(remote, "chat", body, model)
    request = forwarding.allowed(ollama_chat.chat_request(body, model.remote_model), model.forward)
    if body["stream"]:
        upstream = remote.chat_stream(request)
        converter = ollama_chat.ChatStream(body["model"], started)
        return ndjson_response(relay(upstream, converter, ndjson_line))
    return jsonify(ollama_chat.chat_response(remote.chat(request), body["model"], started))


@bp.post("/generate")
@calls_a_model
def generate():
    return serve(load(_generate, json_body()), partial(_generate_with, started=time.monotonic_ns()))


def _generate_with(body, model, started):
    body = _with_model_defaults(body, model)
    if model.system and not body.get("system"):
        body["system"] = model.system
    remote = remote_for(model)
    if isinstance(remote, OllamaRemote):
        return _native(remote, "generate", body, model)
    # Any other remote: a one-turn chat (app/surfaces/ollama/generate.py).
    refused = ollama_generate.refused_field(body)
    if refused:
        field, why = refused
        raise BadRequest(
            f"invalid request: {field}: not supported for OpenAI-compatible remotes, where "
            f"/api/generate is served as a one-turn chat ({why})",
            param=field,
        )
    if ollama_generate.is_load(body):
        return jsonify(ollama_generate.load_response(body))
    request = ollama_generate.generate_request(body, model.remote_model)
    request = forwarding.allowed(request, model.forward)
    if body["stream"]:
        upstream = remote.chat_stream(request)
        converter = ollama_generate.GenerateStream(body["model"], started)
        return ndjson_response(relay(upstream, converter, ndjson_line))
    answer = remote.chat(request)
    return jsonify(ollama_generate.generate_response(answer, body["model"], started))


@bp.post("/embed")
@calls_a_model
def embed():
    return serve(load(_embed, json_body()), partial(_embed_with, started=time.monotonic_ns()))


def _counted(answer, texts):
    """An Ollama remote's embedding answer, its input tokens counted against
    the key's tpm: the remote's prompt_eval_count, or else (Ollama's
    /api/embeddings reports none) the relay's estimate, as count_tokens
    makes it: the characters divided by 4, rounded up."""
    exchange = telemetry.current()
    if exchange is not None and not (exchange.usage or {}).get("prompt_tokens"):
        texts = [texts] if isinstance(texts, str) else texts
        characters = sum(len(text) for text in texts if isinstance(text, str))
        exchange.record_usage({"prompt_tokens": math.ceil(characters / 4), "completion_tokens": 0})
    return answer


def _embed_with(body, model, started):
    remote = remote_for(model)
    if isinstance(remote, OllamaRemote):
        answer = remote.call("embed", dict(body, model=model.remote_model))
        return jsonify(dict(_counted(answer, body["input"]), model=body["model"]))
    # `truncate` has no Chat Completions counterpart: inputs past the
    # remote's context get what the remote does with them (most refuse them).
    request = {"model": model.remote_model, "input": body["input"]}
    if body.get("dimensions"):
        request["dimensions"] = body["dimensions"]
    answer = remote.embeddings(request)
    vectors = [item["embedding"] for item in sorted(answer["data"], key=lambda d: d["index"])]
    return jsonify(
        {
            "model": body["model"],
            "embeddings": vectors,
            "total_duration": time.monotonic_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": (answer.get("usage") or {}).get("prompt_tokens", 0),
        }
    )


@bp.post("/embeddings")
@calls_a_model
def embeddings():
    return serve(load(_embeddings, json_body()), _embeddings_with)


def _embeddings_with(body, model):
    remote = remote_for(model)
    if isinstance(remote, OllamaRemote):
        answer = remote.call("embeddings", dict(body, model=model.remote_model))
        return jsonify(_counted(answer, body["prompt"]))
    answer = remote.embeddings({"model": model.remote_model, "input": body["prompt"]})
    return jsonify({"embedding": answer["data"][0]["embedding"]})
