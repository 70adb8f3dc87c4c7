#!/usr/bin/env python3
"""Networking cost against any Docker-API daemon, several side by side in one table.

* ``start``:   ``docker run --rm busybox true`` on the default bridge and with ``--network none``
  (real CLI, round-robin over the daemons, --runs each after 3 warm-ups): medians and their ratio
  (the issue's target: bridge at most 1.3x none);
* ``connect``: a container runs a TCP echo (``nc -ll -p 7 -e cat``) published on a host port; --clients
  threads on the host connect to 127.0.0.1:<port>, send a line, read it back and close, for
  --seconds: completed connections per second (dockerd puts its docker-proxy in that path; Servin
  DNATs it in the kernel).

    python3 bench/net.py --start-servin
    python3 bench/net.py --start-servin --host dockerd=unix:///tmp/dockerbench/docker.sock
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cli_env, daemons  # noqa: E402

LABEL = "servin-bench-net"


@dataclass
class Target:
    name: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    bridge_ms: list[float] = field(default_factory=list)
    none_ms: list[float] = field(default_factory=list)
    connects: int = 0
    connect_s: float = 0.0
    failures: int = 0


def docker(t: Target, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([shutil.which("docker") or "docker", *args], env=t.env, capture_output=True, check=check)


def timed_run(t: Target, network: str | None) -> float:
    args = ["run", "--rm", "--label", LABEL] + (["--network", network] if network else []) + ["busybox", "true"]
    t0 = time.perf_counter()
    docker(t, *args)
    return (time.perf_counter() - t0) * 1000


def measure_connect(t: Target, clients: int, seconds: float) -> None:
    cid = docker(t, "run", "-d", "--label", LABEL, "-p", "127.0.0.1::7", "busybox",
                 "nc", "-ll", "-p", "7", "-e", "cat").stdout.decode().strip()
    port = int(docker(t, "port", cid, "7/tcp").stdout.decode().split(":")[-1])
    deadline = time.monotonic() + 10
    while not _echo_once(port):  # up
        if time.monotonic() > deadline:
            raise SystemExit(f"{t.name}: the echo container never answered on 127.0.0.1:{port}")
        time.sleep(0.1)
    counts = [0] * clients
    failures = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        while time.monotonic() < stop:
            if _echo_once(port):
                counts[i] += 1
            else:
                failures[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.connect_s = time.perf_counter() - t0
    t.connects, t.failures = sum(counts), sum(failures)
    docker(t, "rm", "-f", cid)


def _echo_once(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"ping\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    return False
                data += chunk
            return data == b"ping\n"
    except OSError:
        return False


def render(targets: list[Target], args: argparse.Namespace) -> str:
    def row(label: str, values: list[str]) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    lines = [row("", [t.name for t in targets]), "|---|" + "---|" * len(targets)]
    if "start" in args.only:
        med_b = [statistics.median(t.bridge_ms) for t in targets]
        med_n = [statistics.median(t.none_ms) for t in targets]
        lines.append(row("`docker run --rm busybox true`, default bridge (median ms)", [f"{v:.0f}" for v in med_b]))
        lines.append(row("same, `--network none` (median ms)", [f"{v:.0f}" for v in med_n]))
        lines.append(row("bridge / none", [f"{b / n:.2f}x" for b, n in zip(med_b, med_n, strict=True)]))
    if "connect" in args.only:
        lines.append(row(f"connections/s through a published port ({args.clients} clients, 127.0.0.1)",
                         [f"{t.connects / t.connect_s:.0f}" + (f" ({t.failures} failed)" if t.failures else "")
                          for t in targets]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", default=[], metavar="[NAME=]URL")
    p.add_argument("--start-servin", action="store_true", help="start a throwaway Servin and measure it too")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--only", default="start,connect")
    args = p.parse_args(argv)
    args.only = set(args.only.split(","))
    config_dir = tempfile.mkdtemp(prefix="bench-cli-")
    servin = None
    targets: list[Target] = []
    try:
        found, servin = daemons(args.host, args.start_servin)
        if servin is not None:
            from tests.support.daemon import load_busybox

            load_busybox(servin)
        targets = [Target(name=name, url=url, env=cli_env(url, config_dir)) for name, url in found]
        if "start" in args.only:
            print(f"docker run --rm busybox true, bridge and none: 3 warm-ups + {args.runs} runs ...", file=sys.stderr)
            for i in range(3 + args.runs):
                for t in targets:
                    b, n = timed_run(t, None), timed_run(t, "none")
                    if i >= 3:
                        t.bridge_ms.append(b)
                        t.none_ms.append(n)
        if "connect" in args.only:
            for t in targets:
                print(f"{t.name}: connections through a published port for {args.seconds:.0f} s ...", file=sys.stderr)
                measure_connect(t, args.clients, args.seconds)
        print(render(targets, args))
        return 0
    finally:
        for t in targets:
            ids = docker(t, "ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.decode().split()
            if ids:
                docker(t, "rm", "-f", *ids, check=False)
        if servin is not None:
            servin.cleanup()
        shutil.rmtree(config_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
