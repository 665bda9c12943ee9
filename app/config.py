"""Settings, read once from RELAY_* environment variables and validated.

Every setting has a default that works on a fresh machine; production
overrides them through the environment (systemd's EnvironmentFile, Ansible).
"""

import os


class ConfigError(Exception):
    """A setting has a value the relay cannot run with."""


def _text(value):
    return value.strip()


def _currency(value):
    code = value.strip().upper()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValueError("must be a three-letter currency code such as USD or EUR")
    return code


def _share(value):
    number = float(value)
    if not 0 < number <= 1:
        raise ValueError("must be a number above 0 and at most 1")
    return number


def _positive_int(value):
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _positive_float(value):
    number = float(value)
    if number <= 0:
        raise ValueError("must be a positive number")
    return number


def _non_negative_int(value):
    number = int(value)
    if number < 0:
        raise ValueError("must be zero or a positive integer")
    return number


def _flag(value):
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _capture(value):
    mode = value.strip().lower()
    if mode not in ("off", "errors", "all"):
        raise ValueError("must be off, errors or all")
    return mode


def _list(value):
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _tokens(value):
    tokens = _list(value)
    # A short admin token can be guessed over the network; refuse it at start.
    if any(len(token) < 16 for token in tokens):
        raise ValueError(
            "every token must be at least 16 characters (make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return tokens


# name -> (parser, default). Defaults are strings so they pass the same parser.
SETTINGS = {
    "RELAY_INSTANCE_PATH": (_text, "instance"),
    "RELAY_DATABASE_URL": (_text, ""),
    "RELAY_DATABASE_MAX_CONNECTIONS": (_positive_int, "20"),
    "RELAY_AUTO_MIGRATE": (_flag, "true"),
    "RELAY_SECRET_KEY": (_list, ""),
    "RELAY_REMOTE_ALLOWLIST": (_list, ""),
    # 16 MiB: a whole 200K-token conversation is a small part of it, which
    # leaves room for several base64 images; and a body parsed into Python
    # objects takes many times its size, so this also bounds one request.
    "RELAY_MAX_BODY_BYTES": (_positive_int, str(16 * 1024 * 1024)),
    # Bodies over RELAY_LARGE_BODY_BYTES are parsed and handled at most
    # RELAY_LARGE_BODIES at a time per worker (app/web/body.py).
    "RELAY_LARGE_BODY_BYTES": (_positive_int, str(1024 * 1024)),
    "RELAY_LARGE_BODIES": (_positive_int, "2"),
    "RELAY_CONNECT_TIMEOUT": (_positive_float, "10"),
    # Resilience (app/remotes/retry.py): extra attempts before the first byte,
    # and the most a request waits in total between them.
    "RELAY_RETRIES": (_non_negative_int, "2"),
    "RELAY_RETRY_MAX_WAIT": (_positive_float, "10"),
    "RELAY_COOLDOWN_SECONDS": (_positive_float, "30"),
    "RELAY_COOLDOWN_FAILURES": (_positive_int, "3"),
    "RELAY_READ_TIMEOUT": (_positive_float, "300"),
    "RELAY_MAX_SSE_LINE_BYTES": (_positive_int, str(4 * 1024 * 1024)),
    "RELAY_PING_SECONDS": (_positive_float, "10"),
    "RELAY_OUTBOUND_PROXY": (_text, ""),
    "RELAY_AZURE_API_VERSION": (_text, "2024-10-21"),
    "RELAY_CA_BUNDLE": (_text, ""),
    "RELAY_TRUSTED_PROXIES": (_non_negative_int, "0"),
    "RELAY_RESPONSES_MAX_AGE_DAYS": (_positive_int, "30"),
    "RELAY_LOG_LEVEL": (_text, "INFO"),
    # Access (app/access/): the admin token list switches keys on.
    "RELAY_ADMIN_TOKEN": (_tokens, ""),
    "RELAY_ALLOW_UNAUTHENTICATED": (_flag, "false"),
    "RELAY_ORIGINS": (_list, ""),
    "RELAY_ALLOWED_HOSTS": (_list, ""),
    # Token(s) that may read /metrics from another machine (with keys on);
    # the admin token may too, and this machine needs none.
    "RELAY_METRICS_TOKEN": (_tokens, ""),
    # The measured fast paths of app/fast/, each also gated on the versions
    # it was tested with; off, every call takes the public path.
    "RELAY_FAST_PATHS": (_flag, "true"),
    # How long a sign-in to the web console lasts (app/console/session.py).
    "RELAY_CONSOLE_SESSION_HOURS": (_positive_float, "12"),
    # Spend (app/spend/): the one currency of every price, cost and budget.
    "RELAY_CURRENCY": (_currency, "USD"),
    "RELAY_REQUIRE_PRICES": (_flag, "false"),
    # Under a budget, the output limit of a request that sets none (app/spend/worst_case.py).
    "RELAY_BUDGET_MAX_TOKENS": (_positive_int, "4096"),
    # The share of a budget at which the soft alert is given.
    "RELAY_BUDGET_ALERT_SHARE": (_share, "0.8"),
    # How long a dead worker's budget lease outlives it (a live one renews its own).
    "RELAY_BUDGET_LEASE_SECONDS": (_positive_float, "30"),
    # Traces (app/observability/tracing.py) take the OTEL_* variables; this
    # adds prompts and answers to them, secrets scrubbed.
    "RELAY_TRACE_CONTENT": (_flag, "false"),
    # The request log (app/observability/request_log.py): a row per request
    # that named a model, written in batches; rows older than DAYS pruned.
    "RELAY_REQUEST_LOG": (_flag, "true"),
    "RELAY_REQUEST_LOG_DAYS": (_positive_int, "30"),
    # Rows a worker holds while the database is slow or down; past it the
    # oldest are dropped (counted in relay_request_log_dropped_total).
    "RELAY_REQUEST_LOG_BUFFER": (_positive_int, "10000"),
    # Payload capture (app/observability/capture.py): off, errors or all,
    # unless a key says otherwise; each body cut to MAX_BYTES.
    "RELAY_CAPTURE": (_capture, "off"),
    "RELAY_CAPTURE_DAYS": (_positive_int, "7"),
    "RELAY_CAPTURE_MAX_BYTES": (_positive_int, "32768"),
}


# Never quoted in an error: the message reaches logs.
_SECRETS = ("RELAY_ADMIN_TOKEN", "RELAY_SECRET_KEY", "RELAY_METRICS_TOKEN")


def load(overrides=None, environ=None):
    """Build the settings dict from the environment, then `overrides`.

    Overrides may hold parsed values (tests pass Python objects) or strings.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    settings = {}
    for name, (parse, default) in SETTINGS.items():
        if name in overrides and not isinstance(overrides[name], str):
            settings[name] = overrides[name]
            continue
        raw = overrides.get(name, environ.get(name, default))
        try:
            settings[name] = parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if name in _SECRETS else repr(raw)
            raise ConfigError(f"{name}={shown}: {exc}") from None
    settings["RELAY_INSTANCE_PATH"] = os.path.abspath(settings["RELAY_INSTANCE_PATH"])
    if not settings["RELAY_DATABASE_URL"]:
        path = os.path.join(settings["RELAY_INSTANCE_PATH"], "relay.sqlite3")
        settings["RELAY_DATABASE_URL"] = "sqlite:///" + path
    return settings
