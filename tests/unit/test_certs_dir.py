"""`servin certs generate DIR` writes private keys: never into a DIR that others can write or that
belongs to another user, where the keys could be swapped or read."""

from __future__ import annotations

import os
import stat

import pytest

from servin.cli.main import main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("mode", "who"), [(0o777, "others"), (0o1777, "others"), (0o775, "its group"),
                                           (0o770, "its group"), (0o702, "others")])
def test_a_dir_others_can_write_is_refused(tmp_path, capsys, mode, who):
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(mode)
    assert main(["certs", "generate", str(d)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"servin: refusing to write keys into {d}: it is writable by {who} (mode {mode:04o})")
    assert "chmod go-w" in err
    assert list(d.iterdir()) == []


def test_a_dir_of_another_user_is_refused(tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory away")
    d = tmp_path / "theirs"
    d.mkdir(mode=0o755)
    os.chown(d, 65534, 65534)  # nobody
    assert main(["certs", "generate", str(d)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"servin: refusing to write keys into {d}: it belongs to user ")
    assert "not to you or root" in err
    assert list(d.iterdir()) == []


@pytest.mark.parametrize("mode", [0o700, 0o755, 0o750])
def test_a_dir_only_its_owner_writes_is_used(tmp_path, capsys, mode):
    d = tmp_path / "mine"
    d.mkdir()
    d.chmod(mode)
    assert main(["certs", "generate", str(d)]) == 0
    assert (d / "ca-key.pem").exists()
    assert stat.S_IMODE(d.stat().st_mode) == mode


def test_a_new_dir_is_made_private(tmp_path, capsys):
    old = os.umask(0)
    try:
        assert main(["certs", "generate", str(tmp_path / "new" / "certs")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new" / "certs").stat().st_mode) == 0o700


def test_a_file_in_place_of_the_dir_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("")
    assert main(["certs", "generate", str(f)]) == 1
    assert "servin:" in capsys.readouterr().err
