#!/usr/bin/env python3
"""Container latency, density, memory and log throughput against any Docker-API daemon, several
side by side in one table.

Measures (``--only`` picks some, comma-separated; all by default):

* ``run``:  ``docker run --rm busybox true`` through the real docker CLI: wall time of the whole
  command (median and p90 of --runs, after --warmup unmeasured runs);
* ``api``:  create / start / wait / remove over the API with docker-py: median milliseconds per step
  over --rounds rounds (one container per round);
* ``exec``: ``docker exec CONTAINER true`` (real CLI) into a running ``sleep``: median of --exec-runs;
* ``many``: --many ``busybox sleep 1000`` containers created and started by --clients concurrent
  docker-py clients (threads, one connection each): wall time until the daemon lists all of them
  as running;
* ``ps``:   ``docker ps`` (real CLI) with those containers running: median of --ps-runs;
* ``mem``:  with those containers running, (daemon + every supervisor) VmRSS and PSS divided by
  their number. The daemon is the owner of the API socket; the supervisors are the other
  processes whose command line mentions the daemon's exec-root (servin-shim for Servin; containerd
  and containerd-shim-runc-v2 for dockerd);
* ``logs``: a detached container writes --log-bytes to stdout (``yes <99 a's> | head -c N``,
  100-byte lines): N / (start → exit) is the write rate; then N / the wall time of
  ``docker logs CONTAINER > /dev/null`` is the read rate;
* ``registry``: ``docker push`` and ``docker pull`` of a --registry-mb image of 4 random-data layers
  through a fresh Debian docker-registry on 127.0.0.1 per run (``bench/registry.py``; medians of
  --registry-runs).

``many``, ``ps`` and ``mem`` share one batch of containers, which is removed afterwards. The
latency measures go round-robin over the daemons (so drift on the machine hits all of them
alike); the batch and the log container are done one daemon at a time, alone on the machine.
Every container the benchmark makes carries the label ``servin-bench`` and is removed at the end,
also on failure or ^C.

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
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS = ("create", "start", "wait", "remove")
MEASURES = ("run", "api", "exec", "many", "ps", "mem", "logs", "registry")
LABEL = "servin-bench"
LOG_LINE = "a" * 99  # + "\n" = 100 bytes a line


@dataclass
class Target:
    name: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    cli_ms: list[float] = field(default_factory=list)
    api_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    api_total_ms: list[float] = field(default_factory=list)
    server: str = ""
    api: object = None
    daemon_pid: int = 0
    exec_root: str = ""
    exec_ms: list[float] = field(default_factory=list)
    many_s: float = 0.0
    ps_ms: list[float] = field(default_factory=list)
    mem: dict[str, object] = field(default_factory=dict)
    log_write_s: float = 0.0
    log_read_s: float = 0.0
    push_s: list[float] = field(default_factory=list)
    pull_s: list[float] = field(default_factory=list)


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


# ---------------------------------------------------------------- processes and memory

def socket_owner(url: str) -> int:
    """The pid that holds the listening unix socket of ``unix:///path`` (0 if not found)."""
    if not url.startswith("unix://"):
        return 0
    path = url[len("unix://"):]
    inodes = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) >= 8 and cols[7] == path and cols[5] == "01":  # 01 = listening
                inodes.add(f"socket:[{cols[6]}]")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            for fd in (d / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(d.name)
        except OSError:
            continue
    return 0


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def exec_root_of(pid: int) -> str:
    """--exec-root from a daemon's command line (dockerd's default otherwise)."""
    args = cmdline(pid)
    for i, a in enumerate(args):
        if a == "--exec-root" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--exec-root="):
            return a.split("=", 1)[1]
    return "/var/run/docker"


def supervisors(t: Target) -> list[int]:
    """Every process other than the daemon whose command line mentions its exec-root."""
    needle = t.exec_root.rstrip("/").encode()
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in (t.daemon_pid, os.getpid()):
            continue
        try:
            if needle in (d / "cmdline").read_bytes():
                out.append(int(d.name))
        except OSError:
            pass
    return out


def rss_pss_kib(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def measure_mem(t: Target, running: int) -> None:
    sups = supervisors(t)
    d_rss, d_pss = rss_pss_kib(t.daemon_pid)
    by_name: dict[str, list[int]] = {}
    s_rss = s_pss = 0
    for pid in sups:
        rss, pss = rss_pss_kib(pid)
        s_rss += rss
        s_pss += pss
        name = os.path.basename((cmdline(pid) or ["?"])[0])
        by_name.setdefault(name, []).append(rss)
    t.mem = dict(running=running, daemon_rss=d_rss, daemon_pss=d_pss, sup_rss=s_rss, sup_pss=s_pss,
                 by_name={k: (len(v), sum(v)) for k, v in sorted(by_name.items())})
    groups = ", ".join(f"{n}× {k} {kib / 1024:.1f} MiB" for k, (n, kib) in t.mem["by_name"].items())
    print(f"  {t.name}: daemon pid {t.daemon_pid} RSS {d_rss / 1024:.1f} MiB PSS {d_pss / 1024:.1f} MiB; "
          f"supervisors (cmdline mentions {t.exec_root}): {groups or 'none'}; "
          f"PSS {s_pss / 1024:.1f} MiB", file=sys.stderr)


# ---------------------------------------------------------------- containers

def host_config(api: object, args: argparse.Namespace) -> object:
    return api.create_host_config(network_mode=args.network) if args.network else None  # type: ignore[attr-defined]


def start_sleeper(api: object, args: argparse.Namespace, kind: str) -> str:
    cid = api.create_container(args.image, command=["sleep", "1000"], labels={LABEL: kind},  # type: ignore[attr-defined]
                               host_config=host_config(api, args))["Id"]
    api.start(cid)  # type: ignore[attr-defined]
    return cid


def new_api(t: Target) -> object:
    import docker

    return docker.APIClient(base_url=t.url, version="1.41", timeout=300)


def parallel(t: Target, n_clients: int, items: list, fn) -> list:  # noqa: ANN001
    """fn(api, item) for every item, by n_clients threads with a client each; results in order."""
    q: queue.Queue = queue.Queue()
    for i, item in enumerate(items):
        q.put((i, item))
    results: list = [None] * len(items)
    errors: list[BaseException] = []

    def worker() -> None:
        api = new_api(t)
        try:
            while not errors:
                try:
                    i, item = q.get_nowait()
                except queue.Empty:
                    return
                results[i] = fn(api, item)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            api.close()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise SystemExit(f"{t.name}: {errors[0]!r}")
    return results


def remove_labelled(t: Target, n_clients: int = 8) -> int:
    """Force-remove every container of this benchmark on t; how many there were."""
    api = t.api
    if api is None:
        return 0
    try:
        ids = [c["Id"] for c in api.containers(all=True, filters={"label": LABEL})]  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - best effort during cleanup
        print(f"{t.name}: cannot list containers to remove: {exc}", file=sys.stderr)
        return 0
    if ids:
        parallel(t, n_clients, ids, lambda a, cid: a.remove_container(cid, force=True))
    return len(ids)


def running_ids(t: Target) -> set[str]:
    cs = t.api.containers(filters={"label": f"{LABEL}=many", "status": "running"})  # type: ignore[attr-defined]
    return {c["Id"] for c in cs if c.get("State") == "running"}


def measure_many(t: Target, args: argparse.Namespace) -> None:
    """--many sleepers by --clients threads; seconds until the daemon lists all as running."""
    def create_start(api: object, _: int) -> str:
        return start_sleeper(api, args, "many")

    t0 = time.perf_counter()
    ids = parallel(t, args.clients, list(range(args.many)), create_start)
    while True:
        if running_ids(t) >= set(ids):
            break
        if time.perf_counter() - t0 > 600:
            raise SystemExit(f"{t.name}: {len(set(ids) - running_ids(t))} containers not running after 600 s")
        time.sleep(0.05)
    t.many_s = time.perf_counter() - t0
    print(f"  {t.name}: {args.many} running after {t.many_s:.1f} s", file=sys.stderr)


def measure_logs(t: Target, args: argparse.Namespace) -> None:
    api = t.api
    script = f"yes {LOG_LINE} | head -c {args.log_bytes}"
    cid = api.create_container(args.image, command=["sh", "-c", script], labels={LABEL: "logs"},  # type: ignore[attr-defined]
                               host_config=host_config(api, args))["Id"]
    t0 = time.perf_counter()
    api.start(cid)  # type: ignore[attr-defined]
    status = api.wait(cid, timeout=600)  # type: ignore[attr-defined]
    t.log_write_s = time.perf_counter() - t0
    if status.get("StatusCode") != 0:
        raise SystemExit(f"{t.name}: log writer exited {status}")
    cmd = [args.docker, "logs", cid]
    with open(os.devnull, "wb") as devnull:
        t0 = time.perf_counter()
        res = subprocess.run(cmd, env=t.env, stdin=subprocess.DEVNULL, stdout=devnull,
                             stderr=subprocess.PIPE, timeout=600)
        t.log_read_s = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{t.name}: docker logs exited {res.returncode}: {res.stderr.decode(errors='replace')}")
    tail = api.logs(cid, tail=1)  # type: ignore[attr-defined]
    want = (LOG_LINE + "\n").encode()
    expect_tail = want[: args.log_bytes % len(want)] if args.log_bytes % len(want) else want
    if tail != expect_tail:
        raise SystemExit(f"{t.name}: last log line is {tail[:120]!r}, expected {expect_tail[:120]!r}")
    api.remove_container(cid, force=True)  # type: ignore[attr-defined]
    mb = args.log_bytes / 1e6
    print(f"  {t.name}: wrote {mb:.0f} MB in {t.log_write_s:.2f} s, docker logs read it in "
          f"{t.log_read_s:.2f} s", file=sys.stderr)


def render(targets: list[Target], args: argparse.Namespace) -> str:
    def row(label: str, values: list[str]) -> str:
        return "| " + " | ".join([label, *values]) + " |"

    run = " ".join(["docker run --rm", *(["--network", args.network] if args.network else []),
                    args.image, "true"])
    lines = [row("", [t.name for t in targets]),
             row("---", ["---:" for _ in targets]),
             row("server", [t.server for t in targets])]
    if "run" in args.only:
        lines.append(row(f"`{run}` median ms (n={args.runs})",
                         [f"{statistics.median(t.cli_ms):.0f}" for t in targets]))
        lines.append(row(f"`{run}` p90 ms", [f"{percentile(t.cli_ms, 90):.0f}" for t in targets]))
    if "api" in args.only:
        for step in STEPS:
            lines.append(row(f"API {step} median ms (n={args.rounds})",
                             [f"{statistics.median(t.api_ms[step]):.1f}" for t in targets]))
        lines.append(row("API create+start+wait+remove median ms",
                         [f"{statistics.median(t.api_total_ms):.1f}" for t in targets]))
    if "exec" in args.only:
        lines.append(row(f"`docker exec CONTAINER true` median ms (n={args.exec_runs})",
                         [f"{statistics.median(t.exec_ms):.0f}" for t in targets]))
        lines.append(row("`docker exec CONTAINER true` p90 ms",
                         [f"{percentile(t.exec_ms, 90):.0f}" for t in targets]))
    if "many" in args.only:
        lines.append(row(f"{args.many} × `sleep 1000` create+start by {args.clients} docker-py clients: "
                         f"s until all running", [f"{t.many_s:.1f}" for t in targets]))
        lines.append(row("  = containers started per second",
                         [f"{args.many / t.many_s:.0f}" for t in targets]))
    if "ps" in args.only:
        lines.append(row(f"`docker ps` with {args.many} running: median ms (n={args.ps_runs})",
                         [f"{statistics.median(t.ps_ms):.0f}" for t in targets]))
    if "mem" in args.only:
        def per(t: Target, kind: str) -> str:
            m = t.mem
            total = m[f"daemon_{kind}"] + m[f"sup_{kind}"]  # type: ignore[operator]
            return f"{total / m['running']:.0f}"  # type: ignore[operator]

        def split(t: Target, kind: str) -> str:
            m = t.mem
            return (f"{m[f'daemon_{kind}'] / 1024:.1f} + {m[f'sup_{kind}'] / 1024:.1f}"  # type: ignore[operator]
                    f" MiB")

        lines.append(row(f"memory per running container, VmRSS KiB ((daemon + supervisors) / {args.many})",
                         [per(t, "rss") for t in targets]))
        lines.append(row("  VmRSS daemon + supervisors", [split(t, "rss") for t in targets]))
        lines.append(row("memory per running container, PSS KiB", [per(t, "pss") for t in targets]))
        lines.append(row("  PSS daemon + supervisors", [split(t, "pss") for t in targets]))
        lines.append(row("  supervisor processes",
                         ["<br>".join(f"{n}× {k}" for k, (n, _) in t.mem["by_name"].items())  # type: ignore[union-attr]
                          for t in targets]))
    if "logs" in args.only:
        mb = args.log_bytes / 1e6
        lines.append(row(f"{mb:.0f} MB to stdout (100-byte lines): write MB/s (start → exited)",
                         [f"{mb / t.log_write_s:.0f} ({t.log_write_s:.2f} s)" for t in targets]))
        lines.append(row(f"`docker logs CONTAINER > /dev/null` of those {mb:.0f} MB: read MB/s",
                         [f"{mb / t.log_read_s:.0f} ({t.log_read_s:.2f} s)" for t in targets]))
    if "registry" in args.only:
        n = args.registry_runs
        lines.append(row(f"`docker push` of {args.registry_mb} MB (4 layers) to a local registry: median s (n={n})",
                         [f"{statistics.median(t.push_s):.2f}" for t in targets]))
        lines.append(row(f"`docker pull` of it (layers removed before): median s (n={n})",
                         [f"{statistics.median(t.pull_s):.2f}" for t in targets]))
    return "\n".join(lines)


def measure_registry(targets: list[Target], args: argparse.Namespace) -> None:
    """bench/registry.py's rounds: load (untimed), push, remove, pull, remove; a fresh registry each."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_registry", REPO / "bench" / "registry.py")
    assert spec is not None and spec.loader is not None
    bench_registry = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench_registry  # its dataclasses look themselves up there
    spec.loader.exec_module(bench_registry)
    sys.path.insert(0, str(REPO))
    from tests.registry.server import Registry

    work = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        archive = work / "big.tar"
        bench_registry.write_archive(archive, args.registry_mb, 4)
        for _ in range(args.registry_runs):
            reg = Registry()
            reg.start()
            try:
                for t in targets:
                    bench_registry.one_run(t, archive, f"localhost:{reg.port}")
            finally:
                reg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
    p.add_argument("--exec-runs", type=int, default=30, help="measured `docker exec` invocations")
    p.add_argument("--many", type=int, default=200, help="containers started for many/ps/mem")
    p.add_argument("--clients", type=int, default=8, help="concurrent docker-py clients starting them")
    p.add_argument("--ps-runs", type=int, default=10, help="measured `docker ps` invocations")
    p.add_argument("--log-bytes", type=int, default=200_000_000, help="bytes the log container writes")
    p.add_argument("--registry-mb", type=int, default=100, help="size of the image pushed and pulled")
    p.add_argument("--registry-runs", type=int, default=3, help="push+pull rounds (a fresh registry each)")
    p.add_argument("--only", default=",".join(MEASURES),
                   help=f"comma-separated measures to run, of {','.join(MEASURES)} (default: all)")
    p.add_argument("--docker", default=shutil.which("docker") or "docker", help="docker CLI to use")
    args = p.parse_args(argv)
    args.only = {m.strip() for m in args.only.split(",") if m.strip()}
    if args.only - set(MEASURES):
        p.error(f"--only: unknown measure(s) {','.join(sorted(args.only - set(MEASURES)))}; "
                f"choose from {','.join(MEASURES)}")
    if not args.runs:
        args.only.discard("run")
    if not args.rounds:
        args.only.discard("api")
    if not args.only:
        p.error("nothing to measure")
    if not args.host and not args.start_servin:
        if os.environ.get("DOCKER_HOST"):
            args.host = [os.environ["DOCKER_HOST"]]
        else:
            args.start_servin = True

    config_dir = tempfile.mkdtemp(prefix="bench-cli-")  # no contexts/credential helpers from ~/.docker
    servin = None
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM cleans up like ^C does
    targets: list[Target] = []
    try:
        if args.start_servin:
            sys.path.insert(0, str(REPO))
            from tests.support.daemon import ServinDaemon, load_busybox

            servin = ServinDaemon()
            print(f"starting Servin on {servin.root} ...", file=sys.stderr)
            servin.start()
            load_busybox(servin)
            assert servin.proc is not None
            targets.append(Target(name="servin", url=servin.host, daemon_pid=servin.proc.pid,
                                  exec_root=str(servin.exec_root)))
        for i, spec in enumerate(args.host):
            name, url = parse_host(spec, i)
            pid = socket_owner(url)
            targets.append(Target(name=name, url=url, daemon_pid=pid, exec_root=exec_root_of(pid) if pid else ""))
        if "mem" in args.only:
            for t in targets:
                if not t.daemon_pid:
                    raise SystemExit(f"{t.name}: mem needs the daemon on this machine; no process holds {t.url}")
        for t in targets:
            env = dict(os.environ)
            env.pop("DOCKER_CONTEXT", None)
            env.update(DOCKER_HOST=t.url, DOCKER_CONFIG=config_dir)
            t.env = env
        apis = [check_target(t, args) for t in targets]
        for t, api in zip(targets, apis, strict=True):
            t.api = api
            if remove_labelled(t):
                print(f"{t.name}: removed containers left by an earlier run", file=sys.stderr)

        cmd = docker_run_cmd(args)
        if "run" in args.only:
            print(f"{' '.join(cmd)}: {args.warmup} warm-ups + {args.runs} runs per daemon ...", file=sys.stderr)
            for _ in range(args.warmup):
                for t in targets:
                    cli_once(t, cmd)
            for _ in range(args.runs):
                for t in targets:
                    t.cli_ms.append(cli_once(t, cmd))
        if "api" in args.only:
            print(f"API create/start/wait/remove: {args.rounds} rounds per daemon ...", file=sys.stderr)
            for _ in range(args.rounds):
                for t, api in zip(targets, apis, strict=True):
                    api_once(t, api, args)
        if "exec" in args.only:
            print(f"docker exec CONTAINER true: 3 warm-ups + {args.exec_runs} runs per daemon ...", file=sys.stderr)
            sleepers = [start_sleeper(t.api, args, "exec") for t in targets]
            for i in range(3 + args.exec_runs):
                for t, cid in zip(targets, sleepers, strict=True):
                    ms = cli_once(t, [args.docker, "exec", cid, "true"])
                    if i >= 3:
                        t.exec_ms.append(ms)
            for t, cid in zip(targets, sleepers, strict=True):
                t.api.remove_container(cid, force=True)  # type: ignore[attr-defined]
        if args.only & {"many", "ps", "mem"}:
            for t in targets:
                print(f"{t.name}: {args.many} containers by {args.clients} clients ...", file=sys.stderr)
                measure_many(t, args)
                if "ps" in args.only:
                    ps = [args.docker, "ps"]
                    cli_once(t, ps)
                    t.ps_ms = [cli_once(t, ps) for _ in range(args.ps_runs)]
                if "mem" in args.only:
                    time.sleep(1)  # let start-up garbage settle
                    measure_mem(t, len(running_ids(t)))
                t0 = time.perf_counter()
                n = remove_labelled(t, args.clients)
                print(f"  {t.name}: removed {n} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        if "logs" in args.only:
            for t in targets:
                print(f"{t.name}: {args.log_bytes / 1e6:.0f} MB through the log ...", file=sys.stderr)
                measure_logs(t, args)
        if "registry" in args.only:
            print(f"docker push/pull of {args.registry_mb} MB: {args.registry_runs} runs per daemon ...",
                  file=sys.stderr)
            measure_registry(targets, args)

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
        for t in targets:
            try:
                remove_labelled(t)
            except BaseException as exc:  # noqa: BLE001 - clean up the rest regardless
                print(f"{t.name}: cleanup failed: {exc!r}", file=sys.stderr)
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
