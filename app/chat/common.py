"""What the converters share: the message of an unfinished answer, and ids."""

import secrets

INCOMPLETE = "the remote's stream ended before the answer was complete"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"
