"""`docker build` with the classic builder, through the docker CLI (DOCKER_BUILDKIT=0) and docker-py:
dockerd's output line for line, the image, its history, the cache, the errors."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e

ID = r"[0-9a-f]{12}"
DEPRECATION = "DEPRECATED: The legacy builder is deprecated"


def build(d: ServinDaemon, ctx: Path, *args: str, check: bool = True, input: bytes | None = None,
          ) -> subprocess.CompletedProcess[bytes]:
    env = dict(d.env, DOCKER_BUILDKIT="0")
    res = subprocess.run(["docker", "build", *args, str(ctx) if input is None else "-"], env=env,
                         capture_output=True, timeout=180, input=input)
    if check and res.returncode != 0:
        raise AssertionError(f"docker build exited {res.returncode}\nstdout: {res.stdout.decode()}\n"
                             f"stderr: {res.stderr.decode()}\ndaemon log:\n{d.log()}")
    return res


def lines(res: subprocess.CompletedProcess[bytes]) -> list[str]:
    """The daemon's lines (the CLI's "Sending build context" and the blank line after it left out)."""
    out = [ln for ln in res.stdout.decode().splitlines() if not ln.startswith("Sending build context")]
    while out and not out[0]:
        out.pop(0)
    return out


def out(d: ServinDaemon, *args: str) -> str:
    return d.docker(*args).stdout.decode()


def write(ctx: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def match(expected: list[str], got: list[str]) -> None:
    assert len(got) == len(expected), "\n".join(got)
    for e, g in zip(expected, got, strict=True):
        assert re.fullmatch(e, g), f"{g!r} does not match {e!r}\n" + "\n".join(got)


SLICE = """FROM busybox
RUN echo hello && mkdir /made
COPY file.txt /data/
ENV X=1
CMD ["sh", "-c", "cat /data/file.txt; echo $X"]
"""


def test_build_output_image_and_history_as_dockerd(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": SLICE, "file.txt": "content\n"})
    res = build(servin, ctx, "-t", "slice")
    assert DEPRECATION in res.stderr.decode()
    match([
        r"Step 1/5 : FROM busybox", rf" ---> {ID}",
        r"Step 2/5 : RUN echo hello && mkdir /made", rf" ---> Running in {ID}", "hello",
        rf"Removing intermediate container {ID}", rf" ---> {ID}",
        r"Step 3/5 : COPY file.txt /data/", rf" ---> {ID}",
        r"Step 4/5 : ENV X=1", rf" ---> Running in {ID}", rf"Removing intermediate container {ID}", rf" ---> {ID}",
        r'Step 5/5 : CMD \["sh", "-c", "cat /data/file.txt; echo \$X"\]', rf" ---> Running in {ID}",
        rf"Removing intermediate container {ID}", rf" ---> {ID}",
        rf"Successfully built {ID}", "Successfully tagged slice:latest",
    ], lines(res))
    built = lines(res)[-2].split()[-1]
    assert out(servin, "image", "inspect", "-f", "{{.Id}}", "slice").startswith("sha256:" + built)
    assert out(servin, "run", "--rm", "slice") == "content\n1\n"
    assert out(servin, "run", "--rm", "slice", "ls", "-d", "/made") == "/made\n"
    history = out(servin, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "slice").splitlines()
    assert history[0] == '/bin/sh -c #(nop)  CMD ["sh" "-c" "cat /data/file.txt; echo $X"]|0B'
    assert history[1] == "/bin/sh -c #(nop)  ENV X=1|0B"
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /data/ \|8B", history[2])
    assert history[3].startswith("/bin/sh -c echo hello && mkdir /made|")
    config = json.loads(out(servin, "image", "inspect", "slice"))[0]
    assert "X=1" in config["Config"]["Env"]
    assert config["Config"]["Cmd"] == ["sh", "-c", "cat /data/file.txt; echo $X"]
    assert out(servin, "ps", "-aq") == ""  # every intermediate container is gone


def test_quiet_and_iidfile(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM busybox\nLABEL quiet=yes\n"})
    res = build(servin, ctx, "-q", "--iidfile", str(tmp_path / "iid"))
    image_id = res.stdout.decode().strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    assert (tmp_path / "iid").read_text().strip() == image_id
    assert out(servin, "image", "inspect", "-f", "{{.Config.Labels.quiet}}", image_id) == "yes\n"


def test_failed_run_as_dockerd(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo before\nRUN false\n"})
    res = build(servin, ctx, "--force-rm", check=False)
    assert res.returncode == 1
    assert "The command '/bin/sh -c false' returned a non-zero code: 1" in res.stderr.decode()
    assert out(servin, "ps", "-aq") == ""  # --force-rm: the failed step's container too


def test_error_line_carries_the_exit_code(servin: ServinDaemon) -> None:
    client = docker.APIClient(base_url=servin.host, version="1.41")
    try:
        df = io.BytesIO(b"FROM busybox\nRUN exit 3\n")
        stream = list(client.build(fileobj=df, forcerm=True, decode=True))
    finally:
        client.close()
    assert stream[-1] == {"errorDetail": {"code": 3, "message": "The command '/bin/sh -c exit 3' returned a "
                                                             "non-zero code: 3"},
                          "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3"}


def test_cache_rules_and_restart(daemon: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": SLICE, "file.txt": "content\n"})
    first = lines(build(daemon, ctx, "-t", "cached"))
    again = lines(build(daemon, ctx, "-t", "cached"))
    assert again.count(" ---> Using cache") == 4 and again[-2] == first[-2]
    (ctx / "file.txt").write_text("changed\n")
    changed = lines(build(daemon, ctx))
    assert changed.count(" ---> Using cache") == 1  # the RUN; the COPY and all after it are rebuilt
    assert changed[changed.index("Step 3/5 : COPY file.txt /data/") + 1] != " ---> Using cache"
    rebuilt = lines(build(daemon, ctx, "--no-cache"))
    assert rebuilt.count(" ---> Using cache") == 0
    daemon.stop()
    daemon.start()
    after = lines(build(daemon, ctx))  # the newest image of each step, as dockerd picks
    assert after.count(" ---> Using cache") == 4 and after[-1] == rebuilt[-1]


def test_build_args_and_the_unused_warning(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nARG V=default\nRUN echo v=$V > /v\n"})
    res = lines(build(servin, ctx, "-t", "args", "--build-arg", "V=given", "--build-arg", "NOPE=1"))
    assert "[Warning] One or more build-args [NOPE] were not consumed" in res
    assert out(servin, "run", "--rm", "args", "cat", "/v") == "v=given\n"
    history = out(servin, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "args").splitlines()
    assert history[0] == "|1 V=given /bin/sh -c echo v=$V > /v"
    assert history[1] == "/bin/sh -c #(nop)  ARG V=default"
    other = lines(build(servin, ctx, "--build-arg", "V=other"))
    assert other.count(" ---> Using cache") == 1  # the ARG step; the RUN's args differ


def test_metadata_instructions(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": """FROM busybox
WORKDIR /app
WORKDIR sub
USER 1000:1000
LABEL a=1 b="two words"
EXPOSE 80 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD true
SHELL ["/bin/sh", "-xc"]
ONBUILD RUN echo triggered
ENTRYPOINT ["echo"]
MAINTAINER someone
"""})
    build(servin, ctx, "-t", "meta", "--label", "extra=yes")
    c = json.loads(out(servin, "image", "inspect", "meta"))[0]["Config"]
    assert c["WorkingDir"] == "/app/sub" and c["User"] == "1000:1000"
    assert c["Labels"] == {"a": "1", "b": "two words", "extra": "yes"}
    assert set(c["ExposedPorts"]) == {"80/tcp", "53/udp"} and set(c["Volumes"]) == {"/data"}
    assert c["StopSignal"] == "SIGINT" and c["Shell"] == ["/bin/sh", "-xc"]
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 3}
    assert c["OnBuild"] == ["RUN echo triggered"] and c["Entrypoint"] == ["echo"] and c["Cmd"] is None
    history = out(servin, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "meta").splitlines()
    assert "/bin/sh -c #(nop) WORKDIR /app/sub" in history
    assert "/bin/sh -c #(nop)  VOLUME [/data]" in history and "/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]" in history
    assert history[0] == "/bin/sh -xc #(nop)  LABEL extra=yes"  # through SHELL, as dockerd
    assert '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" \'\\x03\'}' in history
    child = write(tmp_path / "child", {"Dockerfile": "FROM meta\n"})
    res = lines(build(servin, child, "-t", "meta-child"))
    assert res[1] == "# Executing 1 build trigger"
    # the echo's stdout beside the trace's red stderr: the two streams may arrive in either order, and sh
    # may write the trace in more than one piece, each wrapped in red as dockerd's stderr writer does
    text = "\n".join(res)
    stderr = "".join(re.findall(r"\x1b\[91m(.*?)\x1b\[0m", text, re.S))
    assert "+ echo triggered\n" in stderr
    assert "triggered" in re.sub(r"\x1b\[91m.*?\x1b\[0m", "", text, flags=re.S).splitlines()


def test_multi_stage_target_and_copy_from(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": """FROM busybox AS base
RUN echo built > /artifact
FROM busybox AS unused
RUN exit 1
FROM busybox
COPY --from=base /artifact /from-stage
COPY --from=busybox /bin/busybox /copied-busybox
""", "f": "x"})
    res = lines(build(servin, ctx, "-t", "multi"))
    assert res[0] == "Step 1/5 : FROM busybox AS base"  # the unused stage is skipped, not counted
    assert out(servin, "run", "--rm", "multi", "cat", "/from-stage") == "built\n"
    assert out(servin, "run", "--rm", "multi", "ls", "/copied-busybox") == "/copied-busybox\n"
    target = lines(build(servin, ctx, "--target", "base", "-t", "multi-base"))
    assert target[-3].startswith("Successfully built") or target[-2].startswith("Successfully built")
    assert out(servin, "run", "--rm", "multi-base", "cat", "/artifact") == "built\n"


def test_copy_rules_add_archive_and_chown(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"dir/a.txt": "a\n", "dir/sub/b.txt": "b\n", "one.txt": "1\n", "two.txt": "2\n"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("inside/t.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"t\n"))
    (ctx / "arch.tar.gz").write_bytes(buf.getvalue())
    (ctx / "Dockerfile").write_text("""FROM busybox
COPY dir /copied
COPY *.txt /many/
COPY one.txt /renamed
COPY --chown=nobody:nogroup one.txt /owned/
ADD arch.tar.gz /extracted/
WORKDIR /w
COPY one.txt .
""")
    build(servin, ctx, "-t", "copies")
    script = ("cat /copied/a.txt /copied/sub/b.txt /many/one.txt /many/two.txt /renamed "
              "/extracted/inside/t.txt /w/one.txt; stat -c %U:%G /owned/one.txt")
    assert out(servin, "run", "--rm", "copies", "sh", "-c", script) == "a\nb\n1\n2\n1\nt\n1\nnobody:nogroup\n"
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY one.txt two.txt /notadir\n")
    res = build(servin, ctx, check=False)
    assert ("When using COPY with more than one source file, the destination must be a directory and end "
            "with a /") in res.stderr.decode()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY nosuch /x\n")
    res = build(servin, ctx, check=False)
    assert ("COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does "
            "not exist") in res.stderr.decode()


def test_dockerignore_and_stdin_dockerfile(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", ".dockerignore": "secret\n.dockerignore\n",
                           "secret": "s", "kept": "k"})
    build(servin, ctx, "-t", "ignored")
    assert out(servin, "run", "--rm", "ignored", "ls", "-A", "/ctx") == "Dockerfile\nkept\n"
    build(servin, ctx, "-t", "stdin", input=b"FROM busybox\nENV FROM_STDIN=1\n")
    assert "FROM_STDIN=1" in out(servin, "image", "inspect", "-f", "{{.Config.Env}}", "stdin")


def test_dockerfile_elsewhere(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", {"f": "in context\n"})
    outside = write(tmp_path / "elsewhere", {"Build.df": "FROM busybox\nCOPY f /f\n"})
    build(servin, ctx, "-f", str(outside / "Build.df"), "-t", "outside")  # the CLI puts it into the tar
    assert out(servin, "run", "--rm", "outside", "cat", "/f") == "in context\n"
    write(ctx, {"sub/Other.df": "FROM busybox\nENV WHERE=sub\n"})
    build(servin, ctx, "-f", str(ctx / "sub" / "Other.df"), "-t", "insub")
    assert "WHERE=sub" in out(servin, "image", "inspect", "-f", "{{.Config.Env}}", "insub")


def test_errors_as_dockerd(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nFOO bar\n"})
    res = build(servin, ctx, check=False)
    assert "dockerfile parse error line 2: unknown instruction: FOO" in res.stderr.decode()
    client = docker.APIClient(base_url=servin.host, version="1.41")
    try:
        with pytest.raises(docker.errors.APIError) as err:
            list(client.build(path=str(ctx), dockerfile="missing.Dockerfile"))
    finally:
        client.close()
    assert err.value.status_code == 400
    assert err.value.explanation == "Cannot locate specified Dockerfile: missing.Dockerfile"
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=cache,target=/x true\n")
    res = build(servin, ctx, check=False)
    assert "the --mount option requires BuildKit" in res.stderr.decode()


def test_buildkit_requests_name_docker_buildkit_0(servin: ServinDaemon) -> None:
    client = docker.APIClient(base_url=servin.host, version="1.41")
    try:
        for path in ("/session", "/grpc"):
            r = client._post(client._url(path))
            assert r.status_code == 400 and "DOCKER_BUILDKIT=0" in r.json()["message"]
        r = client._post(client._url("/build"), params={"version": "2"}, data=b"")
        assert r.status_code == 400 and "DOCKER_BUILDKIT=0" in r.json()["message"]
        r = client._post(client._url("/build"), params={"squash": "1"}, data=b"")
        assert r.status_code == 400 and r.json()["message"] == "squash is only supported with experimental mode"
    finally:
        client.close()


@pytest.fixture
def client(servin: ServinDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=servin.host, version="auto", timeout=120)
    yield c
    c.close()


def test_docker_py_images_build(client: docker.DockerClient, tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM busybox\nARG GREETING\nRUN echo $GREETING > /g\nCMD cat /g\n"})
    image, logs = client.images.build(path=str(tmp_path), tag="py-built", buildargs={"GREETING": "hi"}, rm=True)
    assert "py-built:latest" in image.tags
    assert any("Successfully built" in entry.get("stream", "") for entry in logs)
    assert client.containers.run("py-built", remove=True) == b"hi\n"
    with pytest.raises(docker.errors.BuildError) as err:
        client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 7\n"), forcerm=True)
    assert "returned a non-zero code: 7" in str(err.value)


def test_killed_daemon_leaves_no_step_container(daemon: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN sleep 30\n"})
    proc = subprocess.Popen(["docker", "build", str(ctx)], env=dict(daemon.env, DOCKER_BUILDKIT="0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not out(daemon, "ps", "-q"):
            time.sleep(0.2)
        assert out(daemon, "ps", "-q")
        daemon.kill9()
    finally:
        proc.kill()
        proc.wait()
    daemon.start()
    assert out(daemon, "ps", "-aq") == ""


def test_client_gone_removes_the_step_container(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN sleep 30\n"})
    proc = subprocess.Popen(["docker", "build", str(ctx)], env=dict(servin.env, DOCKER_BUILDKIT="0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not out(servin, "ps", "-q"):
        time.sleep(0.2)
    assert out(servin, "ps", "-q")
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and out(servin, "ps", "-aq"):
        time.sleep(0.2)
    assert out(servin, "ps", "-aq") == ""


def test_step_containers_get_the_host_options(servin: ServinDaemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN grep myhost /etc/hosts; ip -o link | grep -c eth0 || true;"
                                         " cat /sys/fs/cgroup/memory.max 2>/dev/null ||"
                                         " cat /sys/fs/cgroup/memory/memory.limit_in_bytes\n"})
    res = lines(build(servin, ctx, "--add-host", "myhost:10.9.8.7", "--network", "none", "--memory", "64m",
                      "--no-cache"))
    assert "10.9.8.7\tmyhost" in res  # --add-host
    assert "0" in res  # --network none: no eth0
    assert str(64 << 20) in res  # --memory


def test_from_pulls_with_the_clients_credentials(servin: ServinDaemon, tmp_path: Path) -> None:
    pytest.importorskip("tests.registry.server")
    from tests.registry.server import REGISTRY_BIN, USERS, running_registry
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry is not installed")
    with running_registry("htpasswd") as reg:
        name = f"localhost:{reg.port}/e2e/base:v1"
        login = subprocess.run(["docker", "login", "-u", "alice", "--password-stdin", f"localhost:{reg.port}"],
                               input=USERS["alice"].encode() + b"\n", env=servin.env, capture_output=True, timeout=60)
        assert login.returncode == 0, login.stderr
        try:
            servin.docker("tag", "busybox", name)
            servin.docker("push", name)
            servin.docker("rmi", name)
            ctx = write(tmp_path, {"Dockerfile": f"FROM {name}\nRUN echo on-pulled\n"})
            res = lines(build(servin, ctx, "-t", "pulled"))  # the CLI sends X-Registry-Config
            assert res[:2] == [f"Step 1/2 : FROM {name}", "v1: Pulling from e2e/base"], res
            assert f"Status: Downloaded newer image for {name}" in res and "on-pulled" in res
            res = lines(build(servin, ctx, "--pull"))
            assert f"Status: Image is up to date for {name}" in res and " ---> Using cache" in res
        finally:
            servin.docker("logout", f"localhost:{reg.port}")
        ctx = write(tmp_path, {"Dockerfile": f"FROM localhost:{reg.port}/e2e/nosuch\n"})
        res = build(servin, ctx, check=False)
        assert res.returncode == 1 and "e2e/nosuch" in res.stderr.decode()


def test_add_downloads_urls(servin: ServinDaemon, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.txt").write_text("from the web\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        ctx = write(tmp_path / "ctx", {"Dockerfile": f"FROM busybox\nADD {url}/remote.txt /dl/\n"
                                                     f"ADD {url}/remote.txt /renamed\n"})
        build(servin, ctx, "-t", "downloaded")
        got = out(servin, "run", "--rm", "downloaded", "sh", "-c", "cat /dl/remote.txt; stat -c %a /renamed")
        assert got == "from the web\n600\n"
        again = lines(build(servin, ctx))
        assert again.count(" ---> Using cache") == 2  # the same content: cached (after the download)
        ctx = write(tmp_path / "ctx", {"Dockerfile": f"FROM busybox\nADD {url}/missing.txt /x\n"})
        res = build(servin, ctx, check=False)
        assert res.returncode == 1 and "404" in res.stderr.decode()
    finally:
        server.shutdown()


def test_remote_contexts(servin: ServinDaemon, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    src = write(tmp_path / "src", {"Dockerfile": "FROM busybox\nCOPY hello /hello\n", "hello": "remote tar\n"})
    subprocess.run(["tar", "czf", str(served / "ctx.tar.gz"), "-C", str(src), "."], check=True)
    (served / "Dockerfile.txt").write_text("FROM busybox\nENV PLAIN=1\n")
    repo = write(tmp_path / "repo", {"sub/Dockerfile": "FROM busybox\nCOPY f /f\n", "sub/f": "from git\n"})
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "c"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(served / "repo.git")], check=True)
    subprocess.run(["git", "-C", str(served / "repo.git"), "update-server-info"], check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = docker.APIClient(base_url=servin.host, version="1.41")
    try:
        for remote, tag in ((f"{url}/ctx.tar.gz", "remote-tar"), (f"{url}/Dockerfile.txt", "remote-plain"),
                            (f"{url}/repo.git#main:sub", "remote-git")):
            stream = list(client.build(custom_context=False, path=remote, tag=tag, decode=True))
            assert "error" not in stream[-1], stream
        # a ref that git would read as an option is refused, never passed on
        with pytest.raises(docker.errors.APIError, match="invalid refspec: --upload-pack=touch /tmp/x"):
            list(client.build(custom_context=False, path=f"{url}/repo.git#--upload-pack=touch /tmp/x:sub"))
    finally:
        client.close()
        server.shutdown()
    assert out(servin, "run", "--rm", "remote-tar", "cat", "/hello") == "remote tar\n"
    assert "PLAIN=1" in out(servin, "image", "inspect", "-f", "{{.Config.Env}}", "remote-plain")
    assert out(servin, "run", "--rm", "remote-git", "cat", "/f") == "from git\n"
