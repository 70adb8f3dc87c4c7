"""`docker run` and friends through the real docker CLI against a real Servin daemon."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


def test_run_prints_hello(servin: ServinDaemon) -> None:
    assert out(servin, "run", "--rm", "busybox", "echo", "hello") == "hello\n"


def test_exit_codes_match_docker(servin: ServinDaemon) -> None:
    assert servin.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    missing = servin.docker("run", "--rm", "busybox", "nonexistent-cmd", check=False)
    assert missing.returncode == 127
    assert b'exec: "nonexistent-cmd": executable file not found in $PATH' in missing.stderr
    denied = servin.docker("run", "--rm", "busybox", "/etc", check=False)
    assert denied.returncode == 126
    assert b"permission denied" in denied.stderr
    # pid 1 of a pid namespace ignores signals it has no handler for, even SIGKILL from inside
    assert servin.docker("run", "--rm", "busybox", "sh", "-c", "kill -9 $$; exit 5", check=False).returncode == 5


def test_stdin_is_piped_and_half_close_ends_it(servin: ServinDaemon) -> None:
    res = servin.docker("run", "-i", "--rm", "busybox", "cat", input=b"x\nsecond line\n", timeout=20)
    assert res.stdout == b"x\nsecond line\n"
    res = servin.docker("run", "-i", "--rm", "busybox", "wc", "-c", input=b"12345", timeout=20)
    assert res.stdout.strip() == b"5"


def test_stdout_and_stderr_are_separate(servin: ServinDaemon) -> None:
    res = servin.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert res.stdout == b"out\n"
    assert res.stderr == b"err\n"


def test_container_environment(servin: ServinDaemon) -> None:
    script = "hostname; id; pwd; echo $FOO; echo $HOME; cat /proc/1/cmdline | tr '\\0' ' '; echo; " \
             "grep CapEff /proc/self/status; ls /dev"
    res = out(servin, "run", "--rm", "--hostname", "box1", "-e", "FOO=bar", "-w", "/work/dir",
              "busybox", "sh", "-c", script)
    lines = res.splitlines()
    assert lines[0] == "box1"
    assert lines[1].startswith("uid=0(root) gid=0(root)")
    assert lines[2] == "/work/dir"  # created when missing, as Docker does
    assert lines[3] == "bar"
    assert lines[4] == "/root"
    assert lines[5].startswith("sh -c")  # the command is pid 1
    assert lines[6].split()[1] == "00000000a80425fb"  # Docker's default capability set
    for node in ("null", "zero", "random", "urandom", "tty", "pts", "shm", "mqueue", "fd"):
        assert node in lines[7:]


def test_user_by_name_from_image_passwd(servin: ServinDaemon) -> None:
    assert out(servin, "run", "--rm", "-u", "nobody", "busybox", "id", "-u").strip() == "65534"
    res = servin.docker("run", "--rm", "-u", "nosuchuser", "busybox", "true", check=False)
    assert res.returncode != 0
    assert b"unable to find user nosuchuser" in res.stderr


def test_masked_and_readonly_paths(servin: ServinDaemon) -> None:
    res = servin.docker("run", "--rm", "busybox", "sh", "-c",
                        "cat /proc/kcore | wc -c; touch /proc/sys/x 2>&1; touch /sys/x 2>&1; true")
    text = res.stdout.decode()
    assert text.splitlines()[0].strip() == "0"
    assert "Read-only file system" in text


def test_name_conflict_and_invalid_name(servin: ServinDaemon) -> None:
    servin.docker("create", "--name", "dupe", "busybox", "true")
    try:
        res = servin.docker("create", "--name", "dupe", "busybox", "true", check=False)
        assert res.returncode != 0
        assert b'The container name "/dupe" is already in use by container' in res.stderr
    finally:
        servin.docker("rm", "dupe")
    res = servin.docker("create", "--name", "bad name!", "busybox", check=False)
    assert b"Invalid container name (bad name!)" in res.stderr


def test_unknown_image_is_docker_404(servin: ServinDaemon) -> None:
    res = servin.docker("create", "--pull", "never", "nosuchimage", check=False)
    assert res.returncode != 0
    assert b"No such image: nosuchimage:latest" in res.stderr


def test_detached_lifecycle_ps_logs_stop_rm(servin: ServinDaemon) -> None:
    cid = out(servin, "run", "-d", "--name", "ticker", "--label", "role=tick", "busybox", "sh", "-c",
              "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done").strip()
    try:
        assert len(cid) == 64
        ps = out(servin, "ps", "--filter", "label=role=tick", "--format", "{{.Names}} {{.Status}}")
        assert ps.startswith("ticker Up")
        assert out(servin, "ps", "-q", "--filter", "status=exited", "--filter", "name=ticker") == ""
        time.sleep(0.5)
        logs = out(servin, "logs", "--tail", "2", "ticker").splitlines()
        assert len(logs) == 2 and all(line.startswith("tick") for line in logs)
        stamped = out(servin, "logs", "-t", "--tail", "1", "ticker")
        assert stamped[:4].isdigit() and "Z tick" in stamped
        state = json.loads(out(servin, "inspect", "ticker"))[0]["State"]
        assert state["Running"] and state["Pid"] > 0 and state["Status"] == "running"
        res = servin.docker("rm", "ticker", check=False)
        assert res.returncode != 0 and b"You cannot remove a running container" in res.stderr
        started = time.monotonic()
        servin.docker("stop", "-t", "1", "ticker")  # pid 1 ignores SIGTERM: SIGKILL after 1s
        assert time.monotonic() - started < 5
        state = json.loads(out(servin, "inspect", "ticker"))[0]["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 137
        assert out(servin, "ps", "-aq", "--filter", "exited=137", "--filter", "name=ticker").strip() == cid[:12]
    finally:
        servin.docker("rm", "-f", "ticker", check=False)


def test_logs_follow_streams_until_exit(servin: ServinDaemon) -> None:
    cid = out(servin, "run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.3; done").strip()
    try:
        res = servin.docker("logs", "-f", cid, timeout=20)
        assert res.stdout == b"n1\nn2\nn3\n"
    finally:
        servin.docker("rm", "-f", cid, check=False)


def test_kill_with_signal_and_wait(servin: ServinDaemon) -> None:
    cid = out(servin, "run", "-d", "busybox", "sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done")
    cid = cid.strip()
    try:
        time.sleep(0.3)
        servin.docker("kill", "-s", "USR1", cid)
        assert out(servin, "wait", cid).strip() == "42"
        res = servin.docker("kill", cid, check=False)
        assert b"is not running" in res.stderr
    finally:
        servin.docker("rm", "-f", cid, check=False)


def test_resource_limits_reach_the_cgroup(servin: ServinDaemon) -> None:
    cid = out(servin, "run", "-d", "--memory", "64m", "--cpus", "1.5", "--cpu-shares", "512",
              "--cpuset-cpus", "0", "--pids-limit", "50", "busybox", "sleep", "30").strip()
    try:
        v1 = Path("/sys/fs/cgroup/memory").is_dir()
        base = Path("/sys/fs/cgroup")
        if v1:
            def read(ctrl: str, f: str) -> str:
                return (base / ctrl / servin.cgroup_parent / cid / f).read_text().strip()
            assert read("memory", "memory.limit_in_bytes") == str(64 << 20)
            assert read("cpu", "cpu.cfs_quota_us") == "150000"
            assert read("cpu", "cpu.cfs_period_us") == "100000"
            assert read("cpu", "cpu.shares") == "512"
            assert read("cpuset", "cpuset.cpus") == "0"
            assert read("pids", "pids.max") == "50"
        hc = json.loads(out(servin, "inspect", cid))[0]["HostConfig"]
        assert hc["Memory"] == 64 << 20 and hc["NanoCpus"] == 1_500_000_000 and hc["PidsLimit"] == 50
    finally:
        servin.docker("rm", "-f", cid, check=False)
    if v1:
        assert not (base / "memory" / servin.cgroup_parent / cid).exists()


def test_out_of_memory_shows_oomkilled(servin: ServinDaemon) -> None:
    res = servin.docker("run", "--name", "oomer", "--memory", "16m", "--memory-swap", "16m", "busybox",
                        "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)", check=False, timeout=60)
    try:
        assert res.returncode == 137
        state = json.loads(out(servin, "inspect", "oomer"))[0]["State"]
        assert state["OOMKilled"] is True and state["ExitCode"] == 137
    finally:
        servin.docker("rm", "-f", "oomer", check=False)


def test_pids_limit_is_enforced(servin: ServinDaemon) -> None:
    res = servin.docker("run", "--rm", "--pids-limit", "10", "busybox", "sh", "-c",
                        "for i in $(seq 30); do sleep 5 & done; echo all-started", check=False, timeout=30)
    assert b"can't fork" in res.stderr
    assert b"all-started" not in res.stdout
    res = servin.docker("run", "--rm", "--pids-limit", "40", "busybox", "sh", "-c",
                        "for i in $(seq 30); do sleep 1 & done; echo all-started", timeout=30)
    assert res.stdout == b"all-started\n"


def test_version_and_info(servin: ServinDaemon) -> None:
    v = json.loads(out(servin, "version", "--format", "{{json .Server}}"))
    assert v["ApiVersion"] == "1.55"
    assert any(c["Name"] == "Engine" for c in v["Components"])
    servin.docker("run", "-d", "--name", "inforunner", "busybox", "sleep", "30")
    try:
        info = json.loads(out(servin, "info", "--format", "{{json .}}"))
        assert info["ContainersRunning"] >= 1
        assert info["Images"] >= 1
        assert info["NCPU"] >= 1 and info["MemTotal"] > 0
        assert info["CgroupVersion"] in ("1", "2") and info["Driver"] == "overlay2"
    finally:
        servin.docker("rm", "-f", "inforunner")


def test_api_version_bounds(servin: ServinDaemon) -> None:
    def get(path: str) -> tuple[int, bytes]:
        res = subprocess.run(["curl", "-s", "-o", "-", "-w", "%{http_code}", "--unix-socket", str(servin.socket),
                              f"http://x{path}"], capture_output=True, timeout=10)
        return int(res.stdout[-3:]), res.stdout[:-3]

    code, body = get("/v1.99/version")
    assert code == 400
    assert json.loads(body) == {"message": "client version 1.99 is too new. Maximum supported API version is 1.55",
                                "code": "VALIDATION_ERROR"}
    code, body = get("/v1.12/version")
    assert code == 400 and b"is too old. Minimum supported API version is 1.24" in body
    assert get("/v1.24/version")[0] == 200
    assert get("/v1.41/_ping") == (200, b"OK")


def test_images_load_tag_rmi(servin: ServinDaemon) -> None:
    servin.docker("tag", "busybox", "mybox:v1")
    listing = out(servin, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert "mybox:v1" in listing.split() and "busybox:latest" in listing.split()
    cid = out(servin, "create", "mybox:v1", "true").strip()
    try:
        res = servin.docker("rmi", "mybox:v1", check=False)
        assert res.returncode == 0 and b"Untagged: mybox:v1" in res.stdout  # other tags remain
        image_id = json.loads(out(servin, "image", "inspect", "busybox"))[0]["Id"]
        res = servin.docker("rmi", image_id, check=False)
        assert res.returncode != 0 and b"image is being used by stopped container" in res.stderr
    finally:
        servin.docker("rm", cid)


def test_import_a_rootfs_tarball(servin: ServinDaemon, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    import shutil

    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sh").symlink_to("busybox")
    (rootfs / "hello.txt").write_text("imported\n")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    out(servin, "import", "--change", "CMD [\"/bin/busybox\", \"cat\", \"/hello.txt\"]", str(tar), "imported:1")
    assert out(servin, "run", "--rm", "imported:1") == "imported\n"
    servin.docker("rmi", "imported:1")


def test_tty_container_output_is_a_raw_stream(servin: ServinDaemon) -> None:
    # The CLI does not demultiplex for Tty=true: no 8-byte frame headers may reach it; the
    # terminal's line discipline turns \n into \r\n, as with Docker.
    assert servin.docker("run", "--rm", "-t", "busybox", "echo", "tty-ok").stdout == b"tty-ok\r\n"
    cid = out(servin, "run", "-d", "-t", "busybox", "echo", "logged").strip()
    try:
        servin.docker("wait", cid)
        assert servin.docker("logs", cid).stdout == b"logged\r\n"
    finally:
        servin.docker("rm", "-f", cid)


def test_device_cgroup_denies_host_disks(servin: ServinDaemon) -> None:
    if not Path("/sys/fs/cgroup/devices").is_dir():
        import pytest

        pytest.skip("device rules need the v1 devices controller (v2 needs eBPF, not built yet)")
    res = servin.docker("run", "--rm", "busybox", "sh", "-c",
                        "mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk; echo rc=$?; echo ok > /dev/null && echo null-ok",
                        check=False)
    assert b"Operation not permitted" in res.stderr
    assert b"null-ok" in res.stdout


def test_log_rotation_and_driver_none(servin: ServinDaemon) -> None:
    d = servin
    cid = out(d, "run", "-d", "--log-opt", "max-size=10k", "--log-opt", "max-file=3", "busybox", "sh", "-c",
              "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done").strip()
    try:
        d.docker("wait", cid)
        log_path = Path(json.loads(out(d, "inspect", cid))[0]["LogPath"])
        files = sorted(p.name for p in log_path.parent.glob(log_path.name + "*"))
        assert len(files) == 3 and all(p.stat().st_size <= 11_000 for p in log_path.parent.glob(log_path.name + "*"))
        lines = out(d, "logs", cid).split()
        assert lines[-1] == "line-1999" and len(lines) < 2000  # the oldest were rotated away
        assert [int(x.split("-")[1]) for x in lines] == list(range(2000 - len(lines), 2000))
    finally:
        d.docker("rm", "-f", cid)
    res = d.docker("run", "--log-driver", "syslogish", "busybox", "true", check=False)
    assert b"logger: no log driver named 'syslogish' is registered" in res.stderr
    cid = out(d, "run", "-d", "--log-driver", "none", "busybox", "echo", "unlogged").strip()
    try:
        d.docker("wait", cid)
        res = d.docker("logs", cid, check=False)
        assert res.returncode != 0 and b"configured logging driver does not support reading" in res.stderr
    finally:
        d.docker("rm", "-f", cid)


def test_init_reaps_and_forwards_signals(servin: ServinDaemon) -> None:
    d = servin
    cid = out(d, "run", "-d", "--init", "busybox", "sleep", "100").strip()
    try:
        assert out(d, "exec", cid, "cat", "/proc/1/cmdline").startswith("/sbin/docker-init")
        started = time.monotonic()
        d.docker("stop", "-t", "10", cid)  # SIGTERM reaches sleep through the init
        assert time.monotonic() - started < 5
        assert json.loads(out(d, "inspect", cid))[0]["State"]["ExitCode"] == 143
    finally:
        d.docker("rm", "-f", cid)


def test_host_namespaces(servin: ServinDaemon) -> None:
    import socket

    assert out(servin, "run", "--rm", "--uts", "host", "busybox", "hostname").strip() == socket.gethostname()
    pids = out(servin, "run", "--rm", "--pid", "host", "busybox", "sh", "-c", "ls /proc | grep -c '^[0-9]'")
    assert int(pids) > 10
    links = out(servin, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net").split()
    assert links == ["lo"]
