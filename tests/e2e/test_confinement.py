"""Capabilities, privilege, devices and kernel knobs through the docker CLI and docker-py, and the
escape probes: what a default container cannot do, and what --privileged can (as with Docker)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.daemon import ServinDaemon


def sh(d: ServinDaemon, *opts: str, script: str, check: bool = True) -> str:
    res = d.docker("run", "--rm", *opts, "busybox", "sh", "-c", script, check=check)
    return res.stdout.decode() + res.stderr.decode()


def host_block_device() -> tuple[str, int, int]:
    """A block device of the host that root can open (the VM's disk may not be), and its numbers."""
    for name in sorted(os.listdir("/sys/block")):
        try:
            os.close(os.open(f"/dev/{name}", os.O_RDONLY))
        except OSError:
            continue
        st = os.stat(f"/dev/{name}")
        return name, os.major(st.st_rdev), os.minor(st.st_rdev)
    pytest.skip("no block device root can open")


def daemon_caps(d: ServinDaemon) -> str:
    pid = int(d.pidfile.read_text())
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("CapBnd:"))
    return line.split()[1]


@pytest.fixture(scope="module")
def client(servin: ServinDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=servin.host, version="1.41")
    yield c
    c.close()


def test_cap_drop_and_add(servin: ServinDaemon) -> None:
    assert sh(servin, script="chown 1 /tmp && echo chowned") == "chowned\n"
    out = sh(servin, "--cap-drop", "CHOWN", script="chown 1 /tmp || echo refused", check=False)
    assert "Operation not permitted" in out and "refused" in out
    assert "Operation not permitted" in sh(servin, script="ip link add b0 type bridge", check=False)
    out = sh(servin, "--cap-add", "NET_ADMIN", script="ip link add b0 type bridge && ip -o link show b0")
    assert ": b0:" in out
    res = servin.docker("run", "--rm", "--cap-add", "FOO", "busybox", "true", check=False)
    assert res.returncode == 125 and b'invalid CapAdd: unknown capability: "CAP_FOO"' in res.stderr


def test_default_container_escape_probes(servin: ServinDaemon) -> None:
    _, major, minor = host_block_device()
    script = ("mkdir -p /mnt; mount -t tmpfs none /mnt 2>&1 || echo no-mount; "
              "echo x > /tmp/m.ko; insmod /tmp/m.ko 2>&1 || echo no-module; "
              "echo 1 > /proc/sys/kernel/shm_rmid_forced 2>&1 || echo no-proc-sys; "
              "echo h > /proc/sysrq-trigger 2>/dev/null || echo no-sysrq; "
              "echo timer_list $(wc -c < /proc/timer_list) keys $(wc -c < /proc/keys); "
              f"mknod /tmp/disk b {major} {minor} && dd if=/tmp/disk of=/dev/null count=1 2>&1 || echo no-disk; "
              "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
    out = sh(servin, script=script)
    for refused in ("no-mount", "no-module", "no-proc-sys", "no-sysrq", "no-disk"):
        assert refused in out, out
    assert "permission denied" in out  # mount: EPERM
    assert "timer_list 0 keys 0" in out  # masked
    assert "CapEff:\t00000000a80425fb" in out and "NoNewPrivs:\t0" in out


def test_privileged(servin: ServinDaemon) -> None:
    disk, _, _ = host_block_device()
    script = ("grep CapEff /proc/self/status; mkdir -p /mnt; mount -t tmpfs none /mnt && echo mounted; "
              "echo 1 > /proc/sys/kernel/shm_rmid_forced && echo proc-sys-written; "
              "[ $(wc -c < /proc/timer_list) -gt 0 ] && echo timer_list-read; "
              f"dd if=/dev/{disk} of=/dev/null count=1 2>/dev/null && echo disk-read; "
              "mount -o remount,rw /sys && echo sys-rw; ls /dev/fuse /dev/kmsg; "
              "grep ' /proc/sysrq-trigger ' /proc/mounts || echo sysrq-not-read-only")
    out = sh(servin, "--privileged", script=script)
    assert out.splitlines()[0].split()[1] == daemon_caps(servin)  # every capability the daemon holds
    for done in ("mounted", "proc-sys-written", "timer_list-read", "disk-read", "sys-rw", "/dev/fuse", "/dev/kmsg",
                 "sysrq-not-read-only"):
        assert done in out, out


def test_sysctl(servin: ServinDaemon) -> None:
    out = sh(servin, "--sysctl", "kernel.shm_rmid_forced=1", "--sysctl", "net.ipv4.tcp_syncookies=0",
             script="cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/tcp_syncookies "
                    "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert out.split() == ["1", "0", "0"]
    assert Path("/proc/sys/kernel/shm_rmid_forced").read_text().strip() == "0"  # the host's is untouched
    res = servin.docker("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true",
                        check=False)
    assert b'sysctl "net.ipv4.ip_forward" not allowed in host network namespace' in res.stderr


def test_device(servin: ServinDaemon) -> None:
    out = sh(servin, "--device", "/dev/fuse", script="ls -l /dev/fuse; (exec 3<>/dev/fuse) && echo can-write")
    assert out.startswith("crw-------") and "10, 229" in out.splitlines()[0] and "can-write" in out
    out = sh(servin, "--device", "/dev/fuse:/dev/rfuse:r",
             script="ls /dev/fuse; (exec 3</dev/rfuse) && echo can-read; (exec 3>/dev/rfuse) || echo cannot-write")
    assert "No such file" in out and "can-read" in out and "cannot-write" in out, out  # the rule of :r
    res = servin.docker("run", "--rm", "--device", "/dev/nope", "busybox", "true", check=False)
    assert b'error gathering device information while adding custom device "/dev/nope": no such file or directory' \
        in res.stderr


def test_oom_score_adj(servin: ServinDaemon) -> None:
    cid = servin.docker("run", "-d", "--oom-score-adj", "500", "busybox", "sleep", "60").stdout.decode().strip()
    try:
        assert servin.docker("exec", cid, "cat", "/proc/1/oom_score_adj", "/proc/self/oom_score_adj").stdout == \
            b"500\n500\n"
        info = json.loads(servin.docker("inspect", cid).stdout)[0]
        assert info["HostConfig"]["OomScoreAdj"] == 500
    finally:
        servin.docker("rm", "-f", cid)


def test_ipc_and_pid_of_another_container(servin: ServinDaemon) -> None:
    donor = servin.docker("run", "-d", "--ipc", "shareable", "busybox", "sh", "-c",
                          "echo shared > /dev/shm/x; exec sleep 60").stdout.decode().strip()
    private = servin.docker("run", "-d", "busybox", "sleep", "60").stdout.decode().strip()
    try:
        ns = servin.docker("exec", donor, "readlink", "/proc/self/ns/ipc").stdout.decode().strip()
        out = sh(servin, "--ipc", f"container:{donor}", "--pid", f"container:{donor}",
                 script="readlink /proc/self/ns/ipc; cat /dev/shm/x; tr '\\0' ' ' < /proc/1/cmdline")
        assert out.splitlines() == [ns, "shared", "sleep 60 "]
        res = servin.docker("run", "--rm", "--ipc", f"container:{private}", "busybox", "true", check=False)
        assert b"non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in res.stderr
    finally:
        servin.docker("rm", "-f", donor, private)


def test_host_namespaces(servin: ServinDaemon) -> None:
    host = socket.gethostname()
    assert sh(servin, "--uts", "host", script="hostname") == f"{host}\n"
    assert sh(servin, "--network", "host", script="hostname") == f"{host}\n"
    assert sh(servin, "--pid", "host", script="[ -d /proc/1 ] && tr '\\0' ' ' < /proc/1/cmdline") != "sh -c"
    ipc = os.readlink("/proc/self/ns/ipc")
    assert sh(servin, "--ipc", "host", script="readlink /proc/self/ns/ipc").strip() == ipc
    res = servin.docker("run", "--rm", "--userns", "host", "busybox", "true", check=False)
    assert res.returncode == 0


def test_security_opts(servin: ServinDaemon) -> None:
    nnp = "grep NoNewPrivs /proc/self/status"
    assert sh(servin, "--security-opt", "no-new-privileges", script=nnp).split() == ["NoNewPrivs:", "1"]
    assert sh(servin, "--security-opt", "no-new-privileges:true", script=nnp).split()[1] == "1"
    out = sh(servin, "--security-opt", "systempaths=unconfined", "--security-opt", "apparmor=unconfined",
             "--security-opt", "label=disable",
             script="wc -c < /proc/timer_list; grep ' /proc/sys ' /proc/mounts; true")
    assert int(out.split()[0]) > 0 and " /proc/sys " not in out  # nothing masked, /proc/sys not bound ro
    res = servin.docker("run", "--rm", "--security-opt", "apparmor=docker-default", "busybox", "true",
                        check=False)
    assert b"apparmor: config provided but apparmor not supported" in res.stderr
    res = servin.docker("run", "--rm", "--security-opt", "foo=bar", "busybox", "true", check=False)
    assert b'invalid --security-opt 2: "foo=bar"' in res.stderr


def test_daemon_no_new_privileges(daemon: ServinDaemon) -> None:
    daemon.stop()
    daemon.config_file.write_text(json.dumps({"no-new-privileges": True}))
    daemon.start()
    info = json.loads(daemon.docker("info", "--format", "{{json .SecurityOptions}}").stdout)
    assert info[-1] == "name=no-new-privileges"
    nnp = "grep NoNewPrivs /proc/self/status"
    assert sh(daemon, script=nnp).split()[1] == "1"
    assert sh(daemon, "--security-opt", "no-new-privileges=false", script=nnp).split()[1] == "0"


def test_docker_py(servin: ServinDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run(
        "busybox", ["sh", "-c", "cat /proc/1/oom_score_adj /proc/sys/kernel/shm_rmid_forced; ls -l /dev/fuse; "
                                "grep CapEff /proc/self/status"],
        cap_add=["NET_ADMIN"], cap_drop=["MKNOD"], oom_score_adj=300, sysctls={"kernel.shm_rmid_forced": "1"},
        devices=["/dev/fuse:/dev/fuse:rwm"], security_opt=["no-new-privileges"], detach=True)
    try:
        assert c.wait(timeout=30)["StatusCode"] == 0
        out = c.logs().decode().splitlines()
        assert out[:2] == ["300", "1"] and "10, 229" in out[2]
        # the 14 defaults, without MKNOD (bit 27), with NET_ADMIN (bit 12)
        assert int(out[3].split()[1], 16) == (0xa80425fb & ~(1 << 27)) | (1 << 12)
        hc = client.api.inspect_container(c.id)["HostConfig"]
        assert (hc["CapAdd"], hc["CapDrop"], hc["OomScoreAdj"]) == (["NET_ADMIN"], ["MKNOD"], 300)
        assert hc["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                                  "CgroupPermissions": "rwm"}]
        assert hc["SecurityOpt"] == ["no-new-privileges"] and hc["Sysctls"] == {"kernel.shm_rmid_forced": "1"}
    finally:
        c.remove(force=True)
    p = client.containers.run("busybox", ["grep", "CapEff", "/proc/self/status"], privileged=True, remove=True)
    assert p.decode().split()[1] == daemon_caps(servin)
    with pytest.raises(docker.errors.APIError, match="invalid CapAdd: unknown capability"):
        client.containers.create("busybox", cap_add=["NOPE"])


SYSCALL_PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/keyctl.h>
#include <linux/reboot.h>
static void report(const char *name, long rc) { printf("%s %s\n", name, rc < 0 ? strerrorname_np(errno) : "ok"); }
int main(void) {
    char attr[256] = {0};
    struct { unsigned int bytes; int type; unsigned char h[8]; } handle = {8, 1, {0}};
    struct timespec bad = {0, -1};  /* EINVAL once allowed: the clock is never set */
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
    report("add_key", syscall(SYS_add_key, "user", "probe", "x", 1, KEY_SPEC_SESSION_KEYRING));
    report("bpf", syscall(SYS_bpf, 5, attr, sizeof attr));
    report("perf_event_open", syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY));
    report("clock_settime", syscall(SYS_clock_settime, CLOCK_REALTIME, &bad));
    report("reboot", syscall(SYS_reboot, 0, 0, LINUX_REBOOT_CMD_CAD_OFF, 0));  /* bad magic: EINVAL once allowed */
    return 0;
}
"""


@pytest.fixture(scope="module")
def syscall_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess

    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(SYSCALL_PROBE)
    subprocess.run(["cc", "-static", "-O1", "-o", str(d / "probe"), str(d / "probe.c")], check=True)
    return d / "probe"


def run_probe(d: ServinDaemon, probe: Path, *opts: str) -> dict[str, str]:
    out = d.docker("run", "--rm", *opts, "-v", f"{probe}:/probe:ro", "busybox", "/probe").stdout.decode()
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_syscalls_docker_blocks_are_blocked_and_privileged_lifts_them(servin: ServinDaemon,
                                                                    syscall_probe: Path) -> None:
    default = run_probe(servin, syscall_probe)
    assert default == {name: "EPERM" for name in default} and len(default) == 8, default
    # --privileged answers as root on the host does (this sandboxed host itself refuses some)
    import subprocess

    host = dict(line.split(" ", 1) for line in subprocess.run([str(syscall_probe)], capture_output=True,
                                                              text=True, check=True).stdout.splitlines())
    assert run_probe(servin, syscall_probe, "--privileged") == host
    assert host["keyctl"] == host["add_key"] == host["unshare_user"] == "ok"  # so the default's EPERM is ours
