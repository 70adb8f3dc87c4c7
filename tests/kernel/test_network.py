"""The network layer for real, each scenario in a network namespace of its own (see
network_scenario.py): nothing touches the machine's namespace; afterwards no netns file is left."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from servin import errors
from servin.kernel.netlink import ContainerSide, Netlink

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str, tmp: Path) -> None:
    try:
        r = subprocess.run(["unshare", "--net", sys.executable, "-m", "tests.kernel.network_scenario", name, str(tmp)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        # whatever happened, no namespace file stays mounted
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mp = line.split()[4]
            if mp.startswith(str(tmp)):
                subprocess.run(["umount", "-l", mp], check=False)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
    assert not any(str(tmp) in line for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_bridge_ports_masquerade_restore_cleanup(tmp_path: Path) -> None:
    _run("bridge", tmp_path)


def test_icc_off(tmp_path: Path) -> None:
    _run("icc_off", tmp_path)


def test_a_veth_onto_a_bridge_that_is_gone_is_a_clear_error() -> None:
    """Someone ran `ip link del` on the daemon's bridge: the start fails naming it, not an IndexError."""
    side = ContainerSide(ifname="eth0", mac="02:42:0a:00:00:02", address=ipaddress.IPv4Interface("10.9.9.2/24"),
                         gateway=None, mtu=1500)
    with socket.socket(socket.AF_UNIX) as sock, pytest.raises(errors.SystemError_) as caught:
        Netlink().create_veth(host_ifname="vethgone01", bridge="svtgone0", netns_fd=-1, netns_socket=sock, side=side)
    assert caught.value.message == ("adding interface vethgone01 to bridge svtgone0 failed: could not find bridge "
                                    "svtgone0: route ip+net: no such network interface")
