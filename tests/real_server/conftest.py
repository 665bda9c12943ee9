"""Fixtures of the real-server suite: llama-server serving Gemma 3 270M
(tests/support/llama_server.py), and one relay under gunicorn in front of it
with the models the tests call. Started once per session (per xdist worker):
loading the model and the relay take seconds a test should not pay."""

import pytest

from tests.support.config import relay_settings
from tests.support.llama_server import LlamaServer
from tests.support.models import create_model
from tests.support.servers import GunicornServer

# The relay's names for what llama-server serves.
CHAT = "gemma"
EMBED = "gemma-embed"
SERVER_MODEL = "gemma-3-270m"  # what the relay sends as `model` (llama-server serves one)


def pytest_collection_modifyitems(items):
    for item in items:
        if "real_server" in str(item.fspath):
            item.add_marker(pytest.mark.llama)
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def llama(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("llama"), "--jinja")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_embed(tmp_path_factory):
    server = LlamaServer(
        tmp_path_factory.mktemp("llama-embed"), "--embeddings", "--pooling", "mean"
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_relay(tmp_path_factory, llama, llama_embed):
    """The relay in front of llama-server: `gemma` (chat) and `gemma-embed`."""
    workdir = tmp_path_factory.mktemp("real-relay")
    # The default retries: test_breakages.py shows which failures they repeat.
    server = GunicornServer(relay_settings(workdir, RELAY_READ_TIMEOUT="600"), workdir)
    create_model(server, CHAT, llama.v1, **{"from": SERVER_MODEL})
    create_model(
        server, EMBED, llama_embed.v1, capabilities=["embedding"], **{"from": SERVER_MODEL}
    )
    yield server
    server.stop()
