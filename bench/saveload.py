#!/usr/bin/env python3
"""`docker save` and `docker load` of a ~100 MB image, several daemons side by side.

The image is the one bench/registry.py makes (--layers layers of random data, --mb in all). Per run
and per daemon: ``docker load -i`` of that archive with the image absent (timed), then ``docker
save -o`` of it to a file (timed), then the image is removed. Wall times of the real docker CLI;
medians over --runs, round-robin over the daemons.

    python3 bench/saveload.py --start-servin
    bash bench/dockerd-beside.sh bench/saveload.py          # beside a throwaway dockerd
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from common import cli_env, daemons  # noqa: E402
from registry import TAG, write_archive  # noqa: E402 - the same image as the registry bench


@dataclass
class Target:
    name: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    load_s: list[float] = field(default_factory=list)
    save_s: list[float] = field(default_factory=list)


def docker(t: Target, *args: str, check: bool = True) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([shutil.which("docker") or "docker", *args], env=t.env, capture_output=True, timeout=600)
    if check and res.returncode != 0:
        raise SystemExit(f"{t.name}: docker {' '.join(args)} exited {res.returncode}: {res.stderr.decode()}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", default=[], metavar="[NAME=]URL")
    p.add_argument("--start-servin", action="store_true")
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-saveload-"))
    servin = None
    targets: list[Target] = []
    try:
        archive = work / "image.tar"
        write_archive(archive, args.mb, args.layers)
        found, servin = daemons(args.host, args.start_servin)
        targets = [Target(name=name, url=url, env=cli_env(url, work)) for name, url in found]
        for t in targets:
            docker(t, "rmi", "-f", TAG, check=False)
        print(f"{args.mb} MB in {args.layers} layers: {args.runs} load + save runs per daemon ...", file=sys.stderr)
        for _ in range(args.runs):
            for t in targets:
                t.load_s.append(docker(t, "load", "-q", "-i", str(archive)))
                out = work / f"saved-{t.name}.tar"
                t.save_s.append(docker(t, "save", "-o", str(out), TAG))
                out.unlink()
                docker(t, "rmi", "-f", TAG)
        print("| | " + " | ".join(t.name for t in targets) + " |")
        print("|---|" + "---:|" * len(targets))
        print(f"| `docker load -i` {args.mb} MB (median s) | "
              + " | ".join(f"{statistics.median(t.load_s):.2f}" for t in targets) + " |")
        print(f"| `docker save -o` {args.mb} MB (median s) | "
              + " | ".join(f"{statistics.median(t.save_s):.2f}" for t in targets) + " |")
        return 0
    finally:
        for t in targets:
            docker(t, "rmi", "-f", TAG, check=False)
        if servin is not None:
            servin.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
