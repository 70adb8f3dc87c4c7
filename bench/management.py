#!/usr/bin/env python3
"""The management API's list under load: ``GET /api/v1/containers`` with --containers containers
(--running of them running), median and p90 milliseconds over --runs requests on one keep-alive
connection with an ``X-API-Key`` over TCP, as a dashboard polls it. Target: median at most 20 ms
with 200 containers. Beside it, Docker's ``GET /containers/json?all=1`` on the same daemon, and on
the daemons --host names (``bash bench/dockerd-beside.sh bench/management.py`` passes its dockerd; the
containers are made there too, and removed after).

    python3 bench/management.py [--containers 200] [--running 20] [--runs 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import UnixConnection  # noqa: E402
from tests.support.daemon import ServinDaemon, load_busybox  # noqa: E402

LABEL = "servin.bench=management"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def populate(base_url: str, total: int, running: int) -> None:
    """`total` busybox containers labelled LABEL, the first `running` of them sleeping."""
    client = docker.DockerClient(base_url=base_url, version="1.41")
    try:
        for i in range(total):
            c = client.containers.create("busybox", ["sleep", "600"], labels={"servin.bench": "management"},
                                         ports={"80/tcp": None} if i % 2 else None)
            if i < running:
                c.start()
    finally:
        client.close()


def clear(base_url: str) -> None:
    client = docker.DockerClient(base_url=base_url, version="1.41")
    try:
        for c in client.containers.list(all=True, filters={"label": LABEL}):
            c.remove(force=True)
    finally:
        client.close()


def latency(conn: http.client.HTTPConnection, path: str, headers: dict[str, str], runs: int) -> tuple[float, float]:
    """Median and p90 ms of `runs` GETs of `path` (after 5 unmeasured ones)."""
    times = []
    for i in range(runs + 5):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench: {path} answered {resp.status}: {body[:200]!r}")
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def connection(url: str) -> http.client.HTTPConnection:
    if url.startswith("unix://"):
        return UnixConnection(url.removeprefix("unix://"))
    host, _, port = url.removeprefix("tcp://").removeprefix("http://").rpartition(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--containers", type=int, default=200)
    p.add_argument("--running", type=int, default=20)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--host", dest="hosts", action="append", default=[], metavar="[NAME=]URL",
                   help="another daemon for Docker's list beside Servin's (dockerd-beside.sh passes its dockerd)")
    p.add_argument("--start-servin", action="store_true", help="accepted: Servin is always started here")
    args = p.parse_args()
    rows: dict[str, tuple[float, float]] = {}
    port = free_port()
    d = ServinDaemon(("--management-host", f"tcp://127.0.0.1:{port}"))
    try:
        d.start()
        load_busybox(d)
        populate(d.host, args.containers, args.running)
        out = subprocess.run([sys.executable, "-m", "servin.cli.main", "-H", d.host, "api", "key", "generate",
                              "--name", "bench", "--scope", "read", "--rate-limit", "1000000/s"],
                             capture_output=True, text=True, check=True).stdout
        key = {"X-API-Key": next(w for w in out.split() if w.startswith("svk_"))}
        conn = connection(f"tcp://127.0.0.1:{port}")
        conn.request("GET", "/api/v1/containers?all=true", headers=key)
        total = json.loads(conn.getresponse().read())["data"]["pagination"]["total"]
        if total != args.containers:
            raise SystemExit(f"bench: the list counts {total} containers, not {args.containers}")
        for limit in (20, 100):
            path = f"/api/v1/containers?all=true&limit={limit}"
            rows[f"servin GET {path}"] = latency(conn, path, key, args.runs)
        conn.close()
        conn = connection(d.host)
        rows["servin GET /containers/json?all=1"] = latency(conn, "/containers/json?all=1", {}, args.runs)
        conn.close()
        for spec in args.hosts:
            name, sep, url = spec.partition("=")
            name, url = (name, url) if sep else ("other", spec)
            populate(url, args.containers, args.running)
            try:
                conn = connection(url)
                rows[f"{name} GET /containers/json?all=1"] = latency(conn, "/containers/json?all=1", {}, args.runs)
                conn.close()
            finally:
                clear(url)
    finally:
        d.cleanup()
    print(f"\n{args.containers} containers ({args.running} running), ms over {args.runs} requests")
    print("| | median | p90 |\n| --- | ---: | ---: |")
    for name, (median, p90) in rows.items():
        print(f"| {name} | {median:.2f} | {p90:.2f} |")
    print(json.dumps({k: v[0] for k, v in rows.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
