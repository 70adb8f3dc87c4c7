"""A real Servin daemon for end-to-end tests: its own roots, socket and cgroup parent,
and a cleanup that removes every process, cgroup and directory it made, even on failure."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from servin.safefs import remove_tree

CGROUP_ROOT = Path("/sys/fs/cgroup")


class ServinDaemon:
    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args  # more daemon flags, e.g. a TCP listener and its TLS files
        # short: unix socket paths are limited to 108 bytes
        self.root = Path(tempfile.mkdtemp(prefix="svn-", dir="/tmp"))
        self.data_root = self.root / "data"
        self.exec_root = self.root / "run"
        self.socket = self.root / "docker.sock"
        self.pidfile = self.root / "servin.pid"
        self.cgroup_parent = f"servin-test-{uuid.uuid4().hex[:8]}"
        self.config_file = self.root / "daemon.json"
        self.config_file.write_text("{}")
        self.log_file = self.root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # a bridge and subnet of its own (test-only range), so concurrent daemons never collide
        self.bridge = f"{TEST_BRIDGE_PREFIX}{uuid.uuid4().hex[:8]}"
        self.bip = f"10.213.{random.randrange(1, 255)}.1/24"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")
        return env

    def command(self, *hosts: str) -> list[str]:
        """The daemon's command line on its own roots, listening on `hosts` (its socket by default)."""
        listen = [arg for h in hosts or (self.host,) for arg in ("-H", h)]
        return [sys.executable, "-m", "servin.cli.main", "daemon", *listen,
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "-p", str(self.pidfile), "--config-file", str(self.config_file),
                "--cgroup-parent", self.cgroup_parent, "--bridge", self.bridge, "--bip", self.bip, "--debug",
                # no management listener on 127.0.0.1:8080 (daemons run side by side) unless a test asks
                *([] if "--management-host" in self.extra_args else ["--management-host", ""]),
                *self.extra_args]

    def start(self, timeout: float = 20.0) -> None:
        self.launch(self.command())
        self.wait_ready(timeout)

    def launch(self, cmd: list[str], **popen: Any) -> None:
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, **popen)
        log.close()

    def wait_ready(self, timeout: float = 20.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"servin exited with {self.proc.returncode}:\n{self.log()}")
            if self._ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"servin did not answer within {timeout}s:\n{self.log()}")

    def _ping(self) -> bool:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(1)
            s.connect(str(self.socket))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            s.close()

    def log(self) -> str:
        try:
            return self.log_file.read_text()[-8000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60,
               check: bool = True) -> subprocess.CompletedProcess[bytes]:
        res = subprocess.run(["docker", *args], env=self.env, input=input, capture_output=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {res.returncode}\nstdout: {res.stdout!r}\n"
                f"stderr: {res.stderr!r}\ndaemon log:\n{self.log()}")
        return res

    def cleanup(self) -> None:
        """Leave the host as it was: daemon, shims, containers, cgroups, mounts, dirs."""
        self.stop()
        for pid in _pids_mentioning(str(self.root)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        remove_cgroup_tree(self.cgroup_parent)
        _unmount_under(self.root)  # the netns files: the containers' namespaces and veths go with them
        remove_bridge(self.bridge)
        for bridge in self.user_bridges():  # networks a test created and did not remove
            remove_bridge(bridge)
        remove_tree(self.root, ignore_errors=True)  # any depth: a container may have made its tree deep

    def user_bridges(self) -> list[str]:
        """The Linux bridges of the user-defined networks in this daemon's records."""
        out = []
        for rec in (self.data_root / "network" / "networks").glob("*.json"):
            try:
                bridge = json.loads(rec.read_text()).get("bridge")
            except (OSError, ValueError):
                continue
            if bridge and bridge != self.bridge:
                out.append(bridge)
        return out


TEST_BRIDGE_PREFIX = "svt"


def remove_bridge(bridge: str) -> None:
    """The bridge, the veths on it and every iptables rule naming it (also after kill -9)."""
    res = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True)
    for line in res.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        subprocess.run(["ip", "link", "delete", name], capture_output=True)
    subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
    for family in ("iptables", "ip6tables"):
        for table, spec in iptables_rules_mentioning(bridge, family):
            subprocess.run([family, "-w", "-t", table, "-D", *spec], capture_output=True)
        _drop_empty_servin_chains(family)


def iptables_rules_mentioning(word: str, family: str = "iptables") -> list[tuple[str, list[str]]]:
    """(table, ["CHAIN", args...]) of every rule in iptables-save (or ip6tables-save) that mentions `word`."""
    res = subprocess.run([f"{family}-save"], capture_output=True, text=True)
    out, table = [], ""
    for line in res.stdout.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A ") and word in line:
            out.append((table, line.split()[1:]))
    return out


def _drop_empty_servin_chains(family: str = "iptables") -> None:
    """When no daemon's network rules are left, Servin's chains and jumps go too (as shutdown does)."""
    rules = [spec for _t, spec in iptables_rules_mentioning("SERVIN", family) if spec[0].startswith("SERVIN")]
    if any(spec != ["SERVIN-FORWARD", "-j", "SERVIN-ISOLATION"] for spec in rules):
        return  # another daemon (or the host's own Servin) still has rules
    from servin.kernel.netfilter import Netfilter
    from servin.network import rules as R

    jumps = (*R.JUMPS6, *R.STALE_JUMPS6) if family == "ip6tables" else R.JUMPS
    Netfilter(iptables=family, iptables_restore=f"{family}-restore", iptables_save=f"{family}-save").teardown(
        R.CHAINS, jumps)


def _pids_mentioning(text: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if text.encode() in (d / "cmdline").read_bytes():
                out.append(int(d.name))
        except OSError:
            pass
    return out


def remove_cgroup_tree(name: str) -> None:
    """Kill everything under <hierarchy>/<name> in every hierarchy and remove the dirs."""
    if not CGROUP_ROOT.exists():
        return
    tops = [CGROUP_ROOT / name] + [h / name for h in CGROUP_ROOT.iterdir() if h.is_dir()]
    for top in tops:
        if not top.is_dir():
            continue
        for _ in range(50):
            pids = []
            for procs in top.rglob("cgroup.procs"):
                try:
                    pids += [int(p) for p in procs.read_text().split()]
                except OSError:
                    pass
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                d.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError:
            pass


def _unmount_under(root: Path) -> None:
    prefix = str(root)
    with open("/proc/self/mounts") as f:
        targets = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for t in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", t], capture_output=True)


@contextlib.contextmanager
def running_daemon(extra_args: tuple[str, ...] = ()) -> Iterator[ServinDaemon]:
    """A started daemon with busybox:latest loaded; everything removed afterwards."""
    d = ServinDaemon(extra_args)
    try:
        d.start()
        load_busybox(d)
        yield d
    finally:
        d.cleanup()


def load_busybox(d: ServinDaemon, tag: str = "busybox:latest") -> None:
    from servin.images.seed import write_busybox_archive

    archive = d.root / "busybox.tar"
    if not archive.exists():
        write_busybox_archive(archive, tag=tag)
    out = d.docker("load", "-i", str(archive)).stdout.decode()
    assert f"Loaded image: {tag}" in out, out


