"""The layer rules of docs/architecture.md, checked on every import in servin/ (at the top of a module
or inside a function alike): dependencies point down only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SERVIN = Path(__file__).resolve().parents[2] / "servin"

# Modules at the root of the package that any layer may use: error categories, atomic files, the tar
# stream, the in-root file walk, Docker's stream framing, Docker's sizes and durations,
# a container's CPU and memory limits, the version.
BASE = {"errors", "atomicfile", "archive", "safefs", "stdcopy", "units", "limits", "__version__"}

# What each layer may import besides BASE and itself.
ALLOWED: dict[str, set[str]] = {
    "cli": {"daemon", "client", "access"},  # `servin daemon`; `servin certs` makes TLS files (access)
    "client": set(),
    "daemon": {"access", "api", "manage", "core", "images", "registry", "network", "build", "runtime", "kernel"},
    "access": set(),
    "api": {"access", "core", "images", "registry", "network", "build"},
    "manage": {"access", "core", "images", "registry", "network"},
    "core": {"images", "registry", "network", "build", "runtime"},
    "build": {"images", "registry"},
    "images": {"kernel"},
    "registry": {"images"},
    "network": {"kernel"},
    "runtime": {"kernel", "_native"},
    "kernel": {"_native"},
    "safefs": {"kernel", "_native"},
    "archive": set(),
    "atomicfile": set(),
    "errors": set(),
    "stdcopy": set(),
    "units": set(),
    "limits": set(),
}


def _layer(path: Path) -> str:
    rel = path.relative_to(SERVIN)
    return rel.parts[0].removesuffix(".py")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, layer) of every servin module an import names."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "servin":
                names = [f"servin.{a.name}" for a in node.names]
        else:
            continue
        out += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("servin.")]
    return out


def violations() -> list[str]:
    found = []
    for path in sorted(SERVIN.rglob("*.py")):
        layer = _layer(path)
        if layer == "__init__":
            continue
        allowed = ALLOWED[layer] | BASE | {layer}
        for line, target in _imported(ast.parse(path.read_text(), str(path))):
            if target not in allowed:
                found.append(f"{path.relative_to(SERVIN.parent)}:{line}: {layer} imports {target}")
    return found


def test_every_layer_is_known() -> None:
    layers = {_layer(p) for p in SERVIN.rglob("*.py")} - {"__init__"}
    assert layers <= set(ALLOWED), f"add the new layer to ALLOWED: {sorted(layers - set(ALLOWED))}"


def test_imports_point_down() -> None:
    assert violations() == []


def test_the_checker_sees_imports_inside_functions() -> None:
    tree = ast.parse("def f():\n    from servin.kernel import procfs\nfrom servin import api, errors\n")
    assert sorted(_imported(tree)) == [(2, "kernel"), (3, "api"), (3, "errors")]
