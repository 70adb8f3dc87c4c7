"""Pull and push against a real docker-registry on 127.0.0.1 (no Servin daemon): anonymous,
htpasswd and token auth, indexes and platforms, digests, corruption, mounts."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from pathlib import Path

import pytest

from servin import errors
from servin.images.reference import parse_normalized
from servin.registry import manifest as mf
from servin.registry.auth import AuthConfig
from servin.registry.service import RegistryService
from tests.registry.recorder import Recorder
from tests.registry.fakestore import FakeStore, image_config, layer_tar, sha
from tests.registry.server import REGISTRY_BIN, USERS, Registry, running_registry

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")]

ANONYMOUS = AuthConfig()
ALICE = AuthConfig(username="alice", password=USERS["alice"])


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with running_registry() as reg:
        yield reg


def make_service(store: FakeStore, tmp_path: Path) -> RegistryService:
    return RegistryService(store, tmp_path)


def statuses(rec: Recorder) -> list[str]:
    return [m.get("status", "") for m in rec.lines]


def by_id(rec: Recorder, id_: str) -> list[str]:
    out = []
    for m in rec.lines:
        if m.get("id") == id_ and (not out or out[-1] != m["status"]):
            out.append(m["status"])
    return out


async def push(svc: RegistryService, name: str, creds: AuthConfig = ANONYMOUS) -> Recorder:
    rec = Recorder()
    try:
        await svc.push(parse_normalized(name), creds, rec)
    finally:
        await svc.close()
    return rec


async def pull(svc: RegistryService, name: str, platform: str = "", creds: AuthConfig = ANONYMOUS) -> Recorder:
    rec = Recorder()
    try:
        await svc.pull(parse_normalized(name), creds, mf.parse_platform(platform), rec)
    finally:
        await svc.close()
    return rec


def three_layers(store: FakeStore, name: str, label: str = "") -> str:
    return store.make_image(name, [{"a": os.urandom(300_000)}, {"b": b"bee" * 1000}, {"c": os.urandom(2_000_000)}],
                            label=label)


async def test_push_then_pull_round_trip_with_dockerd_progress(registry: Registry, tmp_path: Path) -> None:
    src = FakeStore()
    name = f"{registry.host}/round/trip:v1"
    image_id = three_layers(src, name)
    rec = await push(make_service(src, tmp_path), name)
    lines = rec.lines
    assert lines[0] == {"status": f"The push refers to repository [{registry.host}/round/trip]"}
    diff_ids = list(src.get(image_id).diff_ids)
    top = diff_ids[-1][7:19]
    assert by_id(rec, top)[0] == "Preparing" and by_id(rec, top)[-1] == "Pushed"
    assert any(m.get("status") == "Pushing" and m["progressDetail"].get("current") for m in lines)
    final = lines[-2]["status"]
    assert final.startswith("v1: digest: sha256:") and " size: " in final
    aux = lines[-1]
    assert aux["progressDetail"] == {} and aux["aux"]["Tag"] == "v1"
    digest = aux["aux"]["Digest"]
    assert f"{registry.host}/round/trip@{digest}" in src.get(image_id).repo_digests

    dst = FakeStore()
    rec = await pull(make_service(dst, tmp_path), name)
    assert rec.lines[0] == {"status": "Pulling from round/trip", "id": "v1"}
    assert rec.lines[-2] == {"status": f"Digest: {digest}"}
    assert rec.lines[-1] == {"status": f"Status: Downloaded newer image for {name}"}
    layer_ids = {m["id"] for m in rec.lines if m.get("status") == "Pulling fs layer"}
    assert len(layer_ids) == 3
    for id_ in layer_ids:
        seq = by_id(rec, id_)
        assert seq[0] == "Pulling fs layer" and seq[-1] == "Pull complete"
        assert {"Downloading", "Verifying Checksum", "Download complete", "Extracting"} <= set(seq)
    assert dst.get(name).id == image_id
    assert dst.layers == src.layers
    assert list(tmp_path.iterdir()) == []  # no temp file left
    source = dst.sources[image_id]  # a single manifest: it is the image's target and its own manifest
    assert sha(source.top) == digest and source.manifest == source.top
    assert source.top_media_type == json.loads(source.top)["mediaType"]

    again = await pull(make_service(dst, tmp_path), name)
    assert again.lines == [{"status": "Pulling from round/trip", "id": "v1"}, {"status": f"Digest: {digest}"},
                           {"status": f"Status: Image is up to date for {name}"}]


async def test_pull_by_digest_and_unknown_manifest(registry: Registry, tmp_path: Path) -> None:
    src = FakeStore()
    name = f"{registry.host}/bydigest/img:latest"
    three_layers(src, name)
    digest = (await push(make_service(src, tmp_path), name)).lines[-1]["aux"]["Digest"]
    dst = FakeStore()
    ref = f"{registry.host}/bydigest/img@{digest}"
    rec = await pull(make_service(dst, tmp_path), ref)
    assert rec.lines[0] == {"status": "Pulling from bydigest/img", "id": digest}
    assert rec.lines[-1] == {"status": f"Status: Downloaded newer image for {ref}"}
    assert dst.get(ref).id == src.get(name).id

    with pytest.raises(errors.NotFound) as exc:
        await pull(make_service(FakeStore(), tmp_path), f"{registry.host}/bydigest/img:nope")
    assert exc.value.message == (f"manifest for {registry.host}/bydigest/img:nope not found: "
                                 "manifest unknown: manifest unknown")


async def test_multi_platform_index_pushed_by_hand(registry: Registry, tmp_path: Path) -> None:
    repo = "multi/arch"
    entries = []
    configs = {}
    for arch, variant in (("amd64", ""), ("arm64", "v8"), ("arm", "v7")):
        tar = layer_tar({"arch": arch.encode()})
        blob = gzip.compress(tar, mtime=0)
        layer_digest = registry.put_blob(repo, blob)
        cfg = image_config([sha(tar)], arch=arch, variant=variant)
        configs[arch] = sha(cfg)
        cfg_digest = registry.put_blob(repo, cfg)
        doc = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
               "config": {"mediaType": mf.OCI_CONFIG, "digest": cfg_digest, "size": len(cfg)},
               "layers": [{"mediaType": mf.OCI_LAYER_GZIP, "digest": layer_digest, "size": len(blob)}]}
        m_digest = registry.put_manifest(repo, sha(json.dumps(doc).encode()), doc, mf.OCI_MANIFEST)
        platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        entries.append({"mediaType": mf.OCI_MANIFEST, "digest": m_digest,
                        "size": len(json.dumps(doc).encode()), "platform": platform})
    index_digest = registry.put_manifest(repo, "latest", {"schemaVersion": 2, "mediaType": mf.OCI_INDEX,
                                                          "manifests": entries}, mf.OCI_INDEX)
    name = f"{registry.host}/{repo}:latest"
    for platform, arch in (("linux/arm64", "arm64"), ("linux/arm/v7", "arm"), ("linux/amd64", "amd64")):
        dst = FakeStore()
        rec = await pull(make_service(dst, tmp_path), name, platform)
        assert dst.get(name).id == configs[arch]
        assert {"status": f"Digest: {index_digest}"} in rec.lines
        source = dst.sources[configs[arch]]  # the index and the chosen manifest, kept byte for byte
        assert sha(source.top) == index_digest and source.top_media_type == mf.OCI_INDEX
        assert sha(source.manifest) == next(e["digest"] for e in entries if e["platform"]["architecture"] == arch)
        assert source.repository == f"{registry.host}/{repo}"
    with pytest.raises(errors.NotFound) as exc:
        await pull(make_service(FakeStore(), tmp_path), name, "linux/s390x")
    assert exc.value.message == "no matching manifest for linux/s390x in the manifest list entries"

    svc = make_service(FakeStore(), tmp_path)
    try:
        info = await svc.inspect(parse_normalized(name), AuthConfig())
    finally:
        await svc.close()
    assert info["Descriptor"]["digest"] == index_digest and info["Descriptor"]["mediaType"] == mf.OCI_INDEX
    assert {(p["architecture"], p.get("variant", "")) for p in info["Platforms"]} == {
        ("amd64", ""), ("arm64", "v8"), ("arm", "v7")}


async def test_corrupt_blob_is_refetched_once_then_refused(registry: Registry, tmp_path: Path) -> None:
    src = FakeStore()
    name = f"{registry.host}/corrupt/img:latest"
    src.make_image(name, [{"x": os.urandom(100_000)}])
    await push(make_service(src, tmp_path), name)
    (blob,) = [b for bs in src.blobs.values() for b in bs]
    path = registry.blob_file(blob.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    dst = FakeStore()
    rec = Recorder()
    svc = make_service(dst, tmp_path)
    try:
        with pytest.raises(errors.ServinError) as exc:
            await svc.pull(parse_normalized(name), AuthConfig(), None, rec)
    finally:
        await svc.close()
    assert exc.value.message == f"filesystem layer verification failed for digest {blob.digest}"
    assert statuses(rec).count("Verifying Checksum") == 2  # fetched twice
    assert dst.layers == {} and list(tmp_path.iterdir()) == []


async def test_second_push_skips_and_mounts(registry: Registry, tmp_path: Path) -> None:
    src = FakeStore()
    a = f"{registry.host}/mount/a:latest"
    three_layers(src, a)
    await push(make_service(src, tmp_path), a)
    again = await push(make_service(src, tmp_path), a)
    assert {m["status"] for m in again.lines if "id" in m} == {"Preparing", "Layer already exists"}
    b = f"{registry.host}/mount/b:latest"
    src.refs[str(parse_normalized(b))] = src.get(a).id
    rec = await push(make_service(src, tmp_path), b)
    assert {m["status"] for m in rec.lines if "id" in m} == {"Preparing", "Mounted from mount/a"}


async def test_push_of_missing_tag_is_dockers_error(registry: Registry, tmp_path: Path) -> None:
    rec = Recorder()
    svc = make_service(FakeStore(), tmp_path)
    with pytest.raises(errors.NotFound) as exc:
        await svc.push(parse_normalized(f"{registry.host}/nothing/here"), AuthConfig(), rec)
    assert exc.value.message == f"An image does not exist locally with the tag: {registry.host}/nothing/here"
    assert rec.started  # dockerd reports it inside the stream, after "The push refers to repository"


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
async def test_authenticated_registry(auth: str, tmp_path: Path) -> None:
    with running_registry(auth) as reg:
        src = FakeStore()
        name = f"{reg.host}/private/img:latest"
        image_id = three_layers(src, name)
        rec = Recorder()
        svc = make_service(src, tmp_path)
        with pytest.raises(errors.ServinError):
            await svc.push(parse_normalized(name), AuthConfig(), rec)
        await svc.close()
        await push(make_service(src, tmp_path), name, ALICE)

        dst = FakeStore()
        with pytest.raises(errors.ServinError) as exc:
            await pull(make_service(dst, tmp_path), name)
        if auth == "token":
            assert exc.value.message.startswith("pull access denied for 127.0.0.1")
        else:
            assert "no basic auth credentials" in exc.value.message
        await pull(make_service(dst, tmp_path), name, creds=ALICE)
        assert dst.get(name).id == image_id

        svc = make_service(dst, tmp_path)
        try:
            token = await svc.login(AuthConfig(username="alice", password=USERS["alice"], server_address=reg.host))
            if auth == "token":
                assert token  # the refresh token of an offline_token request: docker keeps it as IdentityToken
                await pull(make_service(FakeStore(), tmp_path), name, creds=AuthConfig(identity_token=token))
            with pytest.raises(errors.Unauthorized) as exc:
                await svc.login(AuthConfig(username="alice", password="wrong", server_address=reg.host))
        finally:
            await svc.close()
        if auth == "htpasswd":
            assert exc.value.message == f"login attempt to http://{reg.host}/v2/ failed with status: 401 Unauthorized"
        else:
            assert "incorrect username or password" in exc.value.message



async def test_pull_all_tags(registry: Registry, tmp_path: Path) -> None:
    src = FakeStore()
    one = three_layers(src, f"{registry.host}/alltags/img:one", label="1")
    two = three_layers(src, f"{registry.host}/alltags/img:two", label="2")
    await push(make_service(src, tmp_path), f"{registry.host}/alltags/img")  # every tag, as docker push -a
    dst = FakeStore()
    rec = Recorder()
    svc = make_service(dst, tmp_path)
    await svc.pull(parse_normalized(f"{registry.host}/alltags/img"), ANONYMOUS, None, rec, all_tags=True)
    assert dst.get(f"{registry.host}/alltags/img:one").id == one
    assert dst.get(f"{registry.host}/alltags/img:two").id == two
    assert [m["id"] for m in rec.lines if m.get("status") == "Pulling from alltags/img"] == ["one", "two"]
    assert sum(1 for m in rec.lines if m["status"].startswith("Digest: ")) == 2
    assert rec.lines[-1] == {"status": f"Status: Downloaded newer image for {registry.host}/alltags/img"}


async def test_cancelled_pull_leaves_nothing(registry: Registry, tmp_path: Path) -> None:
    import asyncio

    src = FakeStore()
    name = f"{registry.host}/cancel/img:latest"
    src.make_image(name, [{"big": os.urandom(8 << 20)}, {"big2": os.urandom(8 << 20)}])
    await push(make_service(src, tmp_path), name)
    dst = FakeStore()
    spool = tmp_path / "spool"
    spool.mkdir()

    class CancelOnDownload(Recorder):
        task: asyncio.Task | None = None
        seen_files = False

        def _write(self, msg):
            super()._write(msg)
            if msg.get("status") == "Downloading" and self.task is not None:
                self.seen_files = any(spool.iterdir())
                self.task.cancel()

    rec = CancelOnDownload()
    rec.task = asyncio.ensure_future(make_service(dst, spool).pull(parse_normalized(name), ANONYMOUS, None, rec))
    with pytest.raises(asyncio.CancelledError):
        await rec.task
    assert rec.seen_files  # the download was under way in a temp file ...
    assert list(spool.iterdir()) == []  # ... which went with the cancellation
    assert dst.configs == {} and dst.refs == {}


async def test_zstd_and_uncompressed_oci_layers(registry: Registry, tmp_path: Path) -> None:
    import zstandard

    repo = "oci/zstd"
    tars = [layer_tar({"z": os.urandom(50_000)}), layer_tar({"plain": b"uncompressed"})]
    blobs = [(zstandard.ZstdCompressor().compress(tars[0]), mf.OCI_LAYER_ZSTD), (tars[1], mf.OCI_LAYER)]
    cfg = image_config([sha(t) for t in tars])
    doc = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
           "config": {"mediaType": mf.OCI_CONFIG, "digest": registry.put_blob(repo, cfg), "size": len(cfg)},
           "layers": [{"mediaType": mt, "digest": registry.put_blob(repo, b), "size": len(b)} for b, mt in blobs]}
    registry.put_manifest(repo, "latest", doc, mf.OCI_MANIFEST)
    dst = FakeStore()
    await pull(make_service(dst, tmp_path), f"{registry.host}/{repo}")
    assert dst.get(f"{registry.host}/{repo}").id == sha(cfg)
    assert [dst.layers[sha(t)] for t in tars] == tars


@contextlib.asynccontextmanager
async def serving(repo: str, manifest: Any, blob: Any) -> AsyncIterator[str]:
    """A hand-made registry on 127.0.0.1 answering `repo`'s manifests and blobs: yields the image name."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    app = web.Application()
    app.router.add_get(f"/v2/{repo}/manifests/{{ref}}", manifest)
    app.router.add_get(f"/v2/{repo}/blobs/{{digest}}", blob)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"127.0.0.1:{server.port}/{repo}"
    finally:
        await server.close()


def one_layer_image(size: int) -> tuple[bytes, bytes, bytes]:
    """(gzip layer blob, config, Docker schema2 manifest) of an image with one random file of `size`."""
    tar = layer_tar({"f": os.urandom(size)})
    blob = gzip.compress(tar, compresslevel=1)
    cfg = image_config([sha(tar)])
    doc = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                      "config": {"mediaType": mf.DOCKER_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": mf.DOCKER_LAYER_GZIP, "digest": sha(blob), "size": len(blob)}]}).encode()
    return blob, cfg, doc


async def test_transient_failures_are_retried(tmp_path: Path) -> None:
    """A 503 on the manifest and a connection cut in the middle of a blob: both retried, with dockerd's
    "Retrying in N second" line for the layer."""
    from aiohttp import web

    blob, cfg, doc = one_layer_image(3 << 20)
    hits = {"manifest": 0, "blob": 0}

    async def manifest(request: web.Request) -> web.StreamResponse:
        hits["manifest"] += 1
        if hits["manifest"] == 1:
            return web.Response(status=503)
        return web.Response(body=doc, content_type=mf.DOCKER_MANIFEST)

    async def blob_handler(request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        if digest == sha(cfg):
            return web.Response(body=cfg)
        hits["blob"] += 1
        resp = web.StreamResponse(headers={"Content-Length": str(len(blob))})
        await resp.prepare(request)
        if hits["blob"] == 1:  # half the body, then the connection goes
            await resp.write(blob[: len(blob) // 2])
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write(blob)
        return resp

    async with serving("flaky/img", manifest, blob_handler) as name:
        dst = FakeStore()
        rec = await pull(make_service(dst, tmp_path), name)
    assert hits == {"manifest": 2, "blob": 2}
    assert dst.get(name).id == sha(cfg)
    layer = sha(blob)[7:19]
    assert "Retrying in 1 second" in by_id(rec, layer)
    assert by_id(rec, layer)[-1] == "Pull complete"


async def test_a_registry_that_never_answers_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import asyncio
    import time

    held = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    svc = RegistryService(FakeStore(), tmp_path, read_timeout=0.5)
    t0 = time.monotonic()
    try:
        with pytest.raises(errors.ServinError) as exc:
            await svc.pull(parse_normalized(f"127.0.0.1:{port}/x"), ANONYMOUS, None, Recorder())
    finally:
        for w in held:
            w.close()
        server.close()
    assert time.monotonic() - t0 < 10
    assert exc.value.message.startswith(f'Get "http://127.0.0.1:{port}/v2/x/manifests/latest"')


async def test_concurrent_pulls_share_a_layer_transfer(registry: Registry, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from servin.registry import pull as pull_mod

    src = FakeStore()
    base = {"base": os.urandom(3_000_000)}
    src.make_image(f"{registry.host}/shared/a:v1", [base, {"a": b"only a"}], label="a")
    src.make_image(f"{registry.host}/shared/b:v1", [base, {"b": b"only b"}], label="b")
    for name in ("a", "b"):
        await push(make_service(src, tmp_path), f"{registry.host}/shared/{name}:v1")

    fetched: list[str] = []
    real = pull_mod.download_blob

    async def counting(repo, desc, *args, **kwargs):  # type: ignore[no-untyped-def]
        fetched.append(desc.digest)
        await asyncio.sleep(0.3)  # long enough for the other pull to find the transfer under way
        return await real(repo, desc, *args, **kwargs)

    monkeypatch.setattr(pull_mod, "download_blob", counting)
    dst = FakeStore()
    recs = await asyncio.gather(pull(make_service(dst, tmp_path), f"{registry.host}/shared/a:v1"),
                                pull(make_service(dst, tmp_path), f"{registry.host}/shared/b:v1"))
    assert len(fetched) == 3 == len(set(fetched))  # the shared base layer went over the wire once
    assert dst.get(f"{registry.host}/shared/a:v1") and dst.get(f"{registry.host}/shared/b:v1")
    assert any(m.get("status") == "Waiting" for r in recs for m in r.lines)
    assert pull_mod._IN_FLIGHT == {}


async def test_tls_registry_trusted_through_certs_d(tmp_path: Path) -> None:
    """A registry with a certificate from a private CA: refused until certs.d/<host:port>/ca.crt
    holds that CA, as Docker's /etc/docker/certs.d."""
    import shutil

    with running_registry(tls=True) as reg:
        assert reg.ca_path is not None
        src, name = FakeStore(), f"{reg.host}/tls/img:v1"
        three_layers(src, name)
        certs = tmp_path / "certs.d"
        strict = RegistryService(src, tmp_path / "tmp", certs_dirs=(certs,))
        strict.insecure_nets = []  # 127.0.0.1 is insecure by default: make it a registry to verify
        (tmp_path / "tmp").mkdir()
        with pytest.raises(errors.ServinError, match="x509: certificate signed by unknown authority"):
            await push(strict, name)
        (certs / reg.host).mkdir(parents=True)
        shutil.copy(reg.ca_path, certs / reg.host / "ca.crt")
        rec = await push(strict, name)
        assert rec.lines[-1]["aux"]["Tag"] == "v1"
        dst = FakeStore()
        puller = RegistryService(dst, tmp_path / "tmp", certs_dirs=(certs,))
        puller.insecure_nets = []
        await pull(puller, name)
        assert dst.get(name).id == src.get(name).id


def test_certs_d_client_certificates_and_bad_files(tmp_path: Path) -> None:
    import shutil

    from tests.registry.server import make_tls

    ca, cert, key = make_tls(tmp_path)
    host_dir = tmp_path / "certs.d" / "registry.example:5000"
    host_dir.mkdir(parents=True)
    svc = RegistryService(FakeStore(), tmp_path, certs_dirs=(tmp_path / "certs.d",))
    assert svc.tls_context("other.example") is None  # no directory: the system's defaults
    shutil.copy(ca, host_dir / "ca.crt")
    shutil.copy(cert, host_dir / "client.cert")
    with pytest.raises(errors.InvalidArgument, match="missing key client.key"):
        svc.tls_context("registry.example:5000")
    shutil.copy(key, host_dir / "client.key")
    assert svc.tls_context("registry.example:5000") is not None
    (host_dir / "broken.crt").write_text("not a certificate")
    with pytest.raises(errors.InvalidArgument, match="could not load the certificates of registry.example:5000"):
        svc.tls_context("registry.example:5000")


async def test_cut_blob_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    """The second request asks only for what is missing (Range), and the layer still verifies."""
    from aiohttp import web

    blob, cfg, doc = one_layer_image(4 << 20)
    ranges: list[str | None] = []

    async def manifest(request: web.Request) -> web.StreamResponse:
        return web.Response(body=doc, content_type=mf.DOCKER_MANIFEST)

    async def blob_handler(request: web.Request) -> web.StreamResponse:
        if request.match_info["digest"] == sha(cfg):
            return web.Response(body=cfg)
        ranges.append(request.headers.get("Range"))
        start = int(request.headers["Range"].split("=")[1].rstrip("-")) if "Range" in request.headers else 0
        body = blob[start:]
        resp = web.StreamResponse(status=206 if start else 200, headers={"Content-Length": str(len(body))})
        await resp.prepare(request)
        if len(ranges) == 1:  # 60% of it, then the connection goes
            await resp.write(body[: len(blob) * 6 // 10])
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write(body)
        return resp

    async with serving("resume/img", manifest, blob_handler) as name:
        dst = FakeStore()
        await pull(make_service(dst, tmp_path), name)
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    start = int(ranges[1][6:-1])
    assert 0 < start <= len(blob) * 6 // 10  # it asked for the rest only (what it had kept is not fetched again)
    assert dst.get(name).id == sha(cfg)
