#!/usr/bin/env python3
"""`DOCKER_BUILDKIT=0 docker build`, several daemons side by side.

Per daemon, round-robin: a 4-step build (FROM busybox, RUN, COPY, ENV) with --no-cache ("cold") and
again with its cache ("cached"), wall times of the real docker CLI, medians over --runs; then a
--context-mb context (random data; FROM busybox and a LABEL) sent --runs times, its time and how far
the daemon's resident memory rose above its level before the build (sampled every 20 ms).
With --compare, the output of a many-instruction Dockerfile from each daemon, IDs masked, diffed.

    python3 bench/build.py --start-servin
    bash bench/dockerd-beside.sh bench/build.py          # beside a throwaway dockerd
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from common import cli_env, daemons  # noqa: E402

FOUR_STEPS = "FROM busybox\nRUN echo hi > /hi\nCOPY f /f\nENV A=1\n"
COMPARE = """FROM busybox AS base
ARG V=1
RUN echo base-$V > /b && echo to-stderr >&2
FROM busybox
WORKDIR /app
COPY --from=base /b ./
COPY f g /many/
ADD f /added
ENV A=1 B="two words"
LABEL l=1
EXPOSE 80/udp 81
VOLUME /v
USER nobody
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD true
SHELL ["/bin/sh", "-xc"]
ONBUILD RUN echo hi
ENTRYPOINT ["echo"]
CMD ["x"]
"""
COMPARE_FILES = """ARG BASE=busybox
FROM scratch AS files
COPY d /d
FROM ${BASE}
ARG V
ENV P=${V:-unset} Q=$HOME
RUN echo $V $P > /v
RUN true
WORKDIR /tmp
WORKDIR rel
EXPOSE 8000-8002
COPY --chown=nobody:nogroup d /owned/
COPY --from=files /d /fromscratch
COPY d/sub/* /glob/
ADD arch.tgz /x/
COPY f ./
RUN ls -lnR /owned /fromscratch /glob /x /tmp/rel | sed 's/ [A-Z][a-z][a-z] .*:[0-9][0-9] / /' && cat /v
"""

BROKEN = {  # Dockerfiles whose errors are compared (the CLI's stdout and stderr)
    "unknown": "FROM busybox\nFOO bar\n",
    "missing-copy": "FROM busybox\nCOPY nosuch /x\n",
    "no-match": "FROM busybox\nCOPY *.none /x/\n",
    "many-to-file": "FROM busybox\nCOPY f g /x\n",
    "failed-run": "FROM busybox\nRUN echo out; exit 3\n",
    "empty": "\n",
    "only-comment": "# nothing\n",
    "before-from": "RUN true\nFROM busybox\n",
    "bad-signal": "FROM busybox\nSTOPSIGNAL NOPE\n",
    "bad-chown": "FROM busybox\nCOPY --chown=nosuchuser f /f\n",
    "mount": "FROM busybox\nRUN --mount=type=cache,target=/c true\n",
    "chmod": "FROM busybox\nCOPY --chmod=644 f /f\n",
    "heredoc": "FROM busybox\nRUN <<EOF\ntrue\nEOF\n",
    "empty-volume": 'FROM busybox\nVOLUME [""]\n',
    "bad-expose": "FROM busybox\nEXPOSE abc\n",
    "blank-from": "ARG X\nFROM $X\n",
    "workdir-run": "FROM busybox\nWORKDIR /w\nRUN pwd; exit 1\n",
}


def broken(t: Target, ctx: Path) -> list[str]:
    out = []
    for name, text in BROKEN.items():
        (ctx / "Dockerfile.broken").write_text(text)
        res = subprocess.run(["docker", "build", "--force-rm", "-f", str(ctx / "Dockerfile.broken"), str(ctx)],
                             env=t.env, capture_output=True, timeout=120)
        err = [ln for ln in res.stderr.decode().splitlines()
               if ln and not ln.startswith(" ") and "DEPRECATED" not in ln]
        out += [f"== {name}: exit {res.returncode}"] + masked(res.stdout.decode()) + err
    return out


@dataclass
class Target:
    name: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    pid: int = 0
    cold: list[float] = field(default_factory=list)
    cached: list[float] = field(default_factory=list)
    context: list[float] = field(default_factory=list)
    rss_rise: list[int] = field(default_factory=list)


def build(t: Target, ctx: Path, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(["docker", "build", *args, str(ctx)], env=t.env, capture_output=True, timeout=600)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{t.name}: docker build exited {res.returncode}: {res.stderr.decode()}")
    return took, res.stdout.decode()


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rise(t: Target, ctx: Path) -> tuple[float, int]:
    base = rss_kb(t.pid)
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(t.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        took, _ = build(t, ctx, "-q")
    finally:
        done.set()
        sampler.join()
    return took, (peak[0] - base) * 1024


def daemon_pid(t: Target, servin: object) -> int:
    if t.name == "servin" and servin is not None:
        return int(Path(servin.pidfile).read_text())  # type: ignore[attr-defined]
    sock = t.url.removeprefix("unix://")
    pidfile = Path(sock).with_name("docker.pid")
    return int(pidfile.read_text()) if pidfile.exists() else 0


def masked(out: str) -> list[str]:
    out = re.sub(r"\b[0-9a-f]{12}\b", "<id>", out)
    out = re.sub(r"(file|dir|multi):[0-9a-f]{64}", r"\1:<sum>", out)
    return [ln for ln in out.splitlines() if not ln.startswith("Sending build context")]


def inspect(t: Target) -> list[str]:
    """The history and config of the compared image, as lines."""
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "cmp"],
                             env=t.env, capture_output=True, timeout=60).stdout.decode()
    config = subprocess.run(["docker", "image", "inspect", "-f", "{{json .Config}}", "cmp"], env=t.env,
                            capture_output=True, timeout=60).stdout.decode()
    return masked(history) + masked(config.replace(",", ",\n"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", default=[], metavar="[NAME=]URL")
    p.add_argument("--start-servin", action="store_true")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--context-mb", type=int, default=200)
    p.add_argument("--compare", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    servin = None
    targets: list[Target] = []
    try:
        hosts, servin = daemons(args.host, args.start_servin)
        for name, url in hosts:
            t = Target(name=name, url=url, env=dict(cli_env(url, work / f"cfg-{name}"), DOCKER_BUILDKIT="0"))
            t.pid = daemon_pid(t, servin)
            targets.append(t)
        if servin is not None:
            from tests.support.daemon import load_busybox
            load_busybox(servin)
        small = work / "small"
        small.mkdir()
        (small / "Dockerfile").write_text(FOUR_STEPS)
        (small / "f").write_text("data\n")
        (small / "g").write_text("more\n")
        big = work / "big"
        big.mkdir()
        (big / "Dockerfile").write_text("FROM busybox\nLABEL big=1\n")
        with open(big / "data", "wb") as f:
            for _ in range(args.context_mb):
                f.write(os.urandom(1 << 20))
        if args.compare:
            (small / "Dockerfile.cmp").write_text(COMPARE)
            (small / "Dockerfile.files").write_text(COMPARE_FILES)
            (small / "d" / "sub").mkdir(parents=True)
            (small / "d" / "a").write_text("a")
            (small / "d" / "sub" / "b").write_text("bb")
            os.chmod(small / "d" / "a", 0o640)
            subprocess.run(["tar", "czf", str(small / "arch.tgz"), "-C", str(small), "d"], check=True)
            outs = [masked(build(t, small, "-f", str(small / "Dockerfile.cmp"), "--no-cache", "-t", "cmp")[1])
                    + inspect(t)
                    + masked(build(t, small, "-f", str(small / "Dockerfile.files"), "--no-cache", "-t", "cmp",
                                   "--build-arg", "V=given", "--label", "lab=1")[1])
                    + inspect(t) + broken(t, small) for t in targets]
            for t, out in zip(targets[1:], outs[1:], strict=True):
                diff = list(difflib.unified_diff(outs[0], out, targets[0].name, t.name, lineterm=""))
                print("\n".join(diff) if diff else f"{targets[0].name} and {t.name}: the same lines")
            print("\n".join(outs[0]))
        for t in targets:
            build(t, small)  # the cache exists
        for _ in range(args.runs):
            for t in targets:
                t.cold.append(build(t, small, "-q", "--no-cache")[0])
                t.cached.append(build(t, small, "-q")[0])
        for _ in range(max(1, args.runs // 2)):
            for t in targets:
                took, rise = peak_rise(t, big)
                t.context.append(took)
                t.rss_rise.append(rise)
        print(f"\n| {args.runs} runs | " + " | ".join(t.name for t in targets) + " |")
        print("| --- |" + " ---: |" * len(targets))
        print("| 4-step build, --no-cache (median) | " + " | ".join(
            f"{statistics.median(t.cold) * 1000:.0f} ms" for t in targets) + " |")
        print("| 4-step build, cached (median) | " + " | ".join(
            f"{statistics.median(t.cached) * 1000:.0f} ms" for t in targets) + " |")
        print(f"| {args.context_mb} MB context (median) | " + " | ".join(
            f"{statistics.median(t.context):.2f} s ({args.context_mb / statistics.median(t.context):.0f} MB/s)"
            for t in targets) + " |")
        print("| daemon RSS rise during it (max) | " + " | ".join(
            f"{max(t.rss_rise) / (1 << 20):.1f} MiB" if t.pid else "n/a" for t in targets) + " |")
    finally:
        if servin is not None:
            servin.cleanup()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
