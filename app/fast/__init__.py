"""Fast paths: measured replacements for public-API code on the hot path.

Each trick lives in a module of its own here, and only here may the relay
use another library's private names (urllib3's pool internals, CPython's
http.client internals, marshmallow's and Flask's). A module names the
versions it was tested with (`TESTED_WITH`: the Python minor and the exact
versions of the libraries whose internals it reads); it is used only when
the versions installed are exactly those, and RELAY_FAST_PATHS is on. In any
other case the caller takes the public path, which gives the same answers.
A new Python or library release therefore costs speed, never correctness or
start-up: nothing here imports a private name at load time.
"""

import sys
from collections.abc import Mapping
from importlib import metadata

# The distributions whose versions gates may name, as pip spells them.
_DISTRIBUTIONS = ("urllib3", "marshmallow", "flask", "gevent")

_wanted = True


def installed() -> dict[str, str]:
    """The versions this process runs: the Python minor ("3.11") and each
    library's (absent if not installed)."""
    found = {"python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


_INSTALLED = installed()


def tested(needs: Mapping[str, str], found: Mapping[str, str] | None = None) -> bool:
    """Whether every version in `needs` is exactly the one `found` (by
    default, the installed ones): the gate of a fast path."""
    found = _INSTALLED if found is None else found
    return all(found.get(name) == version for name, version in needs.items())


def configure(wanted: bool) -> None:
    """RELAY_FAST_PATHS, for the fast paths that are not built per app
    (create_app calls this; the last app made decides)."""
    global _wanted
    _wanted = wanted


def wanted() -> bool:
    """RELAY_FAST_PATHS as create_app last set it."""
    return _wanted
