#!/usr/bin/env python3
"""What securing the API costs: request rates with and without a key, and TLS connection latency,
Servin beside dockerd.

Measures (``--only`` picks some; all by default):

* ``rate``: ``GET /_ping`` and ``GET /containers/json`` requests per second from --clients threads,
  each on one keep-alive connection, for --seconds per case, on a TCP loopback listener: Servin
  without authentication (``"auth-tcp": "none"``), Servin with an ``X-API-Key`` (a key with a rate
  limit high enough never to answer 429), and Servin and dockerd both with ``--tlsverify`` and a
  client certificate (dockerd when it is given);
* ``tls``: a new connection per request, TLS handshake with a client certificate plus
  ``GET /_ping``: median and p90 milliseconds over --tls-runs, Servin (``--tlsverify``) beside
  dockerd (``--tlsverify``) when it is given.

Servin is started here, twice, on a throwaway root (``tests/support/daemon.py``). dockerd comes from
``bench/dockerd-beside.sh --tls``, which exports DOCKERD_TLS and DOCKERD_CERTS (its ``--tlsverify``
listener on loopback and the client files made by ``servin certs generate``):

    bash bench/dockerd-beside.sh --tls bench/access.py
    python3 bench/access.py --only rate          # Servin alone
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.daemon import ServinDaemon  # noqa: E402

PATHS = ("/_ping", "/containers/json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Connect = Callable[[], http.client.HTTPConnection]


def rate(connect: Connect, path: str, headers: dict[str, str], clients: int, seconds: float) -> float:
    """Requests per second answered 200 by `clients` threads on keep-alive connections."""
    counts = [0] * clients
    failures: list[str] = []
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = connect()
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                failures.append(f"{path}: {resp.status}")
                return
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"bench: {failures[0]}")
    return sum(counts) / (time.monotonic() - began)


def tls_context(certs: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    return ctx


def tls(port: int, certs: Path, host: str = "127.0.0.1") -> Connect:
    ctx = tls_context(certs)
    return lambda: http.client.HTTPSConnection(host, port, context=ctx, timeout=30)


def tls_latency(host: str, port: int, certs: Path, runs: int) -> tuple[float, float]:
    """Median and p90 ms of: connect, TLS handshake with a client certificate, GET /_ping, close."""
    ctx = tls_context(certs)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn = http.client.HTTPSConnection(host, port, context=ctx)
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status != 200:
            raise SystemExit(f"bench: TLS /_ping answered {resp.status}")
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def tcp(port: int, host: str = "127.0.0.1") -> Connect:
    return lambda: http.client.HTTPConnection(host, port, timeout=30)


def servin(config: dict[str, object], *hosts: str) -> ServinDaemon:
    d = ServinDaemon()
    d.config_file.write_text(json.dumps(config))
    d.launch(d.command(d.host, *hosts))
    d.wait_ready()
    return d


def make_key(d: ServinDaemon) -> str:
    out = subprocess.run([sys.executable, "-m", "servin.cli.main", "-H", d.host, "api", "key", "generate",
                          "--name", "bench", "--scope", "read", "--rate-limit", "1000000/s"],
                         capture_output=True, text=True, check=True).stdout
    return next(word for word in out.split() if word.startswith("svk_"))


def generate_certs(directory: Path) -> Path:
    subprocess.run([sys.executable, "-m", "servin.cli.main", "certs", "generate", str(directory)],
                   check=True, capture_output=True)
    return directory


def tls_config(certs: Path) -> dict[str, object]:
    # a certificate has a rate limit too (api-rate-limit, 100/s by default): high enough never to answer 429
    return {"tlsverify": True, "tlscacert": str(certs / "ca.pem"), "tlscert": str(certs / "server-cert.pem"),
            "tlskey": str(certs / "server-key.pem"), "api-rate-limit": "1000000/s"}


def split_hostport(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("tcp://").rpartition(":")
    return host, int(port)


def measure_rates(args: argparse.Namespace) -> None:
    rows: dict[str, dict[str, float]] = {}
    port = free_port()
    d = servin({"auth-tcp": "none"}, f"tcp://127.0.0.1:{port}")
    try:
        rows["servin, no auth"] = {p: rate(tcp(port), p, {}, args.clients, args.seconds) for p in PATHS}
    finally:
        d.cleanup()
    port = free_port()
    d = servin({}, f"tcp://127.0.0.1:{port}")
    try:
        key = {"X-API-Key": make_key(d)}
        rows["servin, X-API-Key"] = {p: rate(tcp(port), p, key, args.clients, args.seconds) for p in PATHS}
    finally:
        d.cleanup()
    with tempfile.TemporaryDirectory() as tmp:
        certs = generate_certs(Path(tmp))
        port = free_port()
        d = servin(tls_config(certs), f"tcp://127.0.0.1:{port}")
        try:
            rows["servin, TLS client cert"] = {p: rate(tls(port, certs), p, {}, args.clients, args.seconds)
                                               for p in PATHS}
        finally:
            d.cleanup()
    if os.environ.get("DOCKERD_TLS"):
        h, p = split_hostport(os.environ["DOCKERD_TLS"])
        connect = tls(p, Path(os.environ["DOCKERD_CERTS"]), h)
        rows["dockerd, TLS client cert"] = {path: rate(connect, path, {}, args.clients, args.seconds)
                                            for path in PATHS}
    print(f"\nrequests per second, {args.clients} keep-alive clients, {args.seconds:g} s each")
    print(f"| | {' | '.join(PATHS)} |\n| --- |{' ---: |' * len(PATHS)}")
    for name, by_path in rows.items():
        print(f"| {name} | {' | '.join(f'{by_path[p]:.0f}' for p in PATHS)} |")


def measure_tls(args: argparse.Namespace) -> None:
    rows: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        certs = generate_certs(Path(tmp))
        port = free_port()
        d = servin(tls_config(certs), f"tcp://127.0.0.1:{port}")
        try:
            rows["servin --tlsverify"] = tls_latency("127.0.0.1", port, certs, args.tls_runs)
        finally:
            d.cleanup()
    if os.environ.get("DOCKERD_TLS"):
        h, p = split_hostport(os.environ["DOCKERD_TLS"])
        rows["dockerd --tlsverify"] = tls_latency(h, p, Path(os.environ["DOCKERD_CERTS"]), args.tls_runs)
    print(f"\nnew TLS connection + GET /_ping, ms (n={args.tls_runs})\n| | median | p90 |\n| --- | ---: | ---: |")
    for name, (median, p90) in rows.items():
        print(f"| {name} | {median:.2f} | {p90:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="rate,tls")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--tls-runs", type=int, default=200)
    ap.add_argument("--start-servin", action="store_true", help="accepted for dockerd-beside.sh; always true")
    ap.add_argument("--host", action="append", default=[], help="accepted for dockerd-beside.sh; see DOCKERD_*")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if "rate" in only:
        measure_rates(args)
    if "tls" in only:
        measure_tls(args)


if __name__ == "__main__":
    main()
