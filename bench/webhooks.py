#!/usr/bin/env python3
"""Webhook delivery: how long from an engine event to its POST, and whether a burst all arrives.

* ``latency``: --events volume creations one after another (`POST /volumes/create` on the daemon's socket,
  a pause between), each a `volume.create` event; latency = the receiver's clock at arrival minus the
  payload's `timestamp` (the engine's event time, millisecond precision). Median, p90, max.
* ``burst``: --burst volume creations from --clients threads at once; how long the daemon took to publish
  them, how long until the receiver had them all, and how many were lost, repeated or out of order.

The receiver is an HTTP server on 127.0.0.1 that answers 204 at once. Servin is started here on a
throwaway root (tests/support/daemon.py) unless --host names a Servin's unix socket:

    python3 bench/webhooks.py
    python3 bench/webhooks.py --events 200 --burst 1000
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import UnixConnection  # noqa: E402
from tests.support.daemon import ServinDaemon  # noqa: E402


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any], str]] = []  # (time, payload, delivery id)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the daemon's client keeps its connection

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                at = time.time()
                with receiver.lock:
                    receiver.arrivals.append((at, json.loads(body), self.headers["X-Servin-Delivery"]))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, n: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < n and time.monotonic() < deadline:
            time.sleep(0.001)
        return time.time()


def call(sock: str, method: str, path: str, body: Any = None) -> Any:
    conn = UnixConnection(sock)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None
    finally:
        conn.close()


def event_time(payload: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).timestamp()


def latency(sock: str, receiver: Receiver, n: int, prefix: str) -> list[float]:
    out = []
    for i in range(n):
        before = len(receiver.arrivals)
        call(sock, "POST", "/volumes/create", {"Name": f"{prefix}{i}"})
        receiver.wait(before + 1, 5)
        at, payload, _id = receiver.arrivals[-1]
        out.append((at - event_time(payload)) * 1000)
        time.sleep(0.02)
    return out


def burst(sock: str, receiver: Receiver, n: int, clients: int, prefix: str) -> dict[str, Any]:
    before = len(receiver.arrivals)
    per = n // clients

    def make(c: int) -> None:
        conn = UnixConnection(sock)
        for i in range(per):
            conn.request("POST", "/volumes/create", body=json.dumps({"Name": f"{prefix}{c}-{i}"}).encode(),
                          headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 201, resp.status
        conn.close()

    start = time.time()
    threads = [threading.Thread(target=make, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    published = time.time()
    done = receiver.wait(before + per * clients, 120)
    got = receiver.arrivals[before:]
    names = [p["data"]["name"] for _at, p, _id in got]
    times = [p["timestamp"] for _at, p, _id in got]
    return {"events": per * clients, "publish_s": published - start, "all_delivered_s": done - start,
            "delivered": len(set(names)), "lost": per * clients - len(set(names)),
            "repeated": len(names) - len(set(names)), "in_order": times == sorted(times)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", help="unix:///path of a running Servin (default: start one)")
    p.add_argument("--events", type=int, default=100, help="latency samples")
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--clients", type=int, default=8, help="threads making the burst")
    args = p.parse_args()
    daemon = None
    if args.host:
        sock = args.host.removeprefix("unix://")
    else:
        daemon = ServinDaemon()
        daemon.start()
        sock = str(daemon.socket)
    receiver = Receiver()
    try:
        hook = call(sock, "POST", "/api/v1/webhooks", {"url": receiver.url, "events": ["volume.create"]})["data"]
        lat = latency(sock, receiver, args.events, "wh-lat-")
        lat.sort()
        print(f"event to POST, {len(lat)} events one by one: median {statistics.median(lat):.1f} ms, "
              f"p90 {lat[int(len(lat) * 0.9) - 1]:.1f} ms, max {lat[-1]:.1f} ms")
        b = burst(sock, receiver, args.burst, args.clients, "wh-burst-")
        print(f"burst of {b['events']} events from {args.clients} clients: published in {b['publish_s']:.2f} s, "
              f"all delivered {b['all_delivered_s']:.2f} s after the first request; delivered {b['delivered']}, "
              f"lost {b['lost']}, repeated {b['repeated']}, in order: {b['in_order']}")
        call(sock, "DELETE", f"/api/v1/webhooks/{hook['id']}")
        if args.host:
            call(sock, "POST", "/volumes/prune")
    finally:
        receiver.server.shutdown()
        if daemon is not None:
            daemon.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
