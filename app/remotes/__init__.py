"""Upstream clients. `remote_for(model)` gives the client a stored model calls."""
from flask import current_app

from app import telemetry
from app.config import ConfigError
from app.errors import RelayError
from app.remotes.ollama import OllamaRemote
from app.remotes.openai import OpenAIRemote


def remote_for(model):
    """The client for a RemoteModel row, with its key decrypted for this call only."""
    http = current_app.extensions["relay.http"]
    keyring = current_app.extensions["relay.keyring"]
    try:
        key = keyring.decrypt(model.api_key) if model.api_key else None
    except ConfigError as exc:
        raise RelayError(f"model '{model.name}': {exc}") from None
    exchange = telemetry.current()
    if model.remote_type == "openai":
        return OpenAIRemote(http, model.remote_host, key, exchange,
                            azure_api_version=current_app.config["RELAY_AZURE_API_VERSION"])
    return OllamaRemote(http, model.remote_host, key, exchange)
