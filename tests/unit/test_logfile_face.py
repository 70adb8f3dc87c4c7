"""The core serves container logs through the runtime's one json-file reader: the names the core
and the API import from servin.core.logs are the reader's own, and the core holds no C of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from servin.core import logs, model
from servin.runtime import logfile

pytestmark = pytest.mark.unit

CORE = Path(logs.__file__).parent


def test_core_names_are_the_readers() -> None:
    for name in logs.__all__:
        assert getattr(logs, name) is getattr(logfile, name), name
    assert model.LogLine is logfile.LogLine


def test_the_core_log_module_imports_only_the_reader() -> None:
    tree = ast.parse((CORE / "logs.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "servin.runtime.logfile", "servin.core.logs"}
