"""Names of keys and teams: what they may be spelled as, everywhere."""

import re

# [0-9A-Za-z], not \w: \w takes any script's letters. fullmatch: $ alone
# would let a final newline through.
PATTERN = r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"
_NAME = re.compile(PATTERN)
# Names the relay itself uses for callers without a client key, and for "no team".
RESERVED = ("admin", "-")
RULE = "1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit (not 'admin')"


def valid(name):
    return isinstance(name, str) and bool(_NAME.fullmatch(name)) and name not in RESERVED
