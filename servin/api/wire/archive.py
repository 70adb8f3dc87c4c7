"""Docker JSON of a container's filesystem: the path-stat header of docker cp, diff entries."""

from __future__ import annotations

import base64
import json
import stat
from datetime import datetime, timezone
from typing import Any

PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"

# Go's os.FileMode type bits (io/fs): the permission bits stay in the low 9 bits.
MODE_DIR = 1 << 31
MODE_APPEND = 1 << 30
MODE_EXCLUSIVE = 1 << 29
MODE_TEMPORARY = 1 << 28
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19

_TYPE_BITS = {
    stat.S_IFDIR: MODE_DIR,
    stat.S_IFLNK: MODE_SYMLINK,
    stat.S_IFBLK: MODE_DEVICE,
    stat.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE,
    stat.S_IFIFO: MODE_NAMED_PIPE,
    stat.S_IFSOCK: MODE_SOCKET,
    stat.S_IFREG: 0,
}


def go_file_mode(st_mode: int) -> int:
    """A POSIX st_mode as Go's os.FileMode (what os.Lstat gives dockerd)."""
    mode = st_mode & 0o777
    mode |= _TYPE_BITS.get(stat.S_IFMT(st_mode), MODE_IRREGULAR)
    if st_mode & stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def rfc3339_nano(ns: int) -> str:
    """Go's time.Time JSON (RFC 3339, nanoseconds without trailing zeros), in UTC."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def path_stat(st: Any) -> dict[str, Any]:
    """types.ContainerPathStat, fields in Docker's order."""
    return {"name": st.name, "size": st.size, "mode": go_file_mode(st.mode), "mtime": rfc3339_nano(st.mtime_ns),
            "linkTarget": st.link_target}


def path_stat_header(st: Any) -> str:
    """The value of X-Docker-Container-Path-Stat: standard base64 of the JSON."""
    return base64.b64encode(json.dumps(path_stat(st), separators=(",", ":")).encode()).decode()


def changes(items: list[Any]) -> list[dict[str, Any]] | None:
    """[{"Path", "Kind"}]; dockerd 20.10 answers null when nothing changed."""
    if not items:
        return None
    return [{"Path": c.path, "Kind": int(c.kind)} for c in items]
