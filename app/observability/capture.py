"""Payload capture: a request's and its answer's bodies, kept for debugging.

Off by default. RELAY_CAPTURE (off, errors, all) sets it for the deployment;
a key's own setting (`keys update K --capture ...`, PATCH /api/keys
`capture`) wins over it for that key's requests. `errors` keeps the bodies
of requests that ended with a status of 400 or more, an in-band stream
error or a client that left. What is kept has its secrets scrubbed (the
remote's key, any `orl-` key, bearer tokens, provider keys, and the values
of fields named like keys, tokens and passwords) and is cut to
RELAY_CAPTURE_MAX_BYTES per body. Pure: no web framework, no database.
"""

import re

MODES = ("off", "errors", "all")
MASK = "***"

# A secret straddling the first cut is scrubbed whole, then the second cut
# drops what is past the limit: no secret is longer than this margin.
_MARGIN = 512
_FIELD = re.compile(
    r'("(?:[A-Za-z_-]*api[_-]?key|authorization|proxy-authorization|x-api-key|password|passwd|'
    r'secret|client_secret|token|access_token|refresh_token|id_token)"\s*:\s*")'
    r'(?:[^"\\]|\\.)*(")',
    re.IGNORECASE,
)
_PATTERNS = (
    (re.compile(r"orl-[A-Za-z0-9_-]+"), "orl-" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + MASK),
    # Provider keys as OpenAI, Anthropic and DashScope issue them.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-" + MASK),
)


def mode_for(deployment, key_setting):
    """The capture mode of a request: the key's own setting, else the
    deployment's; None when off."""
    mode = key_setting or deployment
    return None if mode in (None, "off") else mode


def keeps(mode, status, failed, error_code):
    """Whether a request's bodies are kept under `mode`."""
    if mode == "all":
        return True
    return mode == "errors" and (failed or (status or 0) >= 400 or error_code is not None)


def scrubbed(data, secrets, limit):
    """`data` (bytes) as text with its secrets masked, cut to `limit` bytes
    of UTF-8; and its size before the cut. None stays None."""
    if data is None:
        return None, 0
    size = len(data)
    text = bytes(data[: limit + _MARGIN]).decode("utf-8", "replace")
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _FIELD.sub(r"\1" + MASK + r"\2", text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    encoded = text.encode("utf-8")
    if len(encoded) > limit:
        text = encoded[:limit].decode("utf-8", "ignore")
    return text, size
