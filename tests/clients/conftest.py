"""A relay with keys on, as a user runs it for the clients of this folder
that take it for an Ollama server or an OpenAI-compatible one."""

import pytest

from tests.support.access import ADMIN, ADMIN_TOKEN, create_key, start_relay, unique
from tests.support.models import create_model

# The providers' keys the relay's models call their remote with.
TEAM_A_KEY = "sk-upstream-team-a-5f0e1d2c"
TEAM_B_KEY = "sk-upstream-team-b-9a8b7c6d"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, upstream_server):
    """(relay, key): a relay with RELAY_ADMIN_TOKEN set, and a client key
    that may use every model. None of the keys may reach its log."""
    relay = start_relay(tmp_path_factory.mktemp("keyed"), RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    _, key = create_key(relay)
    yield relay, key
    relay.stop()
    log = relay.log()
    for secret in (key, TEAM_A_KEY, TEAM_B_KEY):
        assert secret not in log


@pytest.fixture
def keyed_model(keyed, upstream):
    """keyed_model(remote_key=TEAM_A_KEY, name=None): a model on the keyed
    relay, made by the admin, calling the fake upstream with `remote_key`."""

    def create(remote_key=TEAM_A_KEY, name=None):
        name = name or unique("m")
        create_model(keyed[0], name, upstream.url + "/v1", headers=ADMIN, remote_api_key=remote_key)
        return name

    return create
