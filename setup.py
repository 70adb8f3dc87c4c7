"""Build steps that pyproject.toml cannot express: the cffi extension servin._native (its C in
native/*.c, see native/_native_build.py) and the servin-shim and servin-init binaries
(native/servin-{shim,init}.c -> servin/libexec/, compiled with the system cc).

For editable installs (pip install -e .) both land in the source tree; otherwise in build_lib (and
so in the wheel). A binary is recompiled only when one of its sources or headers is newer than it.
All C is compiled with -Wall -Wextra -Werror: a warning fails the build.
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
# each program: its C files (the headers in native/ count as dependencies of every one)
PROGRAMS = {"servin-shim": ("servin-shim.c", "inroot.c"), "servin-init": ("servin-init.c",)}
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]


def compile_program(name: str, libexec: Path) -> None:
    sources = [str(NATIVE / source) for source in PROGRAMS[name]]
    target = libexec / name
    newest = max(Path(p).stat().st_mtime for p in (*sources, *NATIVE.glob("*.h")))
    if target.exists() and target.stat().st_mtime >= newest:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[:1] or ["cc"]
    tmp = target.with_name(target.name + ".tmp")
    # static when libc.a is there: about half the resident memory per container (no shared libc maps);
    # servin-init must be static to run in any image (it is bind-mounted into the container)
    static = subprocess.run([*cc, *CFLAGS, "-static", "-o", str(tmp), *sources], capture_output=True)
    if static.returncode != 0:
        subprocess.run([*cc, *CFLAGS, "-o", str(tmp), *sources], check=True)
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
