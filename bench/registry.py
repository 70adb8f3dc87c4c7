#!/usr/bin/env python3
"""Pull and push of a ~100 MB image through a local docker-registry, several daemons side by side.

The bench writes a docker-archive of --layers layers of random data (--mb in all, so compression
cannot help) and, per run and per daemon: ``docker load``s it (not timed), tags it into a fresh
docker-registry on 127.0.0.1 (a new one per run, so nothing is already there), times ``docker push``,
removes the image (its layers go too), times ``docker pull``, and removes it again. Wall times of
the real docker CLI; medians over --runs.

    python3 bench/registry.py --start-servin
    python3 bench/registry.py --start-servin --host dockerd=unix:///tmp/dockerbench/docker.sock
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from common import cli_env, daemons  # noqa: E402
TAG = "servin-bench/registry-big:latest"


@dataclass
class Target:
    name: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    push_s: list[float] = field(default_factory=list)
    pull_s: list[float] = field(default_factory=list)


def docker(t: Target, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    res = subprocess.run([shutil.which("docker") or "docker", *args], env=t.env, capture_output=True, timeout=600)
    if check and res.returncode != 0:
        raise SystemExit(f"{t.name}: docker {' '.join(args)} exited {res.returncode}: {res.stderr.decode()}")
    return res


def write_archive(path: Path, total_mb: int, layers: int) -> None:
    """A docker-archive (docker save format) of random-data layers, one file per layer."""
    per = total_mb * 1_000_000 // layers
    diff_ids, names = [], []
    with tarfile.open(path, "w") as outer:
        for i in range(layers):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                info = tarfile.TarInfo(f"data/layer{i}.bin")
                info.size, info.mtime, info.mode = per, 1_700_000_000, 0o644
                tf.addfile(info, io.BytesIO(os.urandom(per)))
            data = buf.getvalue()
            digest = hashlib.sha256(data).hexdigest()
            diff_ids.append("sha256:" + digest)
            names.append(f"{digest}/layer.tar")
            info = tarfile.TarInfo(names[-1])
            info.size = len(data)
            outer.addfile(info, io.BytesIO(data))
        config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-11-22T00:00:00Z",
                             "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                             "history": [{"created": "2026-11-22T00:00:00Z"} for _ in diff_ids]}).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps([{"Config": config_name, "RepoTags": [TAG], "Layers": names}]).encode()
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            outer.addfile(info, io.BytesIO(data))


def one_run(t: Target, archive: Path, registry_host: str) -> None:
    remote = f"{registry_host}/bench/{t.name}:latest"
    docker(t, "load", "-i", str(archive))
    docker(t, "tag", TAG, remote)
    t0 = time.perf_counter()
    docker(t, "push", remote)
    t.push_s.append(time.perf_counter() - t0)
    docker(t, "rmi", remote, TAG)
    t0 = time.perf_counter()
    docker(t, "pull", remote)
    t.pull_s.append(time.perf_counter() - t0)
    docker(t, "rmi", remote)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", default=[], metavar="[NAME=]URL")
    p.add_argument("--start-servin", action="store_true", help="start a throwaway Servin and measure it too")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--mb", type=int, default=100, help="image size in MB (random data)")
    p.add_argument("--layers", type=int, default=4)
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.registry.server import Registry

    work = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    servin = None
    targets: list[Target] = []
    try:
        archive = work / "big.tar"
        print(f"writing a {args.mb} MB image of {args.layers} random layers ...", file=sys.stderr)
        write_archive(archive, args.mb, args.layers)
        found, servin = daemons(args.host, args.start_servin)
        targets = [Target(name=name, url=url, env=cli_env(url, work / "cli")) for name, url in found]
        for run in range(args.runs):
            reg = Registry()
            reg.start()
            try:
                for t in targets:
                    one_run(t, archive, f"localhost:{reg.port}")
                    print(f"  run {run + 1} {t.name}: push {t.push_s[-1]:.2f} s, pull {t.pull_s[-1]:.2f} s",
                          file=sys.stderr)
            finally:
                reg.stop()
        names = " | ".join(t.name for t in targets)
        print(f"\n|  | {names} |\n| --- |{' ---: |' * len(targets)}")
        print(f"| `docker push` of {args.mb} MB ({args.layers} layers) median s (n={args.runs}) | "
              + " | ".join(f"{statistics.median(t.push_s):.2f}" for t in targets) + " |")
        print(f"| `docker pull` of it median s (n={args.runs}) | "
              + " | ".join(f"{statistics.median(t.pull_s):.2f}" for t in targets) + " |")
        return 0
    finally:
        if servin is not None:
            servin.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
