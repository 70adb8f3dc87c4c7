"""docker push / pull / login and docker-py against Debian's docker-registry on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.registry.fakestore import image_config, layer_tar, sha
from tests.registry.server import REGISTRY_BIN, USERS, Registry, running_registry
from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with running_registry() as reg:
        yield reg


@pytest.fixture(scope="module")
def private() -> Iterator[Registry]:
    with running_registry("htpasswd") as reg:
        yield reg


def local(reg: Registry) -> str:
    """The registry as users name it: localhost is insecure (plain http) by default, as in Docker."""
    return f"localhost:{reg.port}"


def test_push_pull_run_round_trip_with_the_cli(servin: ServinDaemon, registry: Registry) -> None:
    name = f"{local(registry)}/e2e/layered"
    servin.docker("run", "--name", "layered-src", "busybox", "sh", "-c", "echo from-layer > /marker")
    try:
        servin.docker("commit", "layered-src", f"{name}:v1")
    finally:
        servin.docker("rm", "-f", "layered-src")
    out = servin.docker("push", f"{name}:v1").stdout.decode()
    assert f"The push refers to repository [{name}]" in out
    assert out.count("Pushed") == 2, out
    digest_line = [line for line in out.splitlines() if line.startswith("v1: digest: sha256:")]
    assert digest_line, out
    digest = digest_line[0].split()[2]
    image_id = servin.docker("image", "inspect", "-f", "{{.Id}}", f"{name}:v1").stdout.decode().strip()
    servin.docker("rmi", f"{name}:v1")

    out = servin.docker("pull", f"{name}:v1").stdout.decode()
    assert "v1: Pulling from e2e/layered" in out
    assert out.count("Already exists") == 1, out  # busybox's layer is still there from the load
    assert "Pull complete" in out
    assert f"Digest: {digest}" in out
    assert f"Status: Downloaded newer image for {name}:v1" in out
    info = json.loads(servin.docker("image", "inspect", f"{name}:v1").stdout)[0]
    assert info["Id"] == image_id
    assert f"{name}@{digest}" in info["RepoDigests"]
    assert servin.docker("run", "--rm", f"{name}:v1", "cat", "/marker").stdout == b"from-layer\n"

    out = servin.docker("pull", f"{name}:v1").stdout.decode()
    assert f"Status: Image is up to date for {name}:v1" in out

    again = servin.docker("push", f"{name}:v1").stdout.decode()
    assert again.count("Layer already exists") == 2, again

    other = f"{local(registry)}/e2e/other:v1"
    servin.docker("tag", f"{name}:v1", other)
    mounted = servin.docker("push", other).stdout.decode()
    assert mounted.count("Mounted from e2e/layered") == 2, mounted


def test_pull_by_digest_and_missing_image_errors(servin: ServinDaemon, registry: Registry) -> None:
    name = f"{local(registry)}/e2e/digest"
    servin.docker("tag", "busybox", f"{name}:latest")
    out = servin.docker("push", f"{name}:latest").stdout.decode()
    digest = [line for line in out.splitlines() if "digest:" in line][0].split()[2]
    out = servin.docker("pull", f"{name}@{digest}").stdout.decode()
    assert f"Digest: {digest}" in out
    assert servin.docker("image", "inspect", f"{name}@{digest}").returncode == 0

    res = servin.docker("pull", f"{local(registry)}/e2e/none", check=False)
    assert res.returncode == 1
    assert (f"Error response from daemon: manifest for {local(registry)}/e2e/none:latest not found: "
            "manifest unknown: manifest unknown") in res.stderr.decode()

    res = servin.docker("push", f"{local(registry)}/e2e/never-tagged", check=False)
    assert res.returncode == 1
    assert f"An image does not exist locally with the tag: {local(registry)}/e2e/never-tagged" in res.stderr.decode()


def test_pull_platform_from_a_hand_made_index(servin: ServinDaemon, registry: Registry) -> None:
    repo = "e2e/multi"
    entries = []
    for arch in ("amd64", "arm64"):
        tar = layer_tar({f"{arch}.txt": arch.encode()})
        blob = gzip.compress(tar, mtime=0)
        cfg = image_config([sha(tar)], arch=arch)
        doc = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                          "digest": registry.put_blob(repo, cfg), "size": len(cfg)},
               "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                           "digest": registry.put_blob(repo, blob), "size": len(blob)}]}
        raw = json.dumps(doc).encode()
        registry.put_manifest(repo, sha(raw), doc, doc["mediaType"])
        entries.append({"mediaType": doc["mediaType"], "digest": sha(raw), "size": len(raw),
                        "platform": {"architecture": arch, "os": "linux"}})
    registry.put_manifest(repo, "latest", {"schemaVersion": 2, "manifests": entries,
                                           "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"},
                          "application/vnd.docker.distribution.manifest.list.v2+json")
    name = f"{local(registry)}/{repo}"
    servin.docker("pull", "--platform", "linux/arm64", name)
    arch = servin.docker("image", "inspect", "-f", "{{.Architecture}}", name).stdout.decode().strip()
    assert arch == "arm64"
    res = servin.docker("pull", "--platform", "linux/ppc64le", name, check=False)
    assert "no matching manifest for linux/ppc64le in the manifest list entries" in res.stderr.decode()

    import docker

    client = docker.DockerClient(base_url=servin.host, version="1.41")
    try:
        data = client.api.inspect_distribution(name)
    finally:
        client.close()
    assert data["Descriptor"]["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert sorted(p["architecture"] for p in data["Platforms"]) == ["amd64", "arm64"]


def test_login_then_push_and_pull_with_credentials(servin: ServinDaemon, private: Registry) -> None:
    host = local(private)
    res = subprocess.run(["docker", "login", "-u", "alice", "--password-stdin", host], input=b"wrong\n",
                         env=servin.env, capture_output=True, timeout=60)
    assert res.returncode == 1
    assert (f"Error response from daemon: login attempt to http://{host}/v2/ failed with status: "
            "401 Unauthorized") in res.stderr.decode()
    name = f"{host}/e2e/private:latest"
    servin.docker("tag", "busybox", name)
    res = servin.docker("push", name, check=False)
    assert res.returncode == 1 and "no basic auth credentials" in res.stderr.decode()

    res = subprocess.run(["docker", "login", "-u", "alice", "--password-stdin", host],
                         input=USERS["alice"].encode() + b"\n", env=servin.env, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert b"Login Succeeded" in res.stdout
    servin.docker("push", name)
    servin.docker("rmi", name)
    servin.docker("pull", name)
    servin.docker("logout", host)


def test_dockerpy_pull_push_and_events(servin: ServinDaemon, private: Registry, registry: Registry) -> None:
    import docker

    client = docker.DockerClient(base_url=servin.host, version="1.41")
    try:
        creds = {"username": "alice", "password": USERS["alice"]}
        repo = f"{local(private)}/e2e/dockerpy"
        client.images.get("busybox").tag(repo, "v2")
        lines = list(client.images.push(repo, "v2", auth_config=creds, stream=True, decode=True))
        assert lines[-1]["aux"]["Tag"] == "v2", lines
        client.images.remove(f"{repo}:v2")
        since = servin.docker("version", "-f", "{{.Server.Version}}")  # a round trip before the pull
        assert since.returncode == 0
        img = client.images.pull(repo, tag="v2", auth_config=creds)
        assert f"{repo}:v2" in img.tags
        with pytest.raises(docker.errors.NotFound):
            client.images.pull(f"{local(registry)}/e2e/absent", tag="latest")
        events = client.api.events(decode=True, since=0, until=int(__import__("time").time()) + 1,
                                   filters={"type": "image", "event": ["pull", "push"]})
        seen = [(e["Action"], e["Actor"]["ID"]) for e in events]
        assert ("push", f"{repo}:v2") in seen and ("pull", f"{repo}:v2") in seen
    finally:
        client.close()


def test_token_registry_login_and_pull_all_tags(servin: ServinDaemon) -> None:
    with running_registry("token") as reg:
        host = local(reg)
        res = subprocess.run(["docker", "login", "-u", "alice", "--password-stdin", host], input=b"nope\n",
                             env=servin.env, capture_output=True, timeout=60)
        assert res.returncode == 1 and "incorrect username or password" in res.stderr.decode()
        res = subprocess.run(["docker", "login", "-u", "alice", "--password-stdin", host],
                             input=USERS["alice"].encode() + b"\n", env=servin.env, capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr
        config = json.loads((servin.root / "docker-config" / "config.json").read_text())
        assert host in config["auths"]
        try:
            for tag in ("a", "b"):
                servin.docker("tag", "busybox", f"{host}/e2e/tok:{tag}")
            out = servin.docker("push", "--all-tags", f"{host}/e2e/tok").stdout.decode()
            assert "a: digest: sha256:" in out and "b: digest: sha256:" in out
            servin.docker("rmi", f"{host}/e2e/tok:a", f"{host}/e2e/tok:b")
            out = servin.docker("pull", "--all-tags", f"{host}/e2e/tok").stdout.decode()
            assert "a: Pulling from e2e/tok" in out and "b: Pulling from e2e/tok" in out
            assert f"Status: Downloaded newer image for {host}/e2e/tok" in out
            tags = servin.docker("images", "--format", "{{.Tag}}", f"{host}/e2e/tok").stdout.decode().split()
            assert sorted(tags) == ["a", "b"]
            assert reg.token is not None and any(r.get("user") == "alice" for r in reg.token.requests)
        finally:
            servin.docker("logout", host)


def test_registry_mirror_serves_docker_hub_names(servin: ServinDaemon, registry: Registry) -> None:
    servin.docker("tag", "busybox", f"{local(registry)}/library/mirrored:latest")
    servin.docker("push", f"{local(registry)}/library/mirrored:latest")
    d = ServinDaemon()
    try:
        d.config_file.write_text(json.dumps({"registry-mirrors": [f"http://127.0.0.1:{registry.port}"]}))
        d.start()
        out = d.docker("pull", "mirrored").stdout.decode()
        assert "latest: Pulling from library/mirrored" in out
        assert "Status: Downloaded newer image for mirrored:latest" in out
        assert d.docker("run", "--rm", "mirrored", "echo", "via-mirror").stdout == b"via-mirror\n"
        assert not [p for p in (d.data_root / "tmp").iterdir()]  # no temp file left behind
    finally:
        d.cleanup()


def test_search_errors_are_quick_and_clear(servin: ServinDaemon, registry: Registry) -> None:
    import time

    t0 = time.monotonic()
    res = servin.docker("search", f"{local(registry)}/busybox", check=False)
    assert res.returncode == 1
    assert "Unexpected status code 404" in res.stderr.decode() and "no search API" in res.stderr.decode()
    res = servin.docker("search", "127.0.0.1:1/busybox", check=False)  # nothing listens there
    assert res.returncode == 1 and "Error response from daemon" in res.stderr.decode()
    assert time.monotonic() - t0 < 30


def test_daemon_killed_during_a_pull_leaves_nothing_visible(daemon: ServinDaemon, registry: Registry) -> None:
    import time

    import docker

    name = f"{local(registry)}/e2e/killed:latest"
    tars = [layer_tar({f"blob{i}": os.urandom(40 << 20)}) for i in range(3)]
    repo = "e2e/killed"
    cfg = image_config([sha(t) for t in tars])
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": registry.put_blob(repo, cfg), "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": registry.put_blob(repo, t),
                       "size": len(t)} for t in tars]}
    registry.put_manifest(repo, "latest", doc, doc["mediaType"])
    tmp = daemon.data_root / "tmp"
    client = docker.APIClient(base_url=daemon.host, version="1.41", timeout=30)
    try:
        stream = client.pull(name, stream=True, decode=True)
        for line in stream:
            if line.get("status") == "Downloading" and any(p.name.startswith("pull-") for p in tmp.iterdir()):
                break
        daemon.kill9()
    finally:
        client.close()
    daemon.start()
    assert [p.name for p in tmp.iterdir()] == []
    res = daemon.docker("image", "inspect", name, check=False)
    assert res.returncode == 1 and b"No such image" in res.stderr
    assert name.split(":latest")[0] not in daemon.docker("images").stdout.decode()
    t0 = time.monotonic()
    out = daemon.docker("pull", name).stdout.decode()
    assert f"Status: Downloaded newer image for {name}" in out
    assert time.monotonic() - t0 < 60
