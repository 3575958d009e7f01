"""The package's layers point one way: no import cycle, the engine never imports model sync, and the
engine works in a project that does not install model sync."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "logux_sync"
ROOT = PACKAGE.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The logux_sync modules `path` imports, anywhere in it (function-level imports included, not those
    under `if TYPE_CHECKING:`), each resolved to a module of the package."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in block.body
        for node in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in MODULES}


SOURCES = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
MODULES = {module_name(p): p for p in SOURCES}
GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def test_the_import_graph_has_no_cycle() -> None:
    # The package roots (logux_sync, logux_sync.sync) only re-export: an edge into them is not a layer.
    graph = {name: {m for m in deps if m not in ("logux_sync", "logux_sync.sync")} for name, deps in GRAPH.items()}
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        path.append(name)
        for dep in sorted(graph[name]):
            visit(dep)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert len(done) == len(MODULES) > 30


def test_layers_point_down() -> None:
    model_sync = {name for name in MODULES if name.startswith("logux_sync.sync")}
    on_top = {"logux_sync", "logux_sync.testing"} | {n for n in MODULES if n.startswith("logux_sync.management")}
    engine = set(MODULES) - model_sync - on_top
    for name in engine:
        assert not GRAPH[name] & model_sync, f"{name} (engine) imports model sync: {GRAPH[name] & model_sync}"
    # The protocol layer is plain Python: no Django ORM, no HTTP, nothing of the layers above.
    for name in ("logux_sync.protocol", "logux_sync.encoded"):
        tree = ast.parse(MODULES[name].read_text())
        imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m.startswith(("django.db", "requests"))}, (name, imported)
        assert GRAPH[name] <= {"logux_sync.protocol", "logux_sync.exceptions"}, (name, GRAPH[name])
    # The package root reaches model sync lazily (see logux_sync.__getattr__), never at import.
    root = ast.parse(MODULES["logux_sync"].read_text())
    top_level = [n for n in root.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("sync" in (getattr(n, "module", "") or "") for n in top_level)


def run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_import_logux_sync_works_before_django_setup() -> None:
    out = run("import logux_sync, sys; print(logux_sync.ActionCommand.__name__, 'django.db.models' in sys.modules)")
    assert out.split()[0] == "ActionCommand"


ENGINE_ONLY = """
import json, sys
from django.conf import settings
settings.configure(
    SECRET_KEY="x", USE_TZ=True, ALLOWED_HOSTS=["*"], ROOT_URLCONF="logux_sync.urls",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "logux_sync"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    LOGUX_SYNC={"SECRET": "s"}, SILENCED_SYSTEM_CHECKS=["logux_sync.W001"],
)
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.test import Client
import logux_sync

@logux_sync.register
class Ping(logux_sync.ActionCommand):
    action_type = "ping"
    def access(self, action, meta):
        return True

call_command("migrate", verbosity=0)
call_command("check")
body = {"version": 4, "secret": "s", "commands": [
    {"command": "action", "action": {"type": "ping"}, "meta": {"id": "1 1:c:t 0", "time": 1}}]}
response = Client().post("/", json.dumps(body), content_type="application/json")
content = b"".join(response.streaming_content) if response.streaming else response.content
answers = json.loads(content) if response.status_code == 200 else [{"answer": content.decode()}]
print(json.dumps({
    "answers": [a["answer"] for a in answers],
    "tables": [t for t in connection.introspection.table_names() if "logux" in t],
    "model_sync_imported": any(m.startswith("logux_sync.sync") for m in sys.modules),
}))
"""


def test_the_engine_runs_without_model_sync() -> None:
    seen = json.loads(run(ENGINE_ONLY).strip().splitlines()[-1])
    assert seen == {"answers": ["approved", "processed"], "tables": [], "model_sync_imported": False}
