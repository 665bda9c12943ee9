"""ollama-relay: Ollama's and OpenAI's APIs in front of remote model providers."""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import access, config, console, fast
from app.catalog import registry
from app.catalog.secrets import keyring_from_settings
from app.observability import request_log, telemetry, tracing
from app.remotes.cooldown import Cooldown
from app.remotes.http.client import RemoteHTTP
from app.remotes.policy import RemoteHostPolicy
from app.storage import db
from app.web import body, errors
from app.web.json_provider import JSONProvider


def create_app(overrides=None):
    app = Flask(__name__)
    app.json = JSONProvider(app)
    load_settings(app, overrides)
    telemetry.configure_logging(app.config["RELAY_LOG_LEVEL"].upper())
    # In each worker, after the fork: the exporter's thread is the worker's own.
    tracing.configure()
    trust_proxies(app)
    open_services(app)
    db.init_app(app)
    telemetry.init_app(app)
    access.init_app(app)
    request_log.init_app(app)
    errors.init_app(app)
    body.init_app(app)
    register_blueprints(app)
    console.init_app(app)
    return app


def load_settings(app, overrides):
    settings = config.load(overrides)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["RELAY_MAX_BODY_BYTES"]
    fast.configure(settings["RELAY_FAST_PATHS"])


def trust_proxies(app):
    # X-Forwarded-* is believed only from as many proxies as the operator
    # says stand in front (nginx: 1); anyone else could forge them.
    hops = app.config["RELAY_TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)


def open_services(app):
    app.extensions["relay.keyring"] = keyring_from_settings(app.config)
    policy = RemoteHostPolicy(app.config["RELAY_REMOTE_ALLOWLIST"])
    app.extensions["relay.policy"] = policy
    app.extensions["relay.http"] = RemoteHTTP(app.config, policy)
    app.extensions["relay.models"] = registry.model_cache(app.config["RELAY_INSTANCE_PATH"])
    app.extensions["relay.cooldown"] = Cooldown(
        app.config["RELAY_COOLDOWN_FAILURES"], app.config["RELAY_COOLDOWN_SECONDS"]
    )


def register_blueprints(app):
    from app.surfaces.admin import health, keys, models, requests, teams
    from app.surfaces.anthropic import views as messages
    from app.surfaces.ollama import views as ollama
    from app.surfaces.openai import views as openai
    from app.surfaces.openapi import views as openapi
    from app.surfaces.responses import views as responses

    modules = (health, models, keys, teams, requests, ollama, openai, responses, messages, openapi)
    for module in modules:
        app.register_blueprint(module.bp)
