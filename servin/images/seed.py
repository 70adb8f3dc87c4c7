"""A minimal busybox image built from the host's busybox-static, as a ``docker save`` archive.

The archive is the Docker ≥ 25 hybrid format: ``manifest.json`` + ``repositories`` for ``docker load``
and ``oci-layout`` + ``index.json`` + ``blobs/sha256`` for OCI tools. Everything has fixed mtimes and
owners, so the same busybox binary always gives the same image ID.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

from servin.images import reference as refs
from servin.images.model import host_architecture

SEED_CREATED = "2024-01-01T00:00:00Z"
SEED_MTIME = 1704067200  # 2024-01-01T00:00:00Z
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""

_DIRS = {
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "sbin": 0o755,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "var": 0o755,
    "var/spool": 0o755,
    "var/spool/mail": 0o755,
    "var/www": 0o755,
}


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.mtime = SEED_MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
    names = {line.strip().lstrip("/") for line in out.splitlines() if line.strip()}
    names.discard("bin/busybox")
    return sorted(names)


def build_rootfs_tar(busybox: Path = Path("/bin/busybox")) -> bytes:
    """The single layer: busybox, its applet symlinks, /etc/passwd and /etc/group, base dirs."""
    binary = busybox.read_bytes()
    applets = _applets(busybox)
    dirs = dict(_DIRS)
    for a in applets:
        parent = a.rsplit("/", 1)[0] if "/" in a else ""
        while parent and parent not in dirs:
            dirs[parent] = 0o755
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in sorted(dirs):
            tf.addfile(_info(d + "/", tarfile.DIRTYPE, dirs[d]))
        tf.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(binary)), io.BytesIO(binary))
        for a in applets:
            ti = _info(a, tarfile.SYMTYPE, 0o777)
            ti.linkname = "/bin/busybox"
            tf.addfile(ti)
        for name, text, mode in (
            ("etc/passwd", PASSWD, 0o644),
            ("etc/group", GROUP, 0o644),
        ):
            data = text.encode()
            tf.addfile(_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def write_busybox_archive(out: Path, *, busybox: Path = Path("/bin/busybox"), tag: str = "busybox:latest") -> None:
    """Write a ``docker save`` tar of a minimal busybox image tagged ``tag`` to ``out``."""
    ref = refs.parse_tagged(tag)
    layer = build_rootfs_tar(busybox)
    diff_id = _sha(layer)
    arch = host_architecture()
    config = {
        "architecture": arch,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "created": SEED_CREATED,
        "history": [
            {
                "created": SEED_CREATED,
                "created_by": f"/bin/sh -c #(nop) ADD file:{diff_id[7:]} in / ",
            },
            {
                "created": SEED_CREATED,
                "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
                "empty_layer": True,
            },
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_raw = _dumps(config)
    config_digest = _sha(config_raw)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_raw),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": diff_id,
                "size": len(layer),
            }
        ],
    }
    manifest_raw = _dumps(manifest)
    manifest_digest = _sha(manifest_raw)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_raw),
                "annotations": {
                    "io.containerd.image.name": str(ref),
                    "org.opencontainers.image.ref.name": ref.tag or "latest",
                },
                "platform": {"architecture": arch, "os": "linux"},
            }
        ],
    }
    docker_manifest = [
        {
            "Config": f"blobs/sha256/{config_digest[7:]}",
            "RepoTags": [ref.familiar()],
            "Layers": [f"blobs/sha256/{diff_id[7:]}"],
        }
    ]
    repositories = {ref.familiar_name(): {ref.tag: diff_id[7:]}}

    files: list[tuple[str, bytes]] = [
        (f"blobs/sha256/{config_digest[7:]}", config_raw),
        (f"blobs/sha256/{diff_id[7:]}", layer),
        (f"blobs/sha256/{manifest_digest[7:]}", manifest_raw),
        ("index.json", _dumps(index)),
        ("manifest.json", _dumps(docker_manifest)),
        ("oci-layout", _dumps({"imageLayoutVersion": "1.0.0"})),
        ("repositories", _dumps(repositories)),
    ]
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("blobs/", "blobs/sha256/"):
            tf.addfile(_info(d, tarfile.DIRTYPE, 0o755))
        for name, data in files:
            tf.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    tmp.replace(out)
