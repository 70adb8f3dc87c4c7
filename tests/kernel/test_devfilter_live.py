"""Device rules on cgroup v2 (an eBPF program) on this host's real cgroup2 hierarchy: the unified
mount of a hybrid host (no controllers needed for device programs) or /sys/fs/cgroup on pure v2."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from servin.kernel.cgroups import CgroupV2, Resources

CANDIDATES = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
ROOT = next((p for p in CANDIDATES if (p / "cgroup.procs").exists() and (p / "cgroup.subtree_control").exists()),
            None)

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(ROOT is None, reason="no cgroup2 hierarchy"),
]

PROBE = """
import os
for path, flags in (("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_WRONLY),
                    ("/dev/full", os.O_RDONLY)):
    try:
        os.close(os.open(path, flags))
        print("ok")
    except OSError as e:
        print(e.strerror)
"""


def test_docker_style_device_rules_are_enforced() -> None:
    assert ROOT is not None
    mgr = CgroupV2(ROOT)
    path = f"/servin-devtest-{secrets.token_hex(4)}"
    rules = ((False, "a *:* rwm"), (True, "c 1:3 rwm"), (True, "c 1:5 r"))
    mgr.create(path, Resources(device_rules=rules))
    try:
        procs = ROOT / path.lstrip("/") / "cgroup.procs"
        res = subprocess.run(["sh", "-c", f'echo $$ > {procs} && exec "$0" -c "$1"', sys.executable, PROBE],
                             capture_output=True, text=True, timeout=30)
        # /dev/null allowed rwm; /dev/zero read only; /dev/full denied by the first rule
        assert res.stdout.split("\n")[:4] == ["ok", "ok", "Operation not permitted", "Operation not permitted"], res
        outside = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30)
        assert outside.stdout.split("\n")[:4] == ["ok", "ok", "ok", "ok"]  # only the cgroup is confined
    finally:
        mgr.destroy(path)
    assert not (ROOT / path.lstrip("/")).exists()
