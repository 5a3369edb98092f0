"""The shape of ``ajc_gitops/`` holds: layers import one way down, NATS only in ``store/``,
no private names across modules, every user-facing error in ``errors.py``, no module past 400
lines. docs/architecture.md draws the same layers; change both together."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import ajc_gitops
from ajc_gitops.errors import AjcError

PACKAGE = Path(ajc_gitops.__file__).parent
MAX_LINES = 400

# Lowest first. A module may import its own package and any lower layer, never a higher one
# or another package of its own layer (docs/architecture.md, "Layers").
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"", "errors", "model", "names", "problems"}),
    frozenset({"state", "gowire"}),
    frozenset({"rules"}),
    frozenset({"codec"}),
    frozenset({"manifest", "connect"}),
    frozenset({"plan", "status", "store"}),
    frozenset({"render", "sync", "scheduler", "embedded", "output"}),
    frozenset({"commands"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
PURE = frozenset({"", "errors", "model", "names", "state", "problems", "gowire", "rules", "codec", "manifest"})
PURE |= {"connect", "plan", "render", "status"}


def layer_of(unit: str) -> int:
    for rank, units in enumerate(LAYERS):
        if unit in units:
            return rank
    raise AssertionError(f"ajc_gitops.{unit} is in no layer: add it to LAYERS and to docs/architecture.md")


def unit_of(module: str) -> str:
    """``ajc_gitops.store.kv.reads`` -> ``store``; ``ajc_gitops`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def imports(path: Path) -> Iterator[tuple[str, tuple[str, ...], int]]:
    """(imported module, names imported from it, line) for every import, lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            assert node.module is not None
            yield node.module, tuple(a.name for a in node.names), node.lineno


def layer_violations(edges: Iterable[tuple[str, str, int]]) -> list[str]:
    """``importer:line imports imported`` for every edge against the layer direction."""
    found = []
    for importer, imported, line in edges:
        if not imported.startswith("ajc_gitops"):
            continue
        src, dst = unit_of(importer), unit_of(imported)
        if src == dst:
            continue
        if layer_of(dst) >= layer_of(src):
            found.append(f"{importer}:{line} imports {imported} (layer {layer_of(src)} -> {layer_of(dst)})")
    return found


def project_edges() -> list[tuple[str, str, int]]:
    edges = []
    for module, path in modules():
        for imported, names, line in imports(path):
            edges.append((module, imported, line))
            # ``from ajc_gitops import output`` imports the module ajc_gitops.output.
            edges += [(module, f"{imported}.{n}", line) for n in names if (PACKAGE / n).exists()
                      or (PACKAGE / f"{n}.py").exists()] if imported == "ajc_gitops" else []  # fmt: skip
    return edges


def test_every_import_goes_down_the_layers() -> None:
    assert layer_violations(project_edges()) == []


def test_the_layer_check_catches_an_upward_import() -> None:
    # The checker itself must be able to fail: a codec module importing the store, a renderer
    # importing sync (same layer), and a store module importing its own package are judged.
    edges = [
        ("ajc_gitops.codec.task", "ajc_gitops.store", 7),
        ("ajc_gitops.render.plan_text", "ajc_gitops.sync.apply", 3),
        ("ajc_gitops.store.kv.reads", "ajc_gitops.store.kv.errors", 9),
        ("ajc_gitops.commands.plan", "ajc_gitops.plan.diff", 5),
    ]
    assert layer_violations(edges) == [
        "ajc_gitops.codec.task:7 imports ajc_gitops.store (layer 3 -> 5)",
        "ajc_gitops.render.plan_text:3 imports ajc_gitops.sync.apply (layer 6 -> 6)",
    ]


def test_only_the_store_imports_nats_and_pure_layers_never_asyncio() -> None:
    bad = []
    for module, path in modules():
        unit = unit_of(module)
        for imported, _, line in imports(path):
            top = imported.split(".")[0]
            if top == "nats" and unit != "store":
                bad.append(f"{module}:{line} imports {imported} (only store/ talks to NATS)")
            if top == "asyncio" and unit in PURE:
                bad.append(f"{module}:{line} imports asyncio (a pure layer)")
    assert bad == []


def test_the_kv_core_never_imports_the_asyncjobs_adapters_and_outsiders_use_the_facade() -> None:
    bad = []
    for module, path in modules():
        for imported, _, line in imports(path):
            if module.startswith("ajc_gitops.store.kv") and imported.startswith("ajc_gitops.store.asyncjobs"):
                bad.append(f"{module}:{line} imports {imported}")
            if unit_of(module) != "store" and imported.startswith("ajc_gitops.store."):
                bad.append(f"{module}:{line} imports {imported}: import from ajc_gitops.store")
    assert bad == []


def test_no_private_name_is_imported_across_modules() -> None:
    bad = [
        f"{module}:{line} imports {name} from {imported}"
        for module, path in modules()
        for imported, names, line in imports(path)
        if imported.startswith("ajc_gitops")
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert bad == []


@pytest.mark.parametrize("module", [m for m, _ in modules()])
def test_module_is_at_most_400_lines(module: str) -> None:
    path = dict(modules())[module]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path}: {lines} lines; split it by job"


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_user_facing_error_is_defined_in_errors_py() -> None:
    for info in pkgutil.walk_packages(ajc_gitops.__path__, "ajc_gitops."):
        if info.name != "ajc_gitops.__main__":
            importlib.import_module(info.name)
    outside = sorted(
        f"{c.__module__}.{c.__qualname__}" for c in _subclasses(AjcError) if c.__module__ != AjcError.__module__
    )
    assert outside == []
    doc = importlib.import_module("ajc_gitops.errors").__doc__ or ""
    missing = [c.__name__ for c in _subclasses(AjcError) if c.__name__ not in doc]
    assert missing == [], "draw them in the tree of errors.py's docstring"
