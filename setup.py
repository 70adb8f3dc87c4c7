"""Build steps that pyproject.toml cannot express: the cffi extension servin._native and the
servin-shim and servin-init binaries (native/servin-{shim,init}.c -> servin/libexec/, compiled
with the system cc).

For editable installs (pip install -e .) both land in the source tree; otherwise in build_lib (and
so in the wheel). A binary is recompiled only when its source is newer than it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NATIVE = HERE / "native"
PROGRAMS = ("servin-shim", "servin-init")
SHIM_CFLAGS = ["-O2", "-Wall", "-Wno-format-truncation", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]


def compile_program(name: str, libexec: Path) -> None:
    source = NATIVE / f"{name}.c"
    target = libexec / name
    newest = max(p.stat().st_mtime for p in (source, *NATIVE.glob("*.h")))  # the headers it includes
    if target.exists() and target.stat().st_mtime >= newest:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[:1] or ["cc"]
    tmp = target.with_name(target.name + ".tmp")
    # static when libc.a is there: about half the resident memory per container (no shared libc maps);
    # servin-init must be static to run in any image (it is bind-mounted into the container)
    static = subprocess.run([*cc, *SHIM_CFLAGS, "-static", "-o", str(tmp), str(source)], capture_output=True)
    if static.returncode != 0:
        subprocess.run([*cc, *SHIM_CFLAGS, "-o", str(tmp), str(source)], check=True)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


class BuildExtWithShim(build_ext):
    def run(self) -> None:
        super().run()
        inplace = self.inplace or getattr(self, "editable_mode", False)
        libexec = (HERE if inplace else Path(self.build_lib)) / "servin" / "libexec"
        for name in PROGRAMS:
            compile_program(name, libexec)

    def get_outputs(self) -> list[str]:
        outputs = list(super().get_outputs())
        if not (self.inplace or getattr(self, "editable_mode", False)):
            outputs.extend(str(Path(self.build_lib) / "servin" / "libexec" / name) for name in PROGRAMS)
        return outputs


setup(
    cffi_modules=["native/_native_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithShim},
)
