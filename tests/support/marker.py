"""A marker directory on the host that hostile images and requests aim at: the tests assert it is
byte-for-byte and mode-for-mode what it was, and that nothing was added to it or beside it."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below `root` (itself included): type and mode, owner, content or link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ["", *dirnames, *filenames]:
            path = os.path.join(dirpath, name) if name else dirpath
            if not name and dirpath != str(root):
                continue  # directories are listed once, by their parent
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                body: object = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            else:
                body = None
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, body)
    return out


class HostMarker:
    """`<parent>/marker`: a directory with a secret file, a setuid-able binary stand-in and a
    subdirectory, in modes an attack would change."""

    def __init__(self, parent: Path) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.path = parent / "marker"
        self.path.mkdir(mode=0o755)
        (self.path / "secret").write_text("host secret\n")
        (self.path / "secret").chmod(0o600)
        (self.path / "tool").write_bytes(b"\x7fELF not really")
        (self.path / "tool").chmod(0o755)
        (self.path / "sub").mkdir(mode=0o750)
        (self.path / "sub" / "deep").write_text("deep\n")
        self.path.chmod(0o755)
        self._parent_entries = sorted(os.listdir(parent))
        self._before = snapshot(self.path)

    def assert_unchanged(self) -> None:
        assert snapshot(self.path) == self._before, "the host marker directory was changed"
        assert sorted(os.listdir(self.path.parent)) == self._parent_entries, "something was made beside the marker"
