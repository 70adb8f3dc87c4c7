"""Rooms a newcomer can hold: no module in servin/ over 600 lines, no class over 400."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SERVIN = Path(__file__).resolve().parents[2] / "servin"
MAX_FILE_LINES = 600
MAX_CLASS_LINES = 400


def oversized() -> list[str]:
    found = []
    for path in sorted(SERVIN.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(SERVIN.parent)
        if (n := len(text.splitlines())) > MAX_FILE_LINES:
            found.append(f"{name}: {n} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                if (n := node.end_lineno - node.lineno + 1) > MAX_CLASS_LINES:
                    found.append(f"{name}: class {node.name} {n} lines")
    return found


def test_no_room_needs_a_scroll_bar() -> None:
    assert oversized() == []
