"""Containers outlive the daemon: kill -9 it, restart it, and nothing is lost."""

from __future__ import annotations

import json
import os
import stat
import time


from tests.support.daemon import ServinDaemon, load_busybox


def test_socket_is_0660(daemon: ServinDaemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o660


def test_containers_survive_daemon_kill9(daemon: ServinDaemon) -> None:
    d = daemon
    d.docker("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
             "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done")
    d.docker("run", "-d", "--name", "quitter", "busybox", "sh", "-c", "sleep 1; echo bye; exit 7")
    d.docker("create", "--name", "idle", "busybox", "true")
    d.docker("run", "--name", "done", "busybox", "sh", "-c", "exit 3", check=False)
    pid_before = json.loads(d.docker("inspect", "ticker").stdout)[0]["State"]["Pid"]

    d.kill9()
    time.sleep(2)  # the ticker keeps printing and the quitter exits while no daemon runs
    os.kill(pid_before, 0)  # still alive
    d.start()

    state = json.loads(d.docker("inspect", "ticker").stdout)[0]["State"]
    assert state["Running"] and state["Pid"] == pid_before
    logs = d.docker("logs", "ticker").stdout.decode().split()
    assert len(logs) >= 15 and logs == [f"tick{i}" for i in range(len(logs))]  # nothing lost
    quitter = json.loads(d.docker("inspect", "quitter").stdout)[0]["State"]
    assert quitter["Status"] == "exited" and quitter["ExitCode"] == 7
    assert d.docker("logs", "quitter").stdout == b"bye\n"
    assert json.loads(d.docker("inspect", "idle").stdout)[0]["State"]["Status"] == "created"
    assert json.loads(d.docker("inspect", "done").stdout)[0]["State"]["ExitCode"] == 3

    # the re-attached container obeys stop, kill and wait
    d.docker("kill", "-s", "TERM", "ticker")  # ignored by pid 1
    time.sleep(0.2)
    assert json.loads(d.docker("inspect", "ticker").stdout)[0]["State"]["Running"]
    d.docker("stop", "-t", "1", "ticker")
    assert d.docker("wait", "ticker").stdout.strip() == b"137"
    d.docker("start", "idle")
    assert d.docker("wait", "idle").stdout.strip() == b"0"


def test_rm_container_that_exited_while_daemon_was_down(daemon: ServinDaemon) -> None:
    d = daemon
    d.docker("run", "-d", "--rm", "--name", "ephemeral", "busybox", "sh", "-c", "sleep 0.5")
    d.kill9()
    time.sleep(1.5)
    d.start()
    res = d.docker("inspect", "ephemeral", check=False)
    assert res.returncode != 0  # --rm is honoured at restore
    assert d.docker("ps", "-aq").stdout == b""


def test_graceful_stop_keeps_containers_running(daemon: ServinDaemon) -> None:
    d = daemon
    d.docker("run", "-d", "--name", "keeper", "busybox", "sleep", "60")
    pid = json.loads(d.docker("inspect", "keeper").stdout)[0]["State"]["Pid"]
    d.stop()
    assert not d.socket.exists() and not d.pidfile.exists()
    os.kill(pid, 0)
    d.start()
    assert json.loads(d.docker("inspect", "keeper").stdout)[0]["State"]["Pid"] == pid
    d.docker("rm", "-f", "keeper")


def test_two_daemons_side_by_side(daemon: ServinDaemon) -> None:
    other = ServinDaemon()
    try:
        other.start()
        load_busybox(other)
        daemon.docker("run", "-d", "--name", "mine", "busybox", "sleep", "30")
        assert other.docker("ps", "-aq").stdout == b""  # separate state
        other.docker("run", "-d", "--name", "mine", "busybox", "sleep", "30")  # no name clash
        assert other.docker("run", "--rm", "busybox", "echo", "two").stdout == b"two\n"
        daemon.docker("rm", "-f", "mine")
        assert other.docker("ps", "-q").stdout.strip() != b""
    finally:
        other.cleanup()


def test_daemon_json_is_read_and_conflicts_are_refused(daemon: ServinDaemon) -> None:
    import subprocess
    import sys

    cfg = daemon.root / "conflict.json"
    cfg.write_text(json.dumps({"data-root": str(daemon.root / "elsewhere")}))
    res = subprocess.run([sys.executable, "-m", "servin.cli.main", "daemon", "--config-file", str(cfg),
                          "--data-root", str(daemon.root / "x")], capture_output=True, timeout=30)
    assert res.returncode != 0
    assert b"specified both as a flag and in the configuration file: data-root" in res.stderr
    cfg.write_text(json.dumps({"no-such-key": 1}))
    res = subprocess.run([sys.executable, "-m", "servin.cli.main", "daemon", "--config-file", str(cfg)],
                         capture_output=True, timeout=30)
    assert res.returncode != 0 and b"no-such-key" in res.stderr


def test_restart_policies_at_daemon_start(daemon: ServinDaemon) -> None:
    d = daemon
    d.docker("run", "-d", "--name", "always1", "--restart", "always", "busybox", "sleep", "60")
    d.docker("run", "-d", "--name", "unless1", "--restart", "unless-stopped", "busybox", "sleep", "60")
    d.docker("run", "-d", "--name", "plain1", "busybox", "sleep", "60")
    d.docker("stop", "-t", "0", "always1", "unless1", "plain1")
    d.stop()
    d.start()
    status = {n: json.loads(d.docker("inspect", n).stdout)[0]["State"]["Status"]
              for n in ("always1", "unless1", "plain1")}
    assert status == {"always1": "running", "unless1": "exited", "plain1": "exited"}


def test_daemon_default_log_options(daemon: ServinDaemon) -> None:
    d = daemon
    d.stop()
    d.config_file.write_text(json.dumps({"log-opts": {"max-size": "10k", "max-file": "2"}}))
    d.start()
    cid = d.docker("run", "-d", "busybox", "sh", "-c", "seq 3000").stdout.decode().strip()
    d.docker("wait", cid)
    hc = json.loads(d.docker("inspect", cid).stdout)[0]["HostConfig"]
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10k", "max-file": "2"}}
    lines = d.docker("logs", cid).stdout.split()
    assert lines[-1] == b"3000" and len(lines) < 3000
