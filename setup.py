"""Build steps that pyproject.toml cannot express: the cffi extension servin._native and the
servin-shim binary (native/servin-shim.c -> servin/libexec/servin-shim, compiled with the system cc).

For editable installs (pip install -e .) both land in the source tree; otherwise in build_lib (and
so in the wheel). The shim is recompiled only when the source is newer than the binary.
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
SHIM_SOURCE = HERE / "native" / "servin-shim.c"
SHIM_CFLAGS = ["-O2", "-Wall", "-Wno-format-truncation", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]


def compile_shim(target: Path) -> None:
    if target.exists() and target.stat().st_mtime >= SHIM_SOURCE.stat().st_mtime:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[:1] or ["cc"]
    tmp = target.with_name(target.name + ".tmp")
    # static when libc.a is there: about half the resident memory per container (no shared libc maps)
    static = subprocess.run([*cc, *SHIM_CFLAGS, "-static", "-o", str(tmp), str(SHIM_SOURCE)], capture_output=True)
    if static.returncode != 0:
        subprocess.run([*cc, *SHIM_CFLAGS, "-o", str(tmp), str(SHIM_SOURCE)], check=True)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


class BuildExtWithShim(build_ext):
    def run(self) -> None:
        super().run()
        if self.inplace or getattr(self, "editable_mode", False):
            compile_shim(HERE / "servin" / "libexec" / "servin-shim")
        else:
            compile_shim(Path(self.build_lib) / "servin" / "libexec" / "servin-shim")

    def get_outputs(self) -> list[str]:
        outputs = list(super().get_outputs())
        if not (self.inplace or getattr(self, "editable_mode", False)):
            outputs.append(str(Path(self.build_lib) / "servin" / "libexec" / "servin-shim"))
        return outputs


setup(
    cffi_modules=["native/_native_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithShim},
)
