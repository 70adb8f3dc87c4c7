"""pause/unpause, rename, update, top, stats, prune and restart policies through the docker CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker

from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


def state(d: ServinDaemon, name: str) -> dict:
    return json.loads(out(d, "inspect", name))[0]


def test_pause_unpause_freezes_the_processes(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "counter", "busybox", "sh", "-c",
             "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done")
    try:
        d.docker("pause", "counter")
        assert state(d, "counter")["State"]["Status"] == "paused"
        assert "(Paused)" in out(d, "ps", "--filter", "name=counter", "--format", "{{.Status}}")
        res = d.docker("pause", "counter", check=False)
        assert b"is already paused" in res.stderr
        d.docker("unpause", "counter")
        assert state(d, "counter")["State"]["Status"] == "running"
        res = d.docker("unpause", "counter", check=False)
        assert b"is not paused" in res.stderr
        d.docker("pause", "counter")
        started = time.monotonic()
        d.docker("stop", "-t", "1", "counter")  # a paused container stops too
        assert time.monotonic() - started < 5
        assert state(d, "counter")["State"]["ExitCode"] == 137
    finally:
        d.docker("rm", "-f", "counter", check=False)


def test_rename(servin: ServinDaemon) -> None:
    d = servin
    d.docker("create", "--name", "before", "busybox", "true")
    try:
        d.docker("rename", "before", "after")
        assert state(d, "after")["Name"] == "/after"
        assert d.docker("inspect", "before", check=False).returncode != 0
        d.docker("create", "--name", "taken", "busybox", "true")
        res = d.docker("rename", "after", "taken", check=False)
        assert b'The container name "/taken" is already in use' in res.stderr
    finally:
        d.docker("rm", "-f", "after", "taken", check=False)


def test_update_changes_live_limits(servin: ServinDaemon) -> None:
    d = servin
    cid = out(d, "run", "-d", "--memory", "64m", "busybox", "sleep", "30").strip()
    try:
        d.docker("update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "0.5",
                 "--restart", "on-failure:2", cid)
        hc = state(d, cid)["HostConfig"]
        assert hc["Memory"] == 128 << 20 and hc["NanoCpus"] == 500_000_000
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        mem = Path("/sys/fs/cgroup/memory") / d.cgroup_parent / cid / "memory.limit_in_bytes"
        if mem.exists():
            assert mem.read_text().strip() == str(128 << 20)
    finally:
        d.docker("rm", "-f", cid)


def test_top_lists_the_container_processes(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "topper", "busybox", "sh", "-c", "sleep 31 & sleep 32")
    try:
        time.sleep(0.3)
        text = out(d, "top", "topper")
        assert "sleep 31" in text and "sleep 32" in text and "PID" in text.splitlines()[0]
        custom = out(d, "top", "topper", "-o", "pid,comm")
        assert custom.splitlines()[0].split() == ["PID", "COMMAND"]
    finally:
        d.docker("rm", "-f", "topper")
    res = d.docker("top", "busybox-none", check=False)
    assert b"No such container" in res.stderr


def test_top_with_ps_options_keeps_the_container_rows(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "topo", "busybox", "sh", "-c", "sleep 33 & sleep 34")  # sh execs the last
    try:
        time.sleep(0.3)
        rows = [line.split() for line in out(d, "top", "topo", "-o", "pid,comm").splitlines()]
        assert rows[0] == ["PID", "COMMAND"] and sorted(r[1] for r in rows[1:]) == ["sleep", "sleep"]
        rows = [line.split() for line in out(d, "top", "topo", "-o", "pid,user,args").splitlines()]
        assert sorted(" ".join(r[2:]) for r in rows[1:]) == ["sleep 33", "sleep 34"]
        assert len(out(d, "top", "topo", "x").splitlines()) == 3  # BSD options, which refuse -q: a retry
        res = d.docker("top", "topo", "-o", "comm", check=False)
        assert res.stderr.decode().strip() == "Error response from daemon: Couldn't find PID field in ps output"
        res = d.docker("top", "topo", "-o", "bogus", check=False)
        assert res.stderr.decode().strip() == ('Error response from daemon: ps: error: unknown user-defined format '
                                               'specifier "bogus"')
    finally:
        d.docker("rm", "-f", "topo")


def test_stats_report_cpu_and_memory(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "busy", "--memory", "64m", "busybox", "sh", "-c", "while true; do :; done")
    try:
        time.sleep(1)
        line = out(d, "stats", "--no-stream", "--format", "{{json .}}", "busy")
        row = json.loads(line)
        cpu = float(row["CPUPerc"].rstrip("%"))
        assert 30 < cpu < 210  # one busy loop on a 2-CPU host: about 100%
        assert row["MemUsage"].endswith("/ 64MiB")
        assert row["PIDs"] == "1"
        client = docker.DockerClient(base_url=d.host, version="auto")
        raw = client.containers.get("busy").stats(stream=False)
        assert raw["cpu_stats"]["cpu_usage"]["total_usage"] > raw["precpu_stats"]["cpu_usage"]["total_usage"]
        assert raw["cpu_stats"]["online_cpus"] >= 1 and raw["memory_stats"]["limit"] == 64 << 20
        client.close()
    finally:
        d.docker("rm", "-f", "busy")


def test_container_prune_removes_only_stopped(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "--name", "gone1", "--label", "prune=yes", "busybox", "true")
    d.docker("run", "--name", "kept1", "busybox", "true")
    d.docker("run", "-d", "--name", "alive1", "--label", "prune=yes", "busybox", "sleep", "30")
    try:
        res = out(d, "container", "prune", "-f", "--filter", "label=prune=yes")
        assert state(d, "kept1")  # no label: kept
        assert d.docker("inspect", "gone1", check=False).returncode != 0
        assert state(d, "alive1")["State"]["Running"]
        assert "Deleted Containers" in res
    finally:
        d.docker("rm", "-f", "kept1", "alive1", check=False)


def test_restart_policies(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1")
    d.docker("run", "-d", "--name", "forever", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and state(d, "flaky")["RestartCount"] < 2:
            time.sleep(0.2)
        time.sleep(1)
        flaky = state(d, "flaky")
        assert flaky["RestartCount"] == 2 and flaky["State"]["Status"] == "exited"
        assert out(d, "logs", "flaky") == "run\n" * 3
        assert state(d, "forever")["RestartCount"] >= 1
        d.docker("stop", "forever")
        time.sleep(1)
        assert state(d, "forever")["State"]["Status"] == "exited"  # a manual stop holds
    finally:
        d.docker("rm", "-f", "flaky", "forever", check=False)


def test_oom_kill_disable(servin: ServinDaemon) -> None:
    d = servin
    res = d.docker("run", "-d", "--oom-kill-disable", "--memory", "32m", "busybox", "sleep", "30")
    cid = res.stdout.decode().strip()
    try:
        assert state(d, cid)["HostConfig"]["OomKillDisable"] is True
        oom = Path("/sys/fs/cgroup/memory") / d.cgroup_parent / cid / "memory.oom_control"
        if oom.exists():
            assert "oom_kill_disable 1" in oom.read_text()
    finally:
        d.docker("rm", "-f", cid)
    res = d.docker("run", "--rm", "--oom-kill-disable", "busybox", "true")
    assert b"OOM killer is disabled for the container, but no memory limit is set" in res.stderr


def test_stop_signal_stop_timeout_shm_size_group_add(servin: ServinDaemon) -> None:
    d = servin
    cid = d.docker("run", "-d", "--stop-signal", "USR1", "--stop-timeout", "2", "busybox", "sh", "-c",
                   "trap 'exit 10' USR1; while true; do sleep 0.1; done").stdout.decode().strip()
    try:
        time.sleep(0.3)
        d.docker("stop", cid)  # USR1 from --stop-signal, answered by the trap
        assert state(d, cid)["State"]["ExitCode"] == 10
    finally:
        d.docker("rm", "-f", cid)
    cid = d.docker("run", "-d", "--stop-timeout", "1", "busybox", "sleep", "60").stdout.decode().strip()
    try:
        started = time.monotonic()
        d.docker("stop", cid)  # pid 1 ignores SIGTERM: SIGKILL after the container's own timeout
        assert 0.8 < time.monotonic() - started < 5
    finally:
        d.docker("rm", "-f", cid)
    text = out(d, "run", "--rm", "--shm-size", "8m", "--group-add", "users", "--group-add", "4242",
               "busybox", "sh", "-c", "df -k /dev/shm | tail -1; id -G")
    shm_line, groups = text.splitlines()
    assert shm_line.split()[1] == "8192"
    assert {"100", "4242"} <= set(groups.split())


def test_websocket_attach(servin: ServinDaemon) -> None:
    """GET /containers/{id}/attach/ws: raw output as binary messages, messages in as stdin."""
    import asyncio

    import aiohttp

    async def session(path: str, send: bytes | None, want: bytes) -> bytes:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(servin.socket))) as http:
            async with http.ws_connect(f"http://localhost/v1.41{path}") as ws:
                if send is not None:
                    await ws.send_bytes(send)
                got = b""
                while not got.endswith(want):
                    msg = await asyncio.wait_for(ws.receive(), 10)
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                    got += msg.data
                return got

    cat = servin.docker("run", "-d", "-i", "busybox", "cat").stdout.decode().strip()
    printer = servin.docker("run", "-d", "busybox", "printf", "hi there").stdout.decode().strip()
    try:
        got = asyncio.run(session(f"/containers/{cat}/attach/ws?stream=1&stdin=1&stdout=1", b"hello ws\n",
                                  b"hello ws\n"))
        assert got == b"hello ws\n"  # echoed through cat, not multiplexed
        servin.docker("wait", printer)
        got = asyncio.run(session(f"/containers/{printer}/attach/ws?logs=1&stdout=1", None, b"hi there"))
        assert got == b"hi there"
    finally:
        servin.docker("rm", "-f", cat, printer)


def test_system_prune(servin: ServinDaemon) -> None:
    """docker system prune: stopped containers, unused networks, dangling images and the (empty) build cache."""
    dead = servin.docker("run", "-d", "busybox", "true").stdout.decode().strip()
    servin.docker("wait", dead)
    servin.docker("network", "create", "--subnet", "10.219.77.0/24", "prunable-net")
    res = servin.docker("system", "prune", "-f", check=False)
    assert res.returncode == 0, res.stderr
    text = res.stdout.decode()
    assert dead in text and "prunable-net" in text and "Total reclaimed space" in text
    assert servin.docker("inspect", dead, check=False).returncode != 0


def test_a_tiny_cpu_limit_is_created_and_the_kernel_refuses_it_at_start(servin: ServinDaemon) -> None:
    d = servin
    cid = out(d, "create", "--cpus", "0.0005", "busybox", "true").strip()  # no lower bound but zero, as dockerd
    try:
        assert out(d, "inspect", "-f", "{{.HostConfig.NanoCpus}}", cid).strip() == "500000"
        res = d.docker("start", cid, check=False)
        assert res.returncode == 1 and "cpu.cfs_quota_us='50': Invalid argument" in res.stderr.decode()
    finally:
        d.docker("rm", "-f", cid)
    assert d.docker("run", "--rm", "--cpus", "0.01", "busybox", "true").returncode == 0
    res = d.docker("create", "--cpus", "99", "busybox", check=False)
    assert "Range of CPUs is from 0.01 to" in res.stderr.decode()


def test_commit_message_author_and_changes_then_run_publishes_what_the_image_exposes(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "--name", "committed", "busybox", "sh", "-c", "echo hi > /made")
    try:
        # several instructions in one --change, as the API receives `-c 'CMD ...' -c 'EXPOSE ...'` joined
        d.docker("commit", "-m", "my msg", "-a", "Me <me@x>", "-c", 'CMD ["sh"]\nEXPOSE 8080', "committed", "cmimg")
        shown = out(d, "image", "inspect", "-f",
                    "{{json .Comment}} {{json .Author}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}}", "cmimg")
        assert shown.strip() == '"my msg" "Me <me@x>" ["sh"] {"8080/tcp":{}}'
        d.docker("run", "-d", "--name", "published", "-P", "cmimg", "sleep", "30")
        ports = json.loads(out(d, "inspect", "-f", "{{json .NetworkSettings.Ports}}", "published"))
        assert list(ports) == ["8080/tcp"] and int(ports["8080/tcp"][0]["HostPort"]) > 0
        assert out(d, "inspect", "-f", "{{json .Config.ExposedPorts}}", "published").strip() == '{"8080/tcp":{}}'
        # --size: the writable layer and the whole root file system, as dockerd counts them
        image_size = int(out(d, "image", "inspect", "-f", "{{.Size}}", "cmimg"))
        d.docker("exec", "published", "sh", "-c", "head -c 100000 /dev/zero > /big")
        size_rw, size_root = map(int, out(d, "inspect", "--size", "-f", "{{.SizeRw}} {{.SizeRootFs}}",
                                              "published").split())
        assert 100000 <= size_rw < 110000 and size_root == image_size + size_rw
        assert "SizeRw" not in out(d, "inspect", "published")
        row = out(d, "ps", "--size", "--filter", "name=published", "--format", "{{.Size}}").strip()
        assert row.endswith("(virtual " + row.split("(virtual ")[1]) and row.startswith("100kB")
    finally:
        d.docker("rm", "-f", "committed", "published", check=False)
        d.docker("rmi", "cmimg", check=False)
