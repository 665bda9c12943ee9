"""The models a request may see and use: the registry, seen through the
caller's key, the client that calls a model's remote, and the fallbacks that
serve a model whose remote fails."""

import json

from flask import current_app, request

from app import access
from app.catalog import registry
from app.config import ConfigError
from app.errors import RelayError, UpstreamError
from app.observability import telemetry
from app.remotes.ollama import OllamaRemote
from app.remotes.openai import OpenAIRemote
from app.remotes.retry import RETRY_CODES, RETRY_STATUSES
from app.spend import prices, worst_case


def remote_for(model):
    """The client for a RemoteModel row, with its key decrypted for this call only."""
    http = current_app.extensions["relay.http"]
    keyring = current_app.extensions["relay.keyring"]
    try:
        key = keyring.decrypt(model.api_key) if model.api_key else None
    except ConfigError as exc:
        raise RelayError(f"model '{model.name}': {exc}") from None
    exchange = telemetry.current()
    reasoning_none = model.reasoning_none is not False
    if key and exchange is not None and exchange.capture:
        exchange.secrets.append(key)  # scrubbed from captured payloads
    if model.remote_type == "openai":
        return OpenAIRemote(
            http,
            model.remote_host,
            key,
            exchange,
            azure_api_version=current_app.config["RELAY_AZURE_API_VERSION"],
            reasoning_none=reasoning_none,
        )
    return OllamaRemote(http, model.remote_host, key, exchange, reasoning_none)


def model_to_use(name):
    """The model `name`, for a request that calls its remote: the key must
    allow the model, and the call counts against the key's rate limits."""
    access.permit_model(name)
    access.admit()
    return registry.resolve(name)


def model_to_show(name):
    access.permit_model(name)
    return registry.resolve(name)


def visible_models():
    who = access.caller()
    return [model for model in registry.all_models() if who.may_use(model.name)]


def _may_fall_back(error, model):
    # What retries could not cure may be another remote's to serve; the
    # request's own faults (400, 413, 422) are not. A remote refusing the
    # key is, when the model says so (another key or region may take it).
    if error.code in RETRY_CODES or error.status in RETRY_STATUSES or error.code == "cooling_down":
        return True
    return model.fallback_on_auth_errors and error.status in (401, 403, 404)


def _reserve(body, model, exchange):
    """Reserve the worst-case cost of calling `model` against the caller's
    budgets (app/spend/budgets.py): 429 insufficient_quota if it does not fit.
    The request's end settles it (app/access/__init__.py)."""
    budgets = access.budgets()
    if not budgets or exchange is None:
        return
    raw = request.content_length if not request.headers.get("Content-Encoding") else None
    amount = worst_case.reservation(
        exchange.price,
        body,
        raw if raw is not None else len(json.dumps(body, ensure_ascii=False).encode()),
        exchange.route,
        model.parameters,
        current_app.config["RELAY_BUDGET_MAX_TOKENS"],
    )
    exchange.reservation = current_app.extensions["relay.budgets"].reserve(budgets, amount)


def _release(exchange):
    """A failed attempt cost nothing: free its reservation for the next."""
    if exchange is not None and exchange.reservation is not None:
        current_app.extensions["relay.budgets"].release(exchange.reservation)
        exchange.reservation = None


def _target(model):
    return f"{model.remote_host} {model.remote_model}"


def serve(body, answer):
    """`answer(body, model)` for the model that `body` names, then, while its
    remote fails in a way a fallback may cure, for each of its fallbacks in
    order. The answer keeps the name the client asked for; the log and
    metrics name the model that served. A remote in cool-down is skipped."""
    asked = model_to_use(body["model"])
    cooldown = current_app.extensions["relay.cooldown"]
    exchange = telemetry.current()
    if exchange is not None:
        exchange.asked_model = asked.name  # the model asked for, whoever serves
    error = None
    for model in registry.fallback_chain(asked):
        if exchange is not None:
            # The price in force when the call is made is the one it costs.
            exchange.model, exchange.price = model.name, prices.of(model)
        wait = cooldown.remaining(_target(model))
        if wait:
            error = error or UpstreamError(
                f"the remote of model '{model.name}' failed repeatedly and cools down: it is "
                f"skipped for {wait:.0f} more seconds (RELAY_COOLDOWN_SECONDS)",
                status=503,
                code="cooling_down",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
            continue
        _reserve(body, model, exchange)
        if exchange is not None:
            exchange.remote_model = model.remote_model
            exchange.models_called += 1
            exchange.fallback = None if model is asked else model.name
        try:
            result = answer(body, model)
        except UpstreamError as failure:
            if not _may_fall_back(failure, asked):
                raise
            cooldown.failed(_target(model))
            error = failure
            _release(exchange)
            if exchange is not None:
                exchange.attempt_failed(failure)
            continue
        cooldown.succeeded(_target(model))
        return result
    raise error
