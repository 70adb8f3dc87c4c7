"""The listener under abuse, through curl and the docker clients against a real daemon: a web page's
text/plain post creates nothing, and a 300 MB JSON body is refused without raising the daemon's memory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import docker

from servin.api.context import JSON_BODY_LIMIT
from tests.support.daemon import ServinDaemon

BIG = 300 << 20
# the daemon's peak resident memory may grow by this much while refusing a 300 MB body (it used to be 1.9 GB)
RSS_BOUND = 100 << 20


def curl(d: ServinDaemon, *args: str, stdin: object = None) -> tuple[int, str]:
    res = subprocess.run(["curl", "-sS", "--unix-socket", str(d.socket), "-w", "\n%{http_code}", *args],
                         stdin=stdin, capture_output=True, timeout=60)  # type: ignore[call-overload]
    body, _, code = res.stdout.decode().rpartition("\n")
    return int(code), body


def peak_rss(d: ServinDaemon) -> int:
    assert d.proc is not None
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM")


def names(d: ServinDaemon) -> list[str]:
    return d.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()


def test_a_text_plain_create_is_refused_with_dockerd_s_message_and_creates_nothing(servin: ServinDaemon) -> None:
    body = json.dumps({"Image": "busybox", "Cmd": ["true"]})
    for ct in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        code, answer = curl(servin, "-X", "POST", "-H", f"Content-Type: {ct}", "--data-binary", body,
                            "http://localhost/v1.41/containers/create?name=fromapage")
        expected = {"message": f"Content-Type specified ({ct}) must be 'application/json'",
                    "code": "VALIDATION_ERROR"}
        assert (code, json.loads(answer)) == (400, expected)
    assert "fromapage" not in names(servin)


def test_a_300_mb_json_body_is_refused_quickly_and_the_daemon_stays_small(servin: ServinDaemon, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(BIG)  # sparse: costs no disk
    before = peak_rss(servin)
    t0 = time.monotonic()
    # with a Content-Length: refused from the headers
    code, answer = curl(servin, "-X", "POST", "-H", "Content-Type: application/json", "-T", str(big),
                        "http://localhost/v1.41/containers/create")
    assert code == 413
    assert json.loads(answer)["message"] == (f"request body too large ({BIG} bytes): a JSON body is limited to "
                                             f"{JSON_BODY_LIMIT >> 20} MiB")
    # chunked, no length: refused once the limit is passed
    with open(big, "rb") as stdin:
        code, answer = curl(servin, "-X", "POST", "-H", "Content-Type: application/json", "-T", "-",
                            "http://localhost/v1.41/networks/create", stdin=stdin)
    assert code == 413
    assert "a JSON body is limited to" in json.loads(answer)["message"]
    assert time.monotonic() - t0 < 30
    assert peak_rss(servin) - before < RSS_BOUND, (before, peak_rss(servin))
    assert servin.docker("version", "--format", "{{.Server.Version}}").stdout.strip()


def test_the_docker_clients_still_send_what_the_daemon_takes(servin: ServinDaemon, tmp_path: Path) -> None:
    servin.docker("run", "--rm", "busybox", "true")
    archive = tmp_path / "busybox.tar"
    servin.docker("save", "-o", str(archive), "busybox")
    assert b"Loaded image" in servin.docker("load", "-i", str(archive)).stdout
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20) * (2 * JSON_BODY_LIMIT >> 20))  # a tar upload past the JSON cap
    servin.docker("create", "--name", "cptarget", "busybox", "true")
    try:
        servin.docker("cp", str(big), "cptarget:/big.bin")
        with tarfile.open(fileobj=io.BytesIO(servin.docker("cp", "cptarget:/big.bin", "-").stdout)) as tf:
            assert tf.getmember("big.bin").size == big.stat().st_size
    finally:
        servin.docker("rm", "-f", "cptarget")
    client = docker.DockerClient(base_url=servin.host, version="auto", timeout=60)
    try:
        net = client.networks.create("bodies-net", labels={"a": "b"})
        assert client.containers.run("busybox", ["echo", "hi"], remove=True, network="bodies-net") == b"hi\n"
        net.remove()
    finally:
        client.close()
