"""Docker's issue-3 features for real: TTY containers, exec, --init, log rotation and driver none."""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import time
from pathlib import Path

import pytest

from servin.runtime import ContainerNotRunning, StartFailed
from servin.runtime.plan import CAP_BITS

from tests.kernel.runtime_helpers import (
    DEFAULT_CAPS,
    Env,
    cgroup_parent,
    env,
    lowerdir,
    read_frames,
    requires_root,
    run,
)

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent", "env", "lowerdir"]  # fixtures

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CAP_MASK = sum(1 << CAP_BITS[c] for c in DEFAULT_CAPS)


async def read_until(reader: asyncio.StreamReader, needle: bytes, timeout: float = 10) -> bytes:
    """stdcopy payloads (any stream) until needle shows up."""
    got = b""
    deadline = time.monotonic() + timeout
    while needle not in got:
        hdr = await asyncio.wait_for(reader.readexactly(8), deadline - time.monotonic())
        got += await reader.readexactly(struct.unpack(">I", hdr[4:])[0])
    return got


async def running(env: Env, args: list[str] | None = None, **kw):  # noqa: ANN003, ANN201
    _, bundle, shim = await env.create(args or ["sleep", "100"], **kw)
    await shim.start()
    return bundle, shim


# --- TTY ---------------------------------------------------------------------------------------


async def test_tty_run_is_pts0_console_and_logged_as_stdout(env: Env) -> None:
    script = "tty; test /dev/console -ef /dev/pts/0 && echo console; stty size; echo err >&2"
    code, out, err, bundle = await run(env, ["sh", "-c", script], terminal=True, console_size=(24, 80))
    assert code == 0
    assert err == b""  # a tty has one stream: everything is stream 1
    assert out == b"/dev/pts/0\r\nconsole\r\n24 80\r\nerr\r\n"
    entries = [json.loads(x) for x in (bundle / "json.log").read_text().splitlines()]
    assert [e["stream"] for e in entries] == ["stdout"] * 4
    assert "".join(e["log"] for e in entries) == out.decode()


async def test_tty_resize_and_stdin(env: Env) -> None:
    _, _, shim = await env.create(["sh", "-c", "echo ready; read x; echo got $x; stty size"], terminal=True,
                                  stdin="open")  # fmt: skip
    r, w = await shim.attach(stdin=True, stdout=True, stderr=True)
    await shim.start()
    await read_until(r, b"ready\r\n")
    await shim.resize(0, 30, 100)
    w.write(b"it\n")
    await w.drain()
    out = await asyncio.wait_for(read_frames(r), 10)
    assert b"got it\r\n30 100\r\n" in out[1]
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 0
    w.close()
    await shim.close()


# --- exec --------------------------------------------------------------------------------------


async def test_exec_output_exit_code_env_user_workdir(env: Env) -> None:
    _, shim = await running(env)
    try:
        ex = await shim.exec(args=["sh", "-c", "echo out $FOO; echo err >&2; pwd; hostname; exit 5"],
                             env=[PATH, "FOO=bar"], cwd="/tmp")  # fmt: skip
        assert ex.pid > 0 and ex.pid != shim.pid
        frames = await asyncio.wait_for(read_frames(ex.reader), 10)
        assert frames[1] == b"out bar\n/tmp\nservintest\n"
        assert frames[2] == b"err\n"
        assert await asyncio.wait_for(ex.wait(), 10) == 5

        script = "id -u; id -g; id -G; grep CapEff /proc/self/status; echo $$; cat /proc/self/cgroup"
        ex = await shim.exec(args=["sh", "-c", script], env=[PATH], uid=65534, gid=65534, groups=[65534, 10])
        lines = (await asyncio.wait_for(read_frames(ex.reader), 10))[1].decode().splitlines()
        assert lines[:3] == ["65534", "65534", "65534 10"]
        assert lines[3].split()[1] == "0000000000000000"
        assert int(lines[4]) > 1  # in the container's pid namespace: a small pid, not the init
        assert env.parent.strip("/") in "\n".join(lines[5:])  # in the container's cgroup
        assert await ex.wait() == 0

        ex = await shim.exec(args=["sh", "-c", "grep CapEff /proc/self/status"], env=[PATH])
        assert (await read_frames(ex.reader))[1].split()[1].decode() == f"{CAP_MASK:016x}"
        assert await ex.wait() == 0
        ex = await shim.exec(args=["sh", "-c", "grep CapEff /proc/self/status"], env=[PATH], caps_privileged=True)
        assert int((await read_frames(ex.reader))[1].split()[1], 16) > CAP_MASK
        assert await ex.wait() == 0

        ex = await shim.exec(args=["sh", "-c", "kill -TERM $$"], env=[PATH])
        assert await asyncio.wait_for(ex.wait(), 10) == 143
    finally:
        await shim.close()


async def test_exec_stdin_and_half_close(env: Env) -> None:
    _, shim = await running(env)
    ex = await shim.exec(args=["sh", "-c", "cat; echo done"], env=[PATH], open_stdin=True)
    ex.writer.write(b"hello\n")
    await ex.writer.drain()
    ex.writer.write(b"world\n")
    ex.writer.write_eof()
    assert (await asyncio.wait_for(read_frames(ex.reader), 10))[1] == b"hello\nworld\ndone\n"
    assert await asyncio.wait_for(ex.wait(), 10) == 0
    await ex.close()
    # output is not written to the container's log
    await shim.close()


async def test_exec_output_is_not_logged_and_large_output_arrives_whole(env: Env) -> None:
    bundle, shim = await running(env, ["sh", "-c", "echo init; sleep 100"])
    ex = await shim.exec(args=["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' e; echo"], env=[PATH])
    await asyncio.sleep(0.5)  # not reading: the shim holds the exec back and loses nothing
    frames = await asyncio.wait_for(read_frames(ex.reader), 30)
    assert frames[1] == b"e" * 3000000 + b"\n"
    assert await ex.wait() == 0
    logged = [json.loads(x)["log"] for x in (bundle / "json.log").read_text().splitlines()]
    assert logged == ["init\n"]
    await shim.close()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nosuchcommand"], 127, 'exec: "nosuchcommand": executable file not found in $PATH'),
        (["/no/such"], 127, 'exec: "/no/such": stat /no/such: no such file or directory'),
        (["/etc"], 126, 'exec: "/etc": permission denied'),
        (["cwd:/nope", "true"], 127, 'chdir to cwd ("/nope") set in config.json failed: no such file or directory'),
    ],
)
async def test_exec_that_cannot_start(env: Env, args: list[str], code: int, message: str) -> None:
    _, shim = await running(env)
    cwd = args.pop(0).removeprefix("cwd:") if args[0].startswith("cwd:") else "/"
    with pytest.raises(StartFailed) as ei:
        await shim.exec(args=args, env=[PATH], cwd=cwd)
    assert (ei.value.exit_code, ei.value.message) == (code, message)
    # the shim is fine afterwards
    ex = await shim.exec(args=["true"], env=[PATH])
    assert await asyncio.wait_for(ex.wait(), 10) == 0
    await shim.close()


async def test_exec_tty_and_resize(env: Env) -> None:
    _, shim = await running(env)
    ex = await shim.exec(args=["sh", "-c", "tty; stty size; read x; stty size; echo err >&2"], env=[PATH],
                         terminal=True, open_stdin=True, console_size=(10, 40))  # fmt: skip
    first = await read_until(ex.reader, b"10 40\r\n")
    assert first.split(b"\r\n")[0] == b"/dev/pts/0"  # the container's own devpts: its first pty
    await shim.resize(ex.pid, 50, 132)
    ex.writer.write(b"go\n")
    await ex.writer.drain()
    rest = await asyncio.wait_for(read_frames(ex.reader), 10)
    assert rest[2] == b""  # a tty: one stream
    assert b"50 132\r\nerr\r\n" in rest[1]
    assert await asyncio.wait_for(ex.wait(), 10) == 0
    with pytest.raises(Exception, match="no such process"):
        await shim.resize(ex.pid, 1, 1)
    await shim.close()


async def test_exec_in_an_exited_container(env: Env) -> None:
    _, _, shim = await env.create(["true"])
    await shim.start()
    await asyncio.wait_for(shim.wait(), 10)
    with pytest.raises(ContainerNotRunning):
        await shim.exec(args=["true"], env=[PATH])
    await shim.close()
    # created, never started
    _, _, shim = await env.create(["true"])
    with pytest.raises(ContainerNotRunning):
        await shim.exec(args=["true"], env=[PATH])
    await shim.close()


async def test_concurrent_execs(env: Env) -> None:
    _, shim = await running(env)

    async def one(i: int) -> tuple[int, bytes, int]:
        ex = await shim.exec(args=["sh", "-c", f"sleep 0.{i}; echo n=$N; exit {i}"], env=[PATH, f"N={i}"])
        frames = await read_frames(ex.reader)
        return i, frames[1], await ex.wait()

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1, 9))), 20)
    for i, out, code in results:
        assert (out, code) == (f"n={i}\n".encode(), i)
    await shim.close()


async def test_exec_is_killed_with_the_container(env: Env) -> None:
    _, shim = await running(env)
    ex = await shim.exec(args=["sleep", "100"], env=[PATH])
    await shim.kill(signal.SIGKILL)
    assert await asyncio.wait_for(ex.wait(), 10) == 137
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 137
    await shim.close()


# --- --init ------------------------------------------------------------------------------------

INIT = {"io.servin.init": "1"}


async def test_init_reaps_zombies_and_passes_the_exit_code(env: Env) -> None:
    script = (
        'sh -c "sleep 0.2 &"; sleep 1; cat /proc/1/cmdline | tr "\\0" " "; echo; '
        "for f in /proc/[0-9]*/stat; do read p c s rest < $f; echo $p $s; done; exit 7"
    )
    code, out, err, _ = await run(env, ["sh", "-c", script], annotations=INIT)
    assert code == 7, err
    lines = out.decode().splitlines()
    assert lines[0].startswith("/sbin/docker-init -- sh -c ")
    states = dict(line.split() for line in lines[1:])
    assert "Z" not in states.values(), states
    assert states["1"] in ("S", "R")


async def test_init_forwards_sigterm(env: Env) -> None:
    _, _, shim = await env.create(["sleep", "100"], annotations=INIT)
    await shim.start()
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await shim.kill(signal.SIGTERM)
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 143
    assert time.monotonic() - t0 < 2
    await shim.close()


async def test_init_with_a_tty(env: Env) -> None:
    code, out, _, _ = await run(env, ["sh", "-c", "tty; echo $$"], annotations=INIT, terminal=True)
    assert code == 0
    tty, pid = out.decode().split()
    assert tty == "/dev/pts/0" and int(pid) > 1


# --- logs --------------------------------------------------------------------------------------


def log_files(bundle: Path) -> dict[str, list[dict]]:
    return {p.name: [json.loads(x) for x in p.read_text().splitlines()] for p in sorted(bundle.glob("json.log*"))}


async def test_log_rotation_keeps_max_file_files(env: Env) -> None:
    script = "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    annotations = {"io.servin.log.max-size": "2k", "io.servin.log.max-file": "3"}
    code, out, _, bundle = await run(env, ["sh", "-c", script], annotations=annotations)
    assert code == 0 and out.count(b"\n") == 200
    files = log_files(bundle)
    assert set(files) == {"json.log", "json.log.1", "json.log.2"}
    for name in ("json.log.1", "json.log.2"):
        size = (bundle / name).stat().st_size
        entry = len((bundle / name).read_text().splitlines()[0]) + 1
        assert 2048 <= size < 2048 + entry  # rotated once it held max-size or more
    assert (bundle / "json.log").stat().st_size < 2048 + 200
    logs = [e["log"] for name in ("json.log.2", "json.log.1", "json.log") for e in files[name]]
    assert logs[-1] == "line-199-xxxxxxxxxxxxxxxxxxxx\n"
    n = len(logs)
    assert logs == [f"line-{i}-xxxxxxxxxxxxxxxxxxxx\n" for i in range(200 - n, 200)]  # in order, no gap


async def test_log_max_file_1_truncates_in_place(env: Env) -> None:
    script = "i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); done"
    code, _, _, bundle = await run(env, ["sh", "-c", script], annotations={"io.servin.log.max-size": "1000"})
    assert code == 0
    files = log_files(bundle)
    assert set(files) == {"json.log"}
    assert (bundle / "json.log").stat().st_size < 1100
    assert files["json.log"][-1]["log"] == "line-99\n"


async def test_log_driver_none_writes_no_file(env: Env) -> None:
    code, out, _, bundle = await run(env, ["echo", "hi"], annotations={"io.servin.log.driver": "none"})
    assert (code, out) == (0, b"hi\n")
    assert not list(bundle.glob("json.log*"))
    code, out, _, bundle = await run(env, ["echo", "hi"], log=False)
    assert (code, out) == (0, b"hi\n")
    assert not list(bundle.glob("json.log*"))


async def test_log_throughput(env: Env) -> None:
    size = 200 * 1024 * 1024
    line = "a" * 99  # 100-byte lines: one json entry each
    script = f"yes {line} | head -c {size}"
    _, bundle, shim = await env.create(["sh", "-c", script])
    t0 = time.monotonic()
    await shim.start()
    assert (await asyncio.wait_for(shim.wait(), 60)).exit_code == 0
    elapsed = time.monotonic() - t0
    logged = (bundle / "json.log").stat().st_size
    assert logged > size
    rate = size / elapsed / 1e6
    print(f"log throughput: {rate:.0f} MB/s of output ({elapsed:.2f} s for {size >> 20} MiB)")
    assert rate > 100
    await shim.close()


async def test_exec_client_gone_exec_runs_on_and_shim_serves(env: Env) -> None:
    bundle, shim = await running(env)
    ex = await shim.exec(args=["sh", "-c", "echo started; sleep 0.5; echo after > /tmp/mark"], env=[PATH])
    await read_until(ex.reader, b"started\n")
    await ex.close()  # the client goes away: the exec runs on
    await asyncio.sleep(1)
    ex = await shim.exec(args=["cat", "/tmp/mark"], env=[PATH])
    assert (await asyncio.wait_for(read_frames(ex.reader), 10))[1] == b"after\n"
    assert await ex.wait() == 0
    # detached: nobody reads, the output is dropped and the exec is not held back
    ex = await shim.exec(args=["sh", "-c", "head -c 5000000 /dev/zero"], env=[PATH], stdout=False, stderr=False)
    assert await asyncio.wait_for(ex.wait(), 10) == 0
    assert await ex.reader.read() == b""
    await shim.close()


async def test_exec_after_reconnect_and_without_pid_namespace(env: Env) -> None:
    cid, _, shim = await env.create(["sleep", "100"], namespaces=("mount", "uts", "ipc", "network"))
    await shim.start()
    await shim.close()  # the daemon restarts
    again = await env.runtime.reattach(cid)
    assert again is not None
    ex = await again.exec(args=["sh", "-c", "hostname; grep CapEff /proc/self/status"], env=[PATH])
    out = (await asyncio.wait_for(read_frames(ex.reader), 10))[1].split()
    assert out[0] == b"servintest" and out[2].decode() == f"{CAP_MASK:016x}"  # the container's caps
    assert await ex.wait() == 0
    await again.close()
