"""The build context is extracted as plain files: AUFS whiteout names stay files, device nodes are
skipped, and nothing lands outside the context directory."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from servin.build.context import read_dockerfile
from servin.errors import InvalidArgument
from servin.images.layers import extract_plain


def tar(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buf.seek(0)
    return buf


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info


def test_whiteout_names_are_plain_files(tmp_path: Path) -> None:
    extract_plain(tar((member("Dockerfile"), b"FROM scratch\n"), (member(".wh.keep"), b"kept\n"),
                      (member("d", tarfile.DIRTYPE), b""), (member("d/.wh..wh..opq"), b""),
                      (member("d/f"), b"f\n")), tmp_path)
    assert (tmp_path / ".wh.keep").read_text() == "kept\n"
    assert (tmp_path / "d" / ".wh..wh..opq").is_file() and (tmp_path / "d" / "f").read_text() == "f\n"
    assert read_dockerfile(tmp_path, "") == ("Dockerfile", b"FROM scratch\n")


def test_no_device_nodes_and_links_stay_inside(tmp_path: Path) -> None:
    dev = member("null", tarfile.CHRTYPE)
    dev.devmajor, dev.devminor = 1, 3
    extract_plain(tar((dev, b""), (member("out", tarfile.SYMTYPE, "/etc"), b""),
                      (member("a"), b"a"), (member("b", tarfile.LNKTYPE, "a"), b"")), tmp_path)
    assert not (tmp_path / "null").exists()
    assert (tmp_path / "b").read_text() == "a" and (tmp_path / "out").is_symlink()
    (tmp_path / "sub").mkdir()
    with pytest.raises(InvalidArgument):
        extract_plain(tar((member("out", tarfile.SYMTYPE, "/tmp"), b""), (member("out/escape"), b"x")),
                      tmp_path / "sub")
    assert not Path("/tmp/escape").exists()
    with pytest.raises(InvalidArgument):
        extract_plain(tar((member("../up"), b"x")), tmp_path)
    assert not (tmp_path.parent / "up").exists()
