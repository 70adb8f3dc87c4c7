"""Images through the real docker CLI and docker-py: save/load round trips, history, prune,
list filters, rmi rules."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


def image_id(d: ServinDaemon, ref: str) -> str:
    return out(d, "image", "inspect", "-f", "{{.Id}}", ref).strip()


@pytest.fixture
def client(servin: ServinDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=servin.host, version="auto", timeout=120)
    yield c
    c.close()


@pytest.fixture
def child(servin: ServinDaemon) -> Iterator[str]:
    """busybox plus a committed layer (a file, a deleted file: a whiteout), tagged savetest:child."""
    servin.docker("run", "--name", "mkchild", "busybox", "sh", "-c",
                  "echo saved > /greeting && mkdir -p /data && echo x > /data/f && rm /bin/vi")
    servin.docker("commit", "-m", "a layer", "-c", "CMD cat /greeting", "mkchild", "savetest:child")
    servin.docker("rm", "mkchild")
    yield image_id(servin, "savetest:child")
    servin.docker("rmi", "-f", "savetest:child", check=False)


def test_save_rmi_load_round_trip(servin: ServinDaemon, child: str, tmp_path: Path) -> None:
    base = image_id(servin, "busybox")
    archive = tmp_path / "x.tar"
    servin.docker("save", "-o", str(archive), "savetest:child", "busybox")
    with tarfile.open(archive) as tf:
        names = tf.getnames()
        manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        repositories = json.loads(tf.extractfile("repositories").read())  # type: ignore[union-attr]
        layer_tars = {m.name: m for m in tf.getmembers() if m.name.endswith("/layer.tar")}
        for m in manifest:
            for layer in m["Layers"]:
                assert layer in layer_tars
    assert {m["Config"] for m in manifest} == {child[7:] + ".json", base[7:] + ".json"}
    assert sorted(tuple(m["RepoTags"]) for m in manifest) == [("busybox:latest",), ("savetest:child",)]
    assert set(repositories) == {"busybox", "savetest"}
    assert "manifest.json" in names and all(n.split("/")[0] in names or "/" not in n for n in names)

    servin.docker("rmi", "savetest:child")
    servin.docker("rmi", "busybox")
    assert out(servin, "images", "-q") == ""
    loaded = out(servin, "load", "-i", str(archive))
    assert "Loaded image: savetest:child" in loaded and "Loaded image: busybox:latest" in loaded
    assert image_id(servin, "savetest:child") == child
    assert image_id(servin, "busybox") == base
    assert out(servin, "run", "--rm", "savetest:child").strip() == "saved"
    assert servin.docker("run", "--rm", "savetest:child", "ls", "/bin/vi", check=False).returncode != 0


def test_saved_layers_are_the_original_tars(servin: ServinDaemon, child: str) -> None:
    raw = servin.docker("save", "savetest:child").stdout
    inspect = json.loads(out(servin, "image", "inspect", "savetest:child"))[0]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        [entry] = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        digests = ["sha256:" + hashlib.sha256(tf.extractfile(p).read()).hexdigest()  # type: ignore[union-attr]
                   for p in entry["Layers"]]
    assert digests == inspect["RootFS"]["Layers"]


def test_load_of_a_present_layer_prints_only_the_tag(servin: ServinDaemon, tmp_path: Path) -> None:
    archive = tmp_path / "bb.tar"
    servin.docker("save", "-o", str(archive), "busybox")
    servin.docker("tag", "busybox", "keep-busybox")
    servin.docker("rmi", "busybox")
    # the layer is still there (keep-busybox): only the tag line
    assert out(servin, "load", "-i", str(archive)).strip() == "Loaded image: busybox:latest"
    servin.docker("rmi", "keep-busybox")


def test_save_unknown_image(servin: ServinDaemon) -> None:
    res = servin.docker("save", "nope:1", check=False)
    assert res.returncode != 0 and b"reference does not exist" in res.stderr
    res = servin.docker("save", "nope", check=False)
    assert res.returncode != 0 and b"No such image: nope" in res.stderr


def test_history(servin: ServinDaemon, child: str) -> None:
    rows = out(servin, "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
               "savetest:child").splitlines()
    assert rows[0].split("|")[0] == child and rows[0].endswith("|a layer")
    assert rows[1].split("|")[0] == image_id(servin, "busybox")
    assert rows[-1].startswith("<missing>|/bin/sh -c #(nop) ADD file:")
    table = out(servin, "history", "busybox")
    assert table.splitlines()[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]


def test_prune_and_filters(servin: ServinDaemon) -> None:
    servin.docker("run", "--name", "p1", "busybox", "true")
    servin.docker("commit", "-c", "LABEL team=a", "p1")  # dangling
    dangling = out(servin, "images", "-q", "--no-trunc", "--filter", "dangling=true").split()
    assert len(dangling) == 1
    servin.docker("commit", "-c", "LABEL team=b", "p1", "prunetest:b")
    servin.docker("rm", "p1")
    assert out(servin, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "since=busybox").split() == [
        "prunetest:b", "<none>:<none>"]
    assert out(servin, "images", "--format", "{{.Repository}}", "--filter", "reference=prune*").split() == [
        "prunetest"]
    assert out(servin, "images", "-q", "--filter", "label=team=b").split() == [image_id(servin, "prunetest:b")[7:19]]

    res = out(servin, "image", "prune", "-f")
    assert f"deleted: {dangling[0]}" in res and "Total reclaimed space" in res
    # -a: unused images go; busybox is in use by a container and stays
    servin.docker("create", "--name", "user", "busybox")
    res = out(servin, "image", "prune", "-a", "-f", "--filter", "label=team=b")
    assert "untagged: prunetest:b" in res
    assert out(servin, "images", "--format", "{{.Repository}}").split() == ["busybox"]
    res = servin.docker("rmi", "busybox", check=False)
    assert res.returncode != 0 and b"container" in res.stderr and b"is using its referenced image" in res.stderr
    servin.docker("rm", "user")


def test_dockerpy_save_load_history_prune(servin: ServinDaemon, client: docker.DockerClient) -> None:
    img = client.images.get("busybox")
    data = b"".join(img.save(named=True))
    client.images.remove("busybox")
    messages = list(client.api.load_image(data, quiet=False))  # the progress docker load draws on a tty
    assert messages[-1] == {"stream": "Loaded image: busybox:latest\n"}
    assert messages[0]["status"] == "Loading layer" and messages[0]["id"] == img.attrs["RootFS"]["Layers"][0][7:19]
    assert messages[-2]["progressDetail"]["current"] == messages[-2]["progressDetail"]["total"]
    client.images.remove("busybox")
    [loaded] = client.images.load(data)
    assert loaded.id == img.id and loaded.tags == ["busybox:latest"]
    history = loaded.history()
    assert history[0]["Id"] == img.id and history[0]["Tags"] == ["busybox:latest"]
    result = client.images.prune(filters={"dangling": True})
    assert "SpaceReclaimed" in result
    with pytest.raises(docker.errors.NotFound, match="reference does not exist"):
        b"".join(client.api.get_image("nope:1"))


def test_save_cut_short_by_the_client(servin: ServinDaemon) -> None:
    import subprocess

    log_before = len(servin.log_file.read_text())
    cut = subprocess.run("docker save busybox | head -c 1000 | wc -c", shell=True, env=servin.env,
                         capture_output=True, timeout=60)
    assert cut.stdout.strip() == b"1000"
    whole = servin.docker("save", "busybox").stdout
    with tarfile.open(fileobj=io.BytesIO(whole)) as tf:
        assert "manifest.json" in tf.getnames()
    assert "ERROR" not in servin.log_file.read_text()[log_before:]


def test_an_image_with_the_same_layer_twice_runs(servin: ServinDaemon, tmp_path: Path) -> None:
    """An image may list one layer twice (two steps that change nothing give the same empty diff);
    overlay refuses a lowerdir named twice, so such an image would not start."""
    d = servin
    base = json.loads(d.docker("image", "inspect", "busybox").stdout)[0]["RootFS"]["Layers"]
    busybox_tar = tmp_path / "busybox.tar"
    d.docker("save", "-o", str(busybox_tar), "busybox")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        info = tarfile.TarInfo("same.txt")
        info.size, info.mtime = 5, 0
        t.addfile(info, io.BytesIO(b"same\n"))
    data = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    with tarfile.open(busybox_tar) as src:
        manifest = json.load(src.extractfile("manifest.json"))[0]
        config = json.load(src.extractfile(manifest["Config"]))
        base_layers = {name: src.extractfile(name).read() for name in manifest["Layers"]}
    config["rootfs"]["diff_ids"] = [*base, diff_id, diff_id]
    config["history"] = [*config.get("history", []), {"created_by": "one"}, {"created_by": "two"}]
    config_bytes = json.dumps(config).encode()
    out = tmp_path / "same.tar"
    with tarfile.open(out, "w") as t:
        def add(name: str, body: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
        for name, body in base_layers.items():
            add(name, body)
        add("same/layer.tar", data)
        add("config.json", config_bytes)
        layers_listed = [*manifest["Layers"], "same/layer.tar", "same/layer.tar"]
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["same:twice"],
                                          "Layers": layers_listed}]).encode())
    d.docker("load", "-i", str(out))
    try:
        layers = json.loads(d.docker("image", "inspect", "same:twice").stdout)[0]["RootFS"]["Layers"]
        assert layers[-1] == layers[-2] == diff_id
        assert d.docker("run", "--rm", "same:twice", "cat", "/same.txt").stdout.decode() == "same\n"
    finally:
        d.docker("rmi", "same:twice", check=False)


def test_a_corrupt_load_says_what_dockerd_says(servin: ServinDaemon, tmp_path: Path) -> None:
    seed = tmp_path / "busybox.tar"
    tar = servin.docker("save", "busybox").stdout
    cases = {"short.tar": b"garbage-not-a-tar-file-at-all", "cut.tar": tar[:3000],
             "junk.tar": bytes(range(256)) * 4}
    for name, data in cases.items():
        seed = tmp_path / name
        seed.write_bytes(data)
        res = servin.docker("load", "-i", str(seed), check=False)
        expected = "archive/tar: invalid tar header" if name == "junk.tar" else "unexpected EOF"
        assert res.returncode == 1
        assert res.stderr.decode().strip() == f"Error processing tar file(exit status 1): {expected}", name
