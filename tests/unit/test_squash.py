"""`docker build --squash`: the daemon's --experimental (config, reload) and the squashed image
(ImageService.squash, images/squash.py) as dockerd's SquashImage makes it."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import pytest

from servin.daemon.config import DaemonConfig, resolve
from servin.daemon.reload import Reloader
from servin.errors import InvalidArgument
from servin.images.layer_store import chain_ids
from servin.images.service import ImageService
from tests.support.daemonconfig import parse as _parse

pytestmark = pytest.mark.unit


def _json(tmp_path: Path, data: dict[str, object]) -> Path:
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps(data))
    return f


def test_experimental_from_the_flag_or_daemon_json(tmp_path: Path) -> None:
    assert resolve(_parse([], _json(tmp_path, {}))).experimental is False
    assert resolve(_parse(["--experimental"], _json(tmp_path, {}))).experimental is True
    assert resolve(_parse([], _json(tmp_path, {"experimental": True}))).experimental is True


def test_experimental_waits_for_a_restart_on_reload(caplog: pytest.LogCaptureFixture) -> None:
    new = DaemonConfig(experimental=True)
    reloader = Reloader(running=DaemonConfig(), read=lambda: new, daemon_id="d", configure_registry=lambda **_: None,
                        set_debug=lambda _: None, publish=lambda _: None)
    with caplog.at_level(logging.WARNING):
        assert reloader.apply().experimental is False
    assert "take effect only when the daemon restarts: experimental" in caplog.text


# ---------------------------------------------------------------------------- the squashed image


def _tar(entries: dict[str, bytes | None]) -> bytes:
    """Files (bytes), directories (None, name ending in /) and whiteouts (.wh. names, empty bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries.items():
            ti = tarfile.TarInfo(name.rstrip("/"))
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _step(store: ImageService, tmp_path: Path, parent: str, entries: dict[str, bytes | None] | None,
          cmd: str) -> str:
    tar = None
    if entries is not None:
        tar = tmp_path / "step.tar"
        tar.write_bytes(_tar(entries))
    return store.commit_layer(parent, tar, config={"Cmd": ["sh"]},
                              container_config={"Cmd": ["/bin/sh", "-c", cmd]}, container_id="").id


def _members(store: ImageService, diff_id: str) -> dict[str, bytes | None]:
    with store.layer_tar(diff_id) as f, tarfile.open(fileobj=f, mode="r|") as tf:
        out: dict[str, bytes | None] = {}
        for m in tf:
            r = tf.extractfile(m) if m.isfile() else None
            out[m.name] = r.read() if r is not None else None
        return out


@pytest.fixture
def built(tmp_path: Path) -> tuple[ImageService, str, str]:
    """A base of two layers and a build of three layer steps and one metadata step on it."""
    store = ImageService(tmp_path / "store")
    (tmp_path / "base.tar").write_bytes(_tar({"etc/": None, "etc/passwd": b"root", "etc/gone": b"x",
                                              "opt/": None, "opt/old": b"o"}))
    base = store.import_tarball(tmp_path / "base.tar", repo="base", tag=None, changes=[], message="").id
    base = _step(store, tmp_path, base, {"bin/": None, "bin/sh": b"sh"}, "base step")
    top = _step(store, tmp_path, base, {"tmp/": None, "tmp/big": b"B" * 1000, "etc/": None, "etc/new": b"n"},
                "add")
    top = _step(store, tmp_path, top, None, "#(nop)  ENV A=1")
    top = _step(store, tmp_path, top, {"tmp/": None, "tmp/.wh.big": b"", "etc/": None, "etc/.wh.gone": b"",
                                       "opt/": None, "opt/.wh..wh..opq": b"", "opt/fresh": b"f"}, "rm")
    return store, base, top


def test_squash_keeps_the_base_layers_and_adds_one(built: tuple[ImageService, str, str]) -> None:
    store, base, top = built
    b, t = store.get(base), store.get(top)
    sq = store.squash(top, base)
    assert sq.diff_ids[:-1] == b.diff_ids and len(sq.diff_ids) == len(b.diff_ids) + 1
    layer = _members(store, sq.diff_ids[-1])
    assert layer["etc/new"] == b"n" and "etc/.wh.gone" in layer and "etc/passwd" not in layer
    assert "tmp/big" not in layer and "tmp/.wh.big" not in layer  # added and removed within the build
    assert "opt/.wh..wh..opq" in layer and layer["opt/fresh"] == b"f"
    assert not any(name.startswith("bin") for name in layer)  # the base's own files are not copied
    # dockerd's shape: the build's history all empty_layer, one entry added, no parent
    hist = sq.config["history"]
    assert len(hist) == len(t.config["history"]) + 1
    assert [h.get("empty_layer", False) for h in hist[:len(b.config["history"])]] == [
        h.get("empty_layer", False) for h in b.config["history"]]
    assert all(h["empty_layer"] for h in hist[len(b.config["history"]):-1])
    assert hist[-1] == {"created": sq.config["created"], "comment": f"merge {top} to {base}"}
    assert sq.config["parent"] == t.parent and sq.parent == ""
    assert list(sq.config) == sorted(sq.config)
    assert sq.config["config"] == t.config["config"]
    rows = store.history(sq.id)
    assert rows[0].id == sq.id and rows[0].comment == f"merge {top} to {base}"
    assert all(r.id == "<missing>" for r in rows[1:])
    assert store.read_file(sq.id, "/etc/new") == b"n" and store.read_file(sq.id, "/etc/gone") is None
    assert store.read_file(sq.id, "/opt/old") is None and store.read_file(sq.id, "/bin/sh") == b"sh"


def test_squash_from_scratch_is_one_layer(built: tuple[ImageService, str, str]) -> None:
    store, _, top = built
    sq = store.squash(top, "")
    assert len(sq.diff_ids) == 1
    assert all(h["empty_layer"] for h in sq.config["history"][:-1])
    assert sq.config["history"][-1]["comment"] == f"create new from {top}"
    layer = _members(store, sq.diff_ids[0])
    assert layer["etc/passwd"] == b"root" and "etc/gone" not in layer and "tmp/big" not in layer
    assert not any(".wh." in name for name in layer)


def test_squash_without_a_layer_on_the_base_is_dockerds_error(tmp_path: Path,
                                                             built: tuple[ImageService, str, str]) -> None:
    store, base, _ = built
    env_only = _step(store, tmp_path, base, None, "#(nop)  ENV B=2")
    with pytest.raises(InvalidArgument) as err:
        store.squash(env_only, base)
    chain = chain_ids(store.get(base).diff_ids)[-1]
    assert err.value.message == (f"error squashing image: error getting tar stream to parent: layer ID '{chain}' "
                                 "is not a parent of the specified layer: cannot provide diff to non-parent")
