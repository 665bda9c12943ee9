"""The `ollama-relay` CLI for tests, two ways:

- `cli_in(app)` runs a command in this process on a test's app, through
  Flask's `test_cli_runner()`: for the commands' logic (arguments, listing,
  create and revoke on the app's database).
- `cli_process(settings)` runs the installed console script in a process of
  its own with RELAY_* settings in its environment: for what only the real
  script shows (configuration and database errors, several processes at once,
  the settings of a relay under gunicorn).

Both check every run the same way: no output (the relay's log lines included)
holds one of `secrets`, none holds a traceback, and the exit code is
`expect` (an int, a tuple of them, or None for any).
"""

import io
import logging
import os
import subprocess
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

from app.cli import cli as relay_cli
from tests.support.paths import CLI

# An exit code, any of several, or None for any.
Expect = int | tuple[int, ...] | None


@dataclass
class Ran:
    """What a command printed, and how it exited."""

    stdout: str
    stderr: str
    returncode: int
    log: str = ""  # the relay's own log lines (in-process runs; a process's are in stderr)


def _expected(expect: Expect) -> tuple[int, ...] | None:
    return expect if isinstance(expect, tuple) or expect is None else (expect,)


def _check(ran: Ran, secrets: Iterable[str], expect: Expect) -> Ran:
    everything = ran.stdout + ran.stderr + ran.log
    for secret in secrets:
        assert secret not in everything, f"the CLI's output holds {secret!r}"
    assert "Traceback" not in ran.stderr, ran.stderr
    codes = _expected(expect)
    assert codes is None or ran.returncode in codes, (ran.stdout, ran.stderr)
    return ran


def cli_in(
    app: Flask, secrets: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> Callable[..., Ran]:
    """run(*args, expect=0, input=None, **environ): the command on `app`, in
    this process; `env` and `environ` are set in os.environ while it runs
    (e.g. the variable --api-key-env names)."""
    secrets = tuple(secrets)

    def run(
        *args: str,
        expect: int | tuple[int, ...] | None = 0,
        input: str | None = None,
        **environ: str,
    ) -> Ran:
        # The relay logs through the handlers of the "app" logger, made when
        # the app was: read what this command logs, to check it for secrets.
        log = io.StringIO()
        handlers = [
            h for h in logging.getLogger("app").handlers if isinstance(h, logging.StreamHandler)
        ]
        streams = [handler.setStream(log) for handler in handlers]
        try:
            result = app.test_cli_runner().invoke(
                relay_cli, list(args), input=input, env={**(env or {}), **environ}
            )
        finally:
            for handler, stream in zip(handlers, streams):
                handler.setStream(stream)
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            # What the console script would have printed.
            stderr += "".join(traceback.format_exception(result.exception))
        ran = Ran(result.stdout, stderr, result.exit_code, log.getvalue())
        return _check(ran, secrets, expect)

    return run


def cli_process(
    settings: Mapping[str, Any], secrets: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> Callable[..., Ran]:
    """run(*args, expect=0, input=None, **overrides): the console script with
    `settings` (then `env`, then `overrides`) in its environment."""
    secrets = tuple(secrets)

    def run(
        *args: str,
        expect: int | tuple[int, ...] | None = 0,
        input: str | None = None,
        **overrides: Any,
    ) -> Ran:
        environ = dict(
            os.environ, **{k: str(v) for k, v in {**settings, **(env or {}), **overrides}.items()}
        )
        result = subprocess.run(
            [CLI, *args], env=environ, input=input, capture_output=True, text=True, timeout=60
        )
        return _check(Ran(result.stdout, result.stderr, result.returncode), secrets, expect)

    return run
