"""Pure parts of the registry client: progress lines, challenges, X-Registry-Auth, platforms, errors."""

from __future__ import annotations

import base64
import json

import pytest

from servin import errors
from servin.daemon.config import ConfigError
from servin.api.wire import progress
from servin.registry import auth, manifest as mf, search
from servin.registry.errors import RegistryError, from_response, translate_pull
from servin.registry.service import RegistryService

pytestmark = pytest.mark.unit


def test_human_size_and_bar_as_dockerd_renders_them() -> None:
    assert progress.human_size(0) == "0B"
    assert progress.human_size(999) == "999B"
    assert progress.human_size(2_592_000) == "2.592MB"
    assert progress.human_size(1_000_000) == "1MB"
    assert progress.human_size(104_857_600) == "104.9MB"
    assert progress.bar(0, 0) == ""
    assert progress.bar(1_000_000, 2_000_000) == "[" + "=" * 25 + ">" + " " * 25 + "]      1MB/2MB"
    assert progress.bar(2_000_000, 2_000_000).startswith("[" + "=" * 50 + ">] ")
    assert progress.bar(1500, 0) == "   1.5kB"
    assert progress.bar(1_200_000, 4_800_000) == "[" + "=" * 12 + ">" + " " * 38 + "]    1.2MB/4.8MB"
    assert progress.bar(100, 100) == "[" + "=" * 50 + ">]     100B/100B"
    assert [progress.human_size(n) for n in (512, 1000, 1234, 5 * 10**9)] == ["512B", "1kB", "1.234kB", "5GB"]


def test_progress_lines_in_go_field_order() -> None:
    line = progress.update("abc", "Downloading", 10, 100)
    assert list(line) == ["status", "progressDetail", "progress", "id"]
    assert line["progressDetail"] == {"current": 10, "total": 100}
    assert progress.update("abc", "Pull complete") == {"status": "Pull complete", "progressDetail": {}, "id": "abc"}
    assert progress.message("Pulling from library/busybox", "latest") == {
        "status": "Pulling from library/busybox", "id": "latest"}
    assert progress.error("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}
    assert progress.dumps(progress.aux({"Tag": "v1"})) == b'{"progressDetail":{},"aux":{"Tag":"v1"}}\r\n'


def test_challenges() -> None:
    got = auth.parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                                'scope="repository:library/busybox:pull",error="insufficient_scope"')
    assert got == [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                               "scope": "repository:library/busybox:pull", "error": "insufficient_scope"})]
    assert auth.parse_challenges('Basic realm="x"') == [("basic", {"realm": "x"})]
    assert auth.parse_challenges('Basic realm="a b", Bearer realm="y"') == [("basic", {"realm": "a b"}),
                                                                            ("bearer", {"realm": "y"})]
    assert auth.parse_challenges("") == []


def test_registry_auth_header() -> None:
    raw = json.dumps({"username": "u", "password": "p:w", "serveraddress": "localhost:5000"}).encode()
    got = auth.decode_header(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert (got.username, got.password, got.server_address) == ("u", "p:w", "localhost:5000")
    assert auth.decode_header(base64.b64encode(b'{"identitytoken":"tok"}').decode()).identity_token == "tok"
    assert auth.decode_header("e30=").empty  # {} as the CLI sends for anonymous pulls
    assert auth.decode_header("%%% not base64").empty
    assert auth.from_dict({"auth": base64.b64encode(b"me:secret").decode()}).password == "secret"


def test_platform_parsing_and_selection() -> None:
    assert str(mf.parse_platform("linux/arm64/v8")) == "linux/arm64"
    assert str(mf.parse_platform("linux/arm")) == "linux/arm/v7"
    assert str(mf.parse_platform("linux/x86_64")) == "linux/amd64"
    assert mf.parse_platform("") is None
    with pytest.raises(errors.InvalidArgument):
        mf.parse_platform("plan9/amd64/x/y")
    entries = [mf.Descriptor(mf.OCI_MANIFEST, f"sha256:{n}", 1, p) for n, p in enumerate([
        {"os": "linux", "architecture": "arm", "variant": "v6"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        {"os": "linux", "architecture": "amd64"},
        {"os": "unknown", "architecture": "unknown"}])]
    assert mf.select(entries, mf.parse_platform("linux/arm/v7")).digest == "sha256:1"
    assert mf.select(entries, mf.parse_platform("linux/arm/v6")).digest == "sha256:0"
    assert mf.select(entries, mf.parse_platform("linux/arm64")).digest == "sha256:2"
    assert mf.select(entries, mf.Platform("linux", "amd64")).digest == "sha256:3"
    with pytest.raises(errors.NotFound, match="no matching manifest for linux/riscv64 in the manifest list entries"):
        mf.select(entries, mf.parse_platform("linux/riscv64"))


def test_registry_errors_as_docker_words_them() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}'
    err = from_response(404, body)
    assert isinstance(err, RegistryError) and str(err) == "manifest unknown: manifest unknown"
    assert translate_pull(err, "localhost:5000/x:latest", "localhost:5000/x").message == (
        "manifest for localhost:5000/x:latest not found: manifest unknown: manifest unknown")
    denied = from_response(401, b"", 'Bearer realm="r",error="insufficient_scope"')
    got = translate_pull(denied, "x:latest", "x")
    assert isinstance(got, errors.NotFound)
    assert got.message == ("pull access denied for x, repository does not exist or may require 'docker login': "
                           "denied: requested access to the resource is denied")
    assert str(from_response(401, b'{"details":"incorrect username or password"}')) == (
        "unauthorized: incorrect username or password")
    assert isinstance(from_response(503, b""), errors.SystemError_)


async def test_insecure_registries(tmp_path) -> None:
    svc = RegistryService(None, tmp_path, insecure_registries=("10.1.0.0/16", "myreg.example:5000"))
    assert await svc.is_insecure("localhost:5000")
    assert await svc.is_insecure("127.0.0.1:5000")
    assert await svc.is_insecure("10.1.2.3:443")
    assert await svc.is_insecure("myreg.example:5000")
    assert not await svc.is_insecure("10.2.0.1:5000")
    assert [e.url for e in await svc.endpoints("localhost:5000")] == ["https://localhost:5000", "http://localhost:5000"]
    assert [e.url for e in await svc.endpoints("quay.io")] == ["https://quay.io"]
    mirrored = RegistryService(None, tmp_path, mirrors=("mirror.example:5000",))
    assert [e.url for e in await mirrored.endpoints("docker.io")] == ["https://mirror.example:5000",
                                                                      "https://registry-1.docker.io"]
    assert [e.url for e in await mirrored.endpoints("docker.io", push=True)] == ["https://registry-1.docker.io"]


def test_daemon_flags_and_file_keys(tmp_path) -> None:
    import argparse

    from servin.daemon.config import add_daemon_flags, resolve

    p = argparse.ArgumentParser()
    add_daemon_flags(p)
    cfg_file = tmp_path / "daemon.json"
    cfg_file.write_text(json.dumps({"insecure-registries": ["10.0.0.0/8"], "registry-mirrors": ["https://m"]}))
    cfg = resolve(p.parse_args(["--config-file", str(cfg_file)]))
    assert cfg.insecure_registries == ("10.0.0.0/8",) and cfg.registry_mirrors == ("https://m",)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    cfg = resolve(p.parse_args(["--insecure-registry", "a:5000", "--insecure-registry", "b:5000",
                                "--config-file", str(empty)]))
    assert cfg.insecure_registries == ("a:5000", "b:5000")
    with pytest.raises(ConfigError, match="insecure-registries"):
        resolve(p.parse_args(["--insecure-registry", "x", "--config-file", str(cfg_file)]))


def test_search_results_typed_and_filtered_as_dockerd() -> None:
    results = search.parse_results([
        {"name": "a", "star_count": 12, "is_official": True}, "junk",
        {"name": "b", "description": "x", "star_count": None, "is_automated": 1},
    ])
    assert [r.name for r in results] == ["a", "b"] and results[1].star_count == 0 and results[1].is_automated
    assert [r.name for r in search.select(results, {"stars": ["10"]})] == ["a"]
    assert [r.name for r in search.select(results, {"is-official": ["false"]})] == ["b"]
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'stars=many'"):
        search.select(results, {"stars": ["many"]})
