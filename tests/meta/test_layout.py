"""The layout's rules, read from the source: what may import what.

- A surface's converters (and the chat format they share) are pure: no web
  framework, HTTP client or database, however deep the import chain.
- Remotes know no Flask and no surface.
- The CLI calls the domain, never a surface's views.
- No import cycle between the relay's modules.
"""

import ast
import pathlib

import pytest

from tests.support import paths

ROOT = pathlib.Path(paths.ROOT)
APP = ROOT / "app"

WEB = {"flask", "werkzeug", "jinja2"}
IO = {
    "requests",
    "urllib3",
    "http",
    "socket",
    "ssl",
    "peewee",
    "playhouse",
    "psycopg",
    "gevent",
    "gunicorn",
}
# Modules of a surface that convert or shape data; the rest (views, schemas,
# a store) are glue.
CONVERTER_NAMES = {"chat", "generate", "lines", "request", "stream", "items", "objects", "errors"}


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in APP.rglob("*.py")}


def _top_level_imports(tree):
    """Import statements run when the module loads (not those inside functions)."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            yield from _top_level_imports(ast.Module(body=node.body, type_ignores=[]))


def _imports(name, everywhere=False):
    """(modules of the relay, outside top-level packages) that `name` imports."""
    tree = ast.parse(MODULES[name].read_text())
    nodes = (
        [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        if everywhere
        else _top_level_imports(tree)
    )
    inner, outer = set(), set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            assert node.level == 0, f"{name}: relative import"
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [t if t in MODULES else node.module for t in targets]
        for target in targets:
            if target.split(".")[0] == "app":
                inner.add(target)
            else:
                outer.add(target.split(".")[0])
    return inner, outer


GRAPH = {name: _imports(name) for name in MODULES}


def _closure(name):
    """Every relay module `name` loads, and every outside package they import."""
    seen, outer, todo = set(), set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        inner, out = GRAPH[current]
        outer |= out
        todo.extend(inner)
    return seen, outer


def _converters():
    names = [n for n in MODULES if n.startswith("app.chat.")]
    names += [
        n
        for n in MODULES
        if n.startswith("app.surfaces.") and n.rsplit(".", 1)[-1] in CONVERTER_NAMES
    ]
    return sorted(names)


def test_the_layout_has_a_package_per_surface_and_per_shared_part():
    packages = {n for n, p in MODULES.items() if p.name == "__init__.py"}
    for surface in ("ollama", "openai", "responses", "anthropic", "admin"):
        assert f"app.surfaces.{surface}" in packages
    for part in (
        "chat",
        "catalog",
        "access",
        "remotes",
        "remotes.http",
        "storage",
        "observability",
        "cli",
        "web",
    ):
        assert f"app.{part}" in packages
    # Besides create_app's package: settings, error types, fallback routing.
    loose = {n for n, p in MODULES.items() if n.count(".") == 1 and p.name != "__init__.py"}
    assert loose == {"app.config", "app.errors", "app.routing"}


@pytest.mark.parametrize("name", _converters())
def test_converters_import_no_web_framework_http_client_or_database(name):
    loaded, outer = _closure(name)
    assert not outer & (WEB | IO), f"{name} loads {sorted(outer & (WEB | IO))}"
    assert not [m for m in loaded if m.endswith(".views") or m.startswith("app.storage")]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("app.remotes")))
def test_remotes_know_no_flask_and_no_surface(name):
    loaded, outer = _closure(name)
    assert not outer & WEB, f"{name} loads {sorted(outer & WEB)}"
    assert not [m for m in loaded if m.startswith(("app.surfaces", "app.web", "app.routing"))]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("app.cli")))
def test_the_cli_calls_no_view(name):
    inner, _ = _imports(name, everywhere=True)
    assert not [m for m in inner if m.endswith(".views") or m.startswith("app.web")]


def test_no_import_cycle():
    # Depth-first search over load-time imports; a grey module met again is a cycle.
    state, stack = {}, []

    def visit(name):
        state[name] = "grey"
        stack.append(name)
        for target in sorted(GRAPH[name][0]):
            if target not in MODULES:
                continue
            if state.get(target) == "grey":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = "black"

    for name in sorted(MODULES):
        if name not in state:
            visit(name)
