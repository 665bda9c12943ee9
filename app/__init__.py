"""ollama-relay: Ollama's and OpenAI's APIs in front of remote model providers."""
import logging

from flask import Flask

from app import config, db, errors
from app.crypto import keyring_from_settings
from app.remotes.http import RemoteHTTP
from app.remotes.policy import RemoteHostPolicy


def create_app(overrides=None):
    app = Flask(__name__)
    load_settings(app, overrides)
    configure_logging(app)
    open_services(app)
    db.init_app(app)
    errors.init_app(app)
    register_blueprints(app)
    return app


def load_settings(app, overrides):
    settings = config.load(overrides)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["RELAY_MAX_BODY_BYTES"]
    app.json.sort_keys = False


def configure_logging(app):
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(app.config["RELAY_LOG_LEVEL"].upper())


def open_services(app):
    app.extensions["relay.keyring"] = keyring_from_settings(app.config)
    policy = RemoteHostPolicy(app.config["RELAY_REMOTE_ALLOWLIST"])
    app.extensions["relay.policy"] = policy
    app.extensions["relay.http"] = RemoteHTTP(app.config, policy)


def register_blueprints(app):
    from app.api import health, models, ollama, openai, responses

    for module in (health, models, ollama, openai, responses):
        app.register_blueprint(module.bp)
