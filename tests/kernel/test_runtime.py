"""The runtime for real: busybox containers through Runtime, servin-shim and cgroups."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import uuid
from pathlib import Path

import pytest

from servin.runtime import ProcessSpec, Runtime, StartFailed
from servin.runtime.plan import CAP_BITS

from tests.kernel.runtime_helpers import (
    DEFAULT_CAPS,
    Env,
    cgroup_parent,
    env,
    lowerdir,
    oci_config,
    read_frames,
    requires_root,
    run,
)

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent", "env", "lowerdir"]  # fixtures


async def test_echo_hello_attach_and_log(env: Env) -> None:
    code, out, err, bundle = await run(env, ["echo", "hello"])
    assert (code, out, err) == (0, b"hello\n", b"")
    lines = (bundle / "json.log").read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["log"] == "hello\n" and entry["stream"] == "stdout"
    assert entry["time"].endswith("Z") and entry["time"][:2] == "20"
    exit_info = json.loads((bundle / "exit.json").read_text())
    assert exit_info["exit_code"] == 0 and exit_info["pid"] > 0
    assert exit_info["started_at"] <= exit_info["finished_at"]


async def test_log_escaping_and_partial_lines(env: Env) -> None:
    code, out, err, bundle = await run(
        env, ["sh", "-c", r"""printf 'a<b>&"\\\t\001\n'; printf 'x\377y\n' >&2; printf tail"""]
    )
    assert code == 0
    raw = (bundle / "json.log").read_text().splitlines()
    assert raw[0].startswith(r'{"log":"a\u003cb\u003e\u0026\"\\\t\u0001\n","stream":"stdout","time":"')
    entries = [json.loads(x) for x in raw]
    by_stream = {(e["stream"], e["log"]) for e in entries}
    assert ("stderr", "x\ufffdy\n") in by_stream
    assert ("stdout", "tail") in by_stream


async def test_long_lines_are_cut_at_16k(env: Env) -> None:
    code, out, _, bundle = await run(env, ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; echo short"])
    assert code == 0 and out == b"a" * 40000 + b"\nshort\n"
    logs = [json.loads(x)["log"] for x in (bundle / "json.log").read_text().splitlines()]
    assert logs == ["a" * 16384, "a" * 16384, "a" * 7232 + "\n", "short\n"]


async def test_delete_removes_shim_cgroup_and_state(env: Env) -> None:
    cid, _, shim = await env.create(["sleep", "100"])
    await shim.start()
    state = env.runtime.state_dir(cid)
    shim_pid = int((state / "shim.pid").read_text())
    cgpath = dict(env.created)[cid]
    await shim.close()
    await env.runtime.delete(cid)
    assert not state.exists()
    assert not Path("/sys/fs/cgroup/memory", cgpath.strip("/")).exists()
    for _ in range(50):
        if not Path(f"/proc/{shim_pid}").exists():
            break
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{shim_pid}").exists() or "Z" in Path(f"/proc/{shim_pid}/stat").read_text().split()[2]
    # a created, never started container goes the same way
    cid, _, shim = await env.create(["true"])
    await shim.close()
    await env.runtime.delete(cid)
    assert not env.runtime.state_dir(cid).exists()


@pytest.mark.parametrize(
    ("args", "code"),
    [(["true"], 0), (["sh", "-c", "exit 3"], 3), (["sh", "-c", "kill -9 $$"], 137)],
)
async def test_exit_codes(env: Env, args: list[str], code: int) -> None:
    # pid 1 ignores signals it has no handler for, except from outside: run without a pid ns for 137
    ns = ("mount", "uts", "ipc", "network") if code == 137 else ("pid", "mount", "uts", "ipc", "network")
    assert (await run(env, args, namespaces=ns))[0] == code


async def test_missing_command_is_127(env: Env) -> None:
    _, _, shim = await env.create(["nosuchcommand"])
    with pytest.raises(StartFailed) as ei:
        await shim.start()
    assert ei.value.exit_code == 127
    assert ei.value.message == 'exec: "nosuchcommand": executable file not found in $PATH'
    await shim.close()


async def test_directory_is_126(env: Env) -> None:
    _, _, shim = await env.create(["/etc"])
    with pytest.raises(StartFailed) as ei:
        await shim.start()
    assert ei.value.exit_code == 126
    assert ei.value.message == 'exec: "/etc": permission denied'
    await shim.close()


async def test_kill_9_is_137_and_trapped_term_is_143(env: Env) -> None:
    _, _, shim = await env.create(["sleep", "100"])
    await shim.start()
    await shim.kill(signal.SIGKILL)
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 137
    await shim.close()

    # pid 1 with a TERM trap
    _, _, shim = await env.create(["sh", "-c", "trap 'exit 143' TERM; echo ready; while :; do sleep 0.05; done"])
    r, w = await shim.attach(stdin=False, stdout=True, stderr=False)
    await shim.start()
    hdr = await asyncio.wait_for(r.readexactly(8), 10)
    assert await r.readexactly(struct.unpack(">I", hdr[4:])[0]) == b"ready\n"
    await shim.kill(signal.SIGTERM)
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 143
    w.close()
    await shim.close()

    # a plain process (no pid ns) killed by SIGTERM
    _, _, shim = await env.create(["sleep", "100"], namespaces=("mount", "uts", "ipc", "network"))
    await shim.start()
    await shim.kill(signal.SIGTERM)
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 143
    await shim.close()


async def test_stdin_pipe_and_half_close(env: Env) -> None:
    _, _, shim = await env.create(["cat"], stdin="once")
    r, w = await shim.attach(stdin=True, stdout=True, stderr=True)
    w.write(b"early bytes\n")  # before start: buffered by the shim
    await w.drain()
    await shim.start()
    w.write(b"more\n")
    await w.drain()
    w.write_eof()
    frames = await asyncio.wait_for(read_frames(r), 10)
    assert frames[1] == b"early bytes\nmore\n"
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 0
    w.close()
    await shim.close()


async def test_close_stdin_command(env: Env) -> None:
    _, _, shim = await env.create(["sh", "-c", "cat; echo done"], stdin="open")
    r, w = await shim.attach(stdin=True, stdout=True, stderr=False)
    await shim.start()
    w.write(b"x\n")
    await w.drain()
    await asyncio.sleep(0.1)
    await shim.close_stdin()
    frames = await asyncio.wait_for(read_frames(r), 10)
    assert frames[1] == b"x\ndone\n"
    w.close()
    await shim.close()


async def test_hostname_pid1_caps_user(env: Env) -> None:
    script = "hostname; echo pid=$$; grep CapEff /proc/self/status; id -u; ls /dev; cat /proc/sys/kernel/ostype"
    code, out, err, _ = await run(env, ["sh", "-c", script], hostname="boxy")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert lines[0] == "boxy"
    assert lines[1] == "pid=1"
    mask = sum(1 << CAP_BITS[c] for c in DEFAULT_CAPS)
    assert lines[2].split()[1] == f"{mask:016x}"
    assert lines[3] == "0"
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "ptmx", "pts", "shm", "mqueue"):
        assert dev in lines[4:], out
    assert lines[-1] == "Linux"

    code, out, err, _ = await run(
        env, ["sh", "-c", "id -u; id -g; grep CapEff /proc/self/status"], uid=65534, gid=65534
    )
    assert code == 0, err
    assert out.decode().split() == ["65534", "65534", "CapEff:", "0000000000000000"]


async def test_readonly_and_masked_paths(env: Env) -> None:
    script = (
        "echo 1 > /proc/sys/kernel/ostype 2>/dev/null && echo writable; wc -c < /proc/timer_list; "
        "ls /sys/fs/cgroup; touch /sys/fs/cgroup/x 2>/dev/null && echo cgwritable"
    )
    code, out, err, _ = await run(env, ["sh", "-c", script])
    lines = out.decode().split()
    assert "writable" not in lines
    assert lines[0] == "0", err  # /dev/null over /proc/timer_list
    assert "cgwritable" not in lines
    if Path("/sys/fs/cgroup/memory").is_dir():  # v1/hybrid host: one mount per hierarchy
        assert {"memory", "pids", "cpu"} <= set(lines[1:]), out


async def test_shim_survives_and_reconnect(env: Env) -> None:
    cid, bundle, shim = await env.create(["sh", "-c", "read line; echo got $line"], stdin="open")
    await shim.start()
    pid = shim.pid
    await shim.close()  # the daemon "dies": every Python connection is dropped
    await asyncio.sleep(0.2)
    shim_pid = int((env.runtime.state_dir(cid) / "shim.pid").read_text())
    os.kill(shim_pid, 0)  # still alive

    again = await env.runtime.reattach(cid)
    assert again is not None and again.pid == pid
    r, w = await again.attach(stdin=True, stdout=True, stderr=True)
    w.write(b"it\n")
    await w.drain()
    frames = await asyncio.wait_for(read_frames(r), 10)
    assert frames[1] == b"got it\n"
    status = await asyncio.wait_for(again.wait(), 10)
    assert status.exit_code == 0
    # wait after the exit still answers, and the record stays readable once the shim is gone
    assert (await again.wait()).exit_code == 0
    w.close()
    await again.close()
    for _ in range(50):
        if await env.runtime.reattach(cid) is None:
            break
        await asyncio.sleep(0.1)
    assert await env.runtime.reattach(cid) is None
    st = env.runtime.read_exit(cid, exit_path=bundle / "exit.json")
    assert st is not None and st.exit_code == 0 and not st.oom_killed


async def test_oom_kill(env: Env) -> None:
    code_out = await run(
        env, ["sh", "-c", 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'], memory=8 * 1024 * 1024
    )
    assert code_out[0] == 137
    cid, cgpath = env.created[-1]
    assert env.runtime.read_exit(cid, exit_path=code_out[3] / "exit.json").oom_killed


async def test_no_mount_left_on_host(env: Env) -> None:
    before = Path("/proc/mounts").read_text()
    _, _, _, bundle = await run(env, ["true"])
    after = Path("/proc/mounts").read_text()
    assert str(bundle) not in after
    assert len(after.splitlines()) == len(before.splitlines())


async def test_many_attach_clients_get_everything(env: Env) -> None:
    _, _, shim = await env.create(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo err >&2"])
    conns = [await shim.attach(stdin=False, stdout=True, stderr=i == 0) for i in range(3)]
    await shim.start()
    results = await asyncio.wait_for(asyncio.gather(*(read_frames(r) for r, _ in conns)), 30)
    for i, frames in enumerate(results):
        assert frames[1] == b"x" * 3000000 + b"\n"
        assert frames[2] == (b"err\n" if i == 0 else b"")
    assert (await shim.wait()).exit_code == 0
    for _, w in conns:
        w.close()
    await shim.close()


DAEMON_SCRIPT = r"""
import asyncio, json, sys, time
from pathlib import Path
sys.path.insert(0, {helpers!r})
from tests.kernel.runtime_helpers import make_cgroups
from servin.runtime import Runtime

async def main():
    rt = Runtime(exec_root=Path({exec_root!r}), cgroups=make_cgroups())
    b = Path({bundle!r})
    shim = await rt.spawn({cid!r}, bundle=b, log_path=b / "json.log", exit_path=b / "exit.json")
    await shim.start()
    print("started", shim.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_shim_survives_daemon_sigkill(env: Env) -> None:
    import sys

    cid = uuid.uuid4().hex
    bundle = env.tmp / "bundles" / cid
    bundle.mkdir(parents=True)
    cgpath = f"{env.parent}/{cid[:12]}"
    config = oci_config(["sh", "-c", "read x; echo bye $x"], lowerdir=env.lowerdir, work=bundle,
                        cgroups_path=cgpath, stdin="open")  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(config))
    env.created.append((cid, cgpath))
    script = DAEMON_SCRIPT.format(helpers=str(Path(__file__).parent), exec_root=str(env.runtime.exec_root),
                                  bundle=str(bundle), cid=cid)  # fmt: skip
    daemon = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(daemon.stdout.readline(), 20)
        assert line.startswith(b"started "), line
        container_pid = int(line.split()[1])
    finally:
        daemon.kill()  # SIGKILL: the "daemon" dies without any cleanup
        await daemon.wait()
    await asyncio.sleep(0.2)
    os.kill(container_pid, 0)
    shim = await env.runtime.reattach(cid)
    assert shim is not None and shim.pid == container_pid
    r, w = await shim.attach(stdin=True, stdout=True, stderr=False)
    w.write(b"now\n")
    await w.drain()
    assert (await asyncio.wait_for(read_frames(r), 10))[1] == b"bye now\n"
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 0
    w.close()
    await shim.close()


async def test_slow_reader_gets_everything(env: Env) -> None:
    _, bundle, shim = await env.create(["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' y; echo"])
    r, w = await shim.attach(stdin=False, stdout=True, stderr=True)
    await shim.start()
    await asyncio.sleep(1.0)  # not reading: the shim must hold the container back, not drop output
    frames = await asyncio.wait_for(read_frames(r), 30)
    assert frames[1] == b"y" * 5000000 + b"\n"
    assert (await asyncio.wait_for(shim.wait(), 10)).exit_code == 0
    logged = sum(len(json.loads(x)["log"]) for x in (bundle / "json.log").read_text().splitlines())
    assert logged == 5000001
    w.close()
    await shim.close()


# --- the verbs by container id (runtime/api.py) ---------------------------------------------------


async def test_verbs_by_id_pause_top_stats_update_kill(env: Env) -> None:
    cid, _, _ = await env.create(["sh", "-c", "echo up; while :; do sleep 0.05; done"])
    rt = env.runtime
    stream = await rt.attach(cid, stdin=False, stdout=True, stderr=True)
    pid = await rt.start(cid)
    hdr = await asyncio.wait_for(stream.reader.readexactly(8), 10)
    assert await stream.reader.readexactly(struct.unpack(">I", hdr[4:])[0]) == b"up\n"
    assert pid in await rt.pids(cid)
    titles, rows = await rt.top(cid, "-ef")
    assert "PID" in titles and any(int(r[titles.index("PID")]) == pid for r in rows)
    stats = rt.stats(cid)
    assert stats is not None and stats.pids_current >= 1
    await rt.update(cid, {"pids": {"limit": 77}})
    assert rt.stats(cid).pids_limit == 77
    ex = await rt.exec(cid, ProcessSpec(args=["sh", "-c", "echo in; exit 4"], env=[
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]))
    frames = await asyncio.wait_for(read_frames(ex.reader), 10)
    assert frames[1] == b"in\n" and await ex.wait() == 4
    await ex.close()
    await rt.pause(cid)
    await rt.signal(cid, signal.SIGKILL)  # a frozen container is thawed to die
    status = await asyncio.wait_for(rt.wait(cid), 10)
    assert status.exit_code == 137
    stream.writer.close()
    await rt.delete(cid)
    assert not rt.state_dir(cid).exists()


async def test_verbs_after_a_restart_by_id(env: Env) -> None:
    cid, bundle, shim = await env.create(["sleep", "100"], namespaces=("mount", "uts", "ipc", "network"))
    pid = await shim.start()
    await env.runtime.release(cid)  # the daemon goes away
    rt = Runtime(exec_root=env.runtime.exec_root, cgroups=env.runtime.cgroups, cgroup_parent=env.parent)
    assert await rt.reconnect(cid)
    assert pid in await rt.pids(cid)  # its cgroup is the one create recorded, not <parent>/<id>
    await rt.signal(cid, signal.SIGTERM, thaw=True)
    assert (await asyncio.wait_for(rt.wait(cid), 10)).exit_code == 143
    st = rt.read_exit(cid)
    assert st is not None and st.exit_code == 143
    await rt.delete(cid)
    assert rt.read_exit(cid, exit_path=bundle / "exit.json").exit_code == 143
