"""Every C file in native/ compiles on its own with -Wall -Wextra -Werror (and -O2, which the
format-truncation checks need): a warning fails the suite, not only the build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

NATIVE = Path(__file__).resolve().parents[2] / "native"
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]
CC = shutil.which("cc") or shutil.which("gcc")


def have_header(name: str) -> bool:
    if CC is None:
        return False
    probe = subprocess.run([CC, "-E", "-x", "c", "-"], input=f"#include <{name}>\n".encode(), capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.parametrize("source", sorted(p.name for p in NATIVE.glob("*.c")))
def test_compiles_without_warnings(source: str, tmp_path: Path) -> None:
    if not have_header("seccomp.h"):
        pytest.skip("libseccomp-dev is not installed")
    done = subprocess.run([CC, *CFLAGS, "-I", str(NATIVE), "-c", "-o", str(tmp_path / "out.o"), str(NATIVE / source)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_c_file_is_built() -> None:
    """A C file in native/ that no build step compiles would rot unseen."""
    build = (NATIVE / "_native_build.py").read_text() + (NATIVE.parent / "setup.py").read_text()
    assert [p.name for p in NATIVE.glob("*.c") if f'"{p.name}"' not in build] == []
