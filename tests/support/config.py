"""A relay's settings for tests: one builder instead of a dict per file."""

import os

from cryptography.fernet import Fernet

# One Fernet key per test process: every relay and CLI run of a process can
# read the API keys another stored.
SECRET_KEY = Fernet.generate_key().decode()
# The remote API key the shared gateway's models carry (tests/conftest.py).
GATEWAY_KEY = "sk-test-key-123456"


def relay_settings(
    workdir: str | os.PathLike[str], database_url: str | None = None, **overrides: str
) -> dict[str, str]:
    """RELAY_* settings for a relay working in `workdir`: its database (a
    SQLite file there unless `database_url`), its instance directory, this
    process's secret key, and remotes allowed on loopback (where the fake
    upstreams listen); `overrides` last."""
    return {
        "RELAY_DATABASE_URL": database_url or f"sqlite:///{workdir}/relay.sqlite3",
        "RELAY_INSTANCE_PATH": os.path.join(workdir, "instance"),
        "RELAY_SECRET_KEY": SECRET_KEY,
        "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
        **overrides,
    }
