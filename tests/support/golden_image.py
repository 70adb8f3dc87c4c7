"""A small image archive made the same way on every machine (fixed bytes, times and owners), for
comparing Servin's `docker save` with the archive dockerd 20.10 wrote for it
(tests/unit/data/dockerd_save_golden.json, made by running `python -m tests.support.golden_image
--record DOCKER_HOST` against a dockerd)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

TAG = "golden/img:v1"
MTIME = 1_700_000_000


def _tar(files: list[tuple[str, bytes | None, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = MTIME, mode, 0, 0, "", ""
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_archive(path: Path) -> None:
    """A docker-archive (docker save format) of a two-layer image tagged TAG."""
    layers = [
        _tar([("etc/", None, 0o755), ("etc/motd", b"golden\n", 0o644), ("bin/", None, 0o755),
              ("bin/tool", b"#!/bin/sh\necho tool\n", 0o755)]),
        _tar([("etc/", None, 0o755), ("etc/.wh.motd", b"", 0o644), ("etc/extra", b"second layer\n", 0o600)]),
    ]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]
    config = {
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z", "author": "servin tests",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/tool"], "Labels": {"golden": "yes"}, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "ADD base"},
                    {"created": "2023-11-14T22:13:20Z", "created_by": "RUN change", "comment": "second"}],
    }
    raw = json.dumps(config, separators=(",", ":")).encode()
    config_name = hashlib.sha256(raw).hexdigest() + ".json"
    members = [(config_name, raw)]
    names = []
    for i, t in enumerate(layers):
        names.append(f"layer{i}/layer.tar")
        members.append((names[-1], t))
    manifest = [{"Config": config_name, "RepoTags": [TAG], "Layers": names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(path, "w") as out:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            out.addfile(info, io.BytesIO(data))


def describe(archive: bytes) -> dict[str, object]:
    """What to compare of a saved archive: every entry (name, type, mode, size or link target) and
    the bytes of every metadata file (layer.tar contents by digest)."""
    entries, files = [], {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        for m in tf.getmembers():
            entries.append([m.name, m.type.decode(), oct(m.mode), m.linkname if m.issym() else m.size])
            if m.isfile():
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                files[m.name] = ("sha256:" + hashlib.sha256(data).hexdigest() if m.name.endswith("layer.tar")
                                 else data.decode())
    return {"entries": sorted(entries), "files": files}


if __name__ == "__main__":  # record dockerd's answer: python -m tests.support.golden_image --record unix:///...
    import os
    import subprocess
    import sys
    import tempfile

    host = sys.argv[2]
    env = {**os.environ, "DOCKER_HOST": host}
    with tempfile.TemporaryDirectory() as tmp:
        write_archive(Path(tmp) / "in.tar")
        subprocess.run(["docker", "load", "-i", f"{tmp}/in.tar"], env=env, check=True)
        subprocess.run(["docker", "save", "-o", f"{tmp}/out.tar", TAG], env=env, check=True)
        subprocess.run(["docker", "rmi", TAG], env=env, check=True)
        golden = describe(Path(f"{tmp}/out.tar").read_bytes())
    out = Path(__file__).resolve().parent.parent / "unit" / "data" / "dockerd_save_golden.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")
