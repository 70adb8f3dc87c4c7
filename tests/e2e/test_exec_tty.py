"""docker exec, and terminals (run -it, exec -it) driven through a real pty."""

from __future__ import annotations

import contextlib

import json
import os
import pty
import select
import subprocess
import time

import docker

from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


class Terminal:
    """A docker CLI process on a real pty: type into it and read the screen's bytes."""

    def __init__(self, d: ServinDaemon, *args: str, rows: int = 24, cols: int = 80) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(d.env)
            os.execvp("docker", ["docker", *args])
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.screen = b""

    def read_until(self, needle: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.screen and time.monotonic() < deadline:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:
                    break
        assert needle in self.screen, f"{needle!r} not on screen: {self.screen[-500:]!r}"
        return self.screen

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def wait(self, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if r:
                    self.screen += os.read(self.fd, 4096)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"docker did not exit; screen: {self.screen[-500:]!r}")


def test_exec_output_exit_codes_and_options(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "exechost", "busybox", "sleep", "600")
    try:
        assert out(d, "exec", "exechost", "echo", "hi") == "hi\n"
        assert d.docker("exec", "exechost", "sh", "-c", "exit 5", check=False).returncode == 5
        missing = d.docker("exec", "exechost", "nosuch", check=False)
        # dockerd's ContainerExecStart records 126 for any exec that cannot start (docker-py's suite checks it)
        assert missing.returncode == 126 and b'exec: "nosuch": executable file not found in $PATH' in missing.stdout
        assert d.docker("exec", "exechost", "/etc", check=False).returncode == 126
        text = out(d, "exec", "-u", "nobody", "-w", "/tmp", "-e", "A=b", "exechost", "sh", "-c", "id -u; pwd; echo $A")
        assert text.split() == ["65534", "/tmp", "b"]
        assert d.docker("exec", "-i", "exechost", "cat", input=b"piped\n").stdout == b"piped\n"
        res = d.docker("exec", "exechost", "sh", "-c", "echo o; echo e >&2")
        assert res.stdout == b"o\n" and res.stderr == b"e\n"
        # the exec shares the container's namespaces: it sees the container's pid 1
        assert out(d, "exec", "exechost", "cat", "/proc/1/cmdline").startswith("sleep")
        d.docker("exec", "-d", "exechost", "sh", "-c", "sleep 0.2; touch /tmp/detached")
        time.sleep(0.8)
        assert d.docker("exec", "exechost", "test", "-f", "/tmp/detached", check=False).returncode == 0
        d.docker("pause", "exechost")
        res = d.docker("exec", "exechost", "true", check=False)
        assert b"is paused, unpause the container before exec" in res.stderr
        d.docker("unpause", "exechost")
        client = docker.DockerClient(base_url=d.host, version="auto")
        result = client.containers.get("exechost").exec_run(["sh", "-c", "echo via-py; exit 3"])
        assert result.exit_code == 3 and result.output == b"via-py\n"
        client.close()
    finally:
        d.docker("rm", "-f", "exechost")
    res = d.docker("exec", "exechost", "true", check=False)
    assert b"No such container" in res.stderr


def test_exec_in_stopped_container_is_409(servin: ServinDaemon) -> None:
    d = servin
    d.docker("create", "--name", "stoppedexec", "busybox", "true")
    try:
        res = d.docker("exec", "stoppedexec", "true", check=False)
        assert res.returncode != 0 and b"is not running" in res.stderr
    finally:
        d.docker("rm", "stoppedexec")


def test_run_it_gives_a_real_terminal(servin: ServinDaemon) -> None:
    term = Terminal(servin, "run", "-it", "--rm", "--name", "ttyrun", "busybox", "sh", rows=33, cols=101)
    term.read_until(b"# ")
    term.type(b"tty; stty size; echo $TERM\r")
    screen = term.read_until(b"xterm")
    assert b"/dev/pts/0" in screen and b"33 101" in screen
    term.type(b"exit 4\r")
    assert term.wait() == 4


def test_exec_it_and_resize(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "ttyexec", "busybox", "sleep", "600")
    try:
        term = Terminal(d, "exec", "-it", "ttyexec", "sh", rows=20, cols=70)
        term.read_until(b"# ")
        # At API 1.41 the CLI sets the size by a resize after the start (as with dockerd), so on a
        # loaded machine the shell can ask before it lands (0 0: stty fails): ask until it has.
        for _ in range(20):
            term.type(b"stty size\r")
            with contextlib.suppress(AssertionError):
                term.read_until(b"20 70", timeout=0.5)
                break
        term.read_until(b"20 70")
        term.type(b"exit\r")
        assert term.wait() == 0
    finally:
        d.docker("rm", "-f", "ttyexec")


def test_detach_keys_leave_the_container_running(servin: ServinDaemon) -> None:
    d = servin
    term = Terminal(d, "run", "-it", "--name", "detachme", "busybox", "sh")
    try:
        term.read_until(b"# ")
        term.type(b"\x10\x11")  # ctrl-p ctrl-q
        assert term.wait() == 0
        assert json.loads(out(d, "inspect", "detachme"))[0]["State"]["Running"] is True
        # and attach brings the terminal back
        again = Terminal(d, "attach", "detachme")
        again.type(b"echo back-again\r")
        again.read_until(b"back-again")
        again.type(b"exit\r")
        again.wait()
    finally:
        d.docker("rm", "-f", "detachme")
        subprocess.run(["true"])


def test_exec_pty_comes_from_create_and_detach_keys_leave_it_running(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "execpty", "busybox", "sleep", "600")
    client = docker.DockerClient(base_url=d.host, version="auto")
    try:
        api = client.api
        exec_id = api.exec_create("execpty", ["sh", "-c", "echo out; echo err >&2"], tty=True)["Id"]
        # start's Tty=false only asks for multiplexed framing: the pty is still there
        output = api.exec_start(exec_id, tty=False, demux=True)
        assert output == (b"out\r\nerr\r\n", None)
        exec_id = api.exec_create("execpty", "cat", stdin=True, tty=True)["Id"]
        sock = api.exec_start(exec_id, socket=True, tty=True)
        raw = sock._sock
        raw.sendall(b"\x10\x11")  # ctrl-p ctrl-q
        raw.settimeout(10)
        while raw.recv(4096):
            pass  # the server ends the stream on the detach keys
        sock.close()
        assert api.exec_inspect(exec_id)["Running"] is True  # cat runs on
    finally:
        client.close()
        d.docker("rm", "-f", "execpty")


def test_container_prune_reports_reclaimed_space(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "--name", "writer", "--label", "reclaim=1", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /f")
    client = docker.DockerClient(base_url=d.host, version="auto")
    try:
        result = client.containers.prune(filters={"label": "reclaim=1"})
        assert len(result["ContainersDeleted"]) == 1 and result["SpaceReclaimed"] >= 100000
    finally:
        client.close()
