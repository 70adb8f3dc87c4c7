#!/usr/bin/env python3
"""Container start latency against any Docker-API daemon, several side by side in one table.

Two measurements per daemon:

* ``docker run --rm busybox true`` through the real docker CLI: wall time of the whole command
  (median and p90 of --runs, after --warmup unmeasured runs);
* create / start / wait / remove over the API with docker-py: median milliseconds per step over
  --rounds rounds (one container per round).

The daemons are measured in turn within each round (round-robin), so drift on the machine hits all
of them alike.

    python3 bench/run.py --start-servin                        # a throwaway Servin on a temp root
    python3 bench/run.py --host servin=unix:///tmp/x/s.sock --host dockerd=unix:///tmp/d/docker.sock
    python3 bench/run.py --start-servin --host dockerd=unix:///tmp/d/docker.sock --network none
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS = ("create", "start", "wait", "remove")


@dataclass
class Target:
    name: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    cli_ms: list[float] = field(default_factory=list)
    api_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    api_total_ms: list[float] = field(default_factory=list)
    server: str = ""


def parse_host(spec: str, index: int) -> tuple[str, str]:
    """``NAME=URL`` or ``URL`` (named after the socket's directory, or host<N>)."""
    name, sep, url = spec.partition("=")
    if not sep or "://" in name:
        url, name = spec, ""
    if not name:
        name = Path(url.split("://", 1)[-1]).parent.name or f"host{index}"
    return name, url


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def docker_run_cmd(args: argparse.Namespace) -> list[str]:
    cmd = [args.docker, "run", "--rm"]
    if args.network:
        cmd += ["--network", args.network]
    return cmd + [args.image, "true"]


def cli_once(t: Target, cmd: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=t.env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    ms = (time.perf_counter() - t0) * 1000
    if res.returncode != 0:
        raise SystemExit(f"{t.name}: {' '.join(cmd)} exited {res.returncode}: "
                         f"{res.stderr.decode(errors='replace').strip()}")
    return ms


def api_once(t: Target, api: object, args: argparse.Namespace) -> None:
    hc = api.create_host_config(network_mode=args.network) if args.network else None  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    cid = api.create_container(args.image, command=["true"], host_config=hc)["Id"]  # type: ignore[attr-defined]
    t1 = time.perf_counter()
    api.start(cid)  # type: ignore[attr-defined]
    t2 = time.perf_counter()
    status = api.wait(cid)  # type: ignore[attr-defined]
    t3 = time.perf_counter()
    api.remove_container(cid)  # type: ignore[attr-defined]
    t4 = time.perf_counter()
    if status.get("StatusCode") != 0:
        raise SystemExit(f"{t.name}: container exited {status}")
    times = {"create": t1 - t0, "start": t2 - t1, "wait": t3 - t2, "remove": t4 - t3}
    for step, secs in times.items():
        t.api_ms[step].append(secs * 1000)
    t.api_total_ms.append((t4 - t0) * 1000)


def check_target(t: Target, args: argparse.Namespace) -> object:
    import docker

    client = docker.DockerClient(base_url=t.url, version="1.41", timeout=120)
    try:
        v = client.version()
    except Exception as exc:  # noqa: BLE001 - any failure means this host is not usable
        raise SystemExit(f"{t.name}: cannot reach {t.url}: {exc}") from None
    t.server = f"{v.get('Version', '?')} (API {v.get('ApiVersion', '?')})"
    try:
        client.images.get(args.image)
    except docker.errors.ImageNotFound:
        raise SystemExit(f"{t.name}: image {args.image} is missing on {t.url}; "
                         f"docker load it first (see bench/RESULTS.md)") from None
    return client.api


def render(targets: list[Target], args: argparse.Namespace) -> str:
    def row(label: str, values: list[str]) -> str:
        return "| " + " | ".join([label, *values]) + " |"

    run = " ".join(["docker run --rm", *(["--network", args.network] if args.network else []),
                    args.image, "true"])
    lines = [row("", [t.name for t in targets]),
             row("---", ["---:" for _ in targets]),
             row("server", [t.server for t in targets])]
    if args.runs:
        lines.append(row(f"`{run}` median ms (n={args.runs})",
                         [f"{statistics.median(t.cli_ms):.0f}" for t in targets]))
        lines.append(row(f"`{run}` p90 ms", [f"{percentile(t.cli_ms, 90):.0f}" for t in targets]))
    if args.rounds:
        for step in STEPS:
            lines.append(row(f"API {step} median ms (n={args.rounds})",
                             [f"{statistics.median(t.api_ms[step]):.1f}" for t in targets]))
        lines.append(row("API create+start+wait+remove median ms",
                         [f"{statistics.median(t.api_total_ms):.1f}" for t in targets]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", default=[], metavar="[NAME=]URL",
                   help="a daemon to measure (unix:///path or tcp://h:p); repeat to compare")
    p.add_argument("--start-servin", action="store_true",
                   help="start a throwaway Servin daemon on a temp root (named 'servin'), load busybox "
                        "into it, and remove it all afterwards")
    p.add_argument("--image", default="busybox")
    p.add_argument("--network", default="", help="pass --network/NetworkMode to every daemon (e.g. none)")
    p.add_argument("--runs", type=int, default=30, help="measured `docker run` invocations (0 = skip)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured `docker run` invocations first")
    p.add_argument("--rounds", type=int, default=30, help="API create/start/wait/remove rounds (0 = skip)")
    p.add_argument("--docker", default=shutil.which("docker") or "docker", help="docker CLI to use")
    args = p.parse_args(argv)
    if not args.host and not args.start_servin:
        if os.environ.get("DOCKER_HOST"):
            args.host = [os.environ["DOCKER_HOST"]]
        else:
            args.start_servin = True

    config_dir = tempfile.mkdtemp(prefix="bench-cli-")  # no contexts/credential helpers from ~/.docker
    servin = None
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM cleans up like ^C does
    try:
        targets: list[Target] = []
        if args.start_servin:
            sys.path.insert(0, str(REPO))
            from tests.support.daemon import ServinDaemon, load_busybox

            servin = ServinDaemon()
            print(f"starting Servin on {servin.root} ...", file=sys.stderr)
            servin.start()
            load_busybox(servin)
            targets.append(Target(name="servin", url=servin.host))
        for i, spec in enumerate(args.host):
            name, url = parse_host(spec, i)
            targets.append(Target(name=name, url=url))
        for t in targets:
            env = dict(os.environ)
            env.pop("DOCKER_CONTEXT", None)
            env.update(DOCKER_HOST=t.url, DOCKER_CONFIG=config_dir)
            t.env = env
        apis = [check_target(t, args) for t in targets]

        cmd = docker_run_cmd(args)
        if args.runs:
            print(f"{' '.join(cmd)}: {args.warmup} warm-ups + {args.runs} runs per daemon ...", file=sys.stderr)
            for _ in range(args.warmup):
                for t in targets:
                    cli_once(t, cmd)
            for _ in range(args.runs):
                for t in targets:
                    t.cli_ms.append(cli_once(t, cmd))
        if args.rounds:
            print(f"API create/start/wait/remove: {args.rounds} rounds per daemon ...", file=sys.stderr)
            for _ in range(args.rounds):
                for t, api in zip(targets, apis, strict=True):
                    api_once(t, api, args)

        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cpu = ""
        try:
            cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
        except (OSError, StopIteration):
            pass
        print(f"{now}, {platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs {cpu}, "
              f"docker CLI {_cli_version(args.docker)}\n")
        print(render(targets, args))
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if servin is not None:
            servin.cleanup()
        shutil.rmtree(config_dir, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cli_version(docker: str) -> str:
    try:
        out = subprocess.run([docker, "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.split(",")[0].replace("Docker version", "").strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
