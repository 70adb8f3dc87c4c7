"""The pure parts of the confinement options: SecurityOpt parsing, capability sets, the plan tags
the supervisor gets (namespace paths, sysctls, oom_score_adj, devices, another container's
/dev/shm) and the host device lookup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servin import errors
from servin.api.wire.security import parse_security_opt, parse_sysctls
from servin.core import caps
from servin.runtime import plan as P
from servin.runtime.plan import CAPABILITIES, Device, Mount, decode, plan_from_oci
from servin.runtime import devices
from tests.unit.test_plan import docker_like_config

pytestmark = pytest.mark.unit


def test_security_opt_forms() -> None:
    assert parse_security_opt(("no-new-privileges",)).no_new_privileges is True
    assert parse_security_opt(("no-new-privileges:true",)).no_new_privileges is True  # the legacy colon
    assert parse_security_opt(("no-new-privileges=0",)).no_new_privileges is False
    assert parse_security_opt(()).no_new_privileges is None  # the daemon's setting
    assert parse_security_opt(("label=disable", "disable", "label:user:u")).no_new_privileges is None
    assert parse_security_opt(("seccomp=unconfined",)).seccomp_profile == "unconfined"
    assert parse_security_opt(("apparmor=unconfined",)).apparmor_profile == "unconfined"
    assert parse_security_opt(("systempaths=unconfined",)).unconfined_paths is True
    with pytest.raises(errors.InvalidArgument, match=r'^invalid --security-opt 1: "label"$'):
        parse_security_opt(("label",))


def test_sysctl_keys() -> None:
    ok = {"kernel.msgmax": "1", "kernel.sem": "1 2 3 4", "fs.mqueue.queues_max": "9", "net.core.somaxconn": "9"}
    assert parse_sysctls(ok) == ok
    for key in ("kernel.domainname", "kernel.shm_next_id", "net", "net.ipv4/../../x", "fs.file-max"):
        with pytest.raises(errors.InvalidArgument, match=r"^sysctl '.*=1' is not allowed$"):
            parse_sysctls({key: "1"})


def test_capability_sets() -> None:
    host = tuple(c for c in CAPABILITIES if c != "CAP_SYS_RESOURCE")
    assert caps.normalize(["net_admin", "CAP_KILL", "all"], "CapAdd") == ["CAP_NET_ADMIN", "CAP_KILL", "ALL"]
    assert caps.tweak((), (), privileged=True, available=host) == list(host)
    assert caps.tweak(("ALL",), ("ALL",), privileged=False, available=host) == list(host)  # add wins, as moby
    assert caps.tweak(("KILL", "kill"), (), privileged=False, available=host).count("CAP_KILL") == 1
    assert caps.names_of(0x1fffeffffff) == host


def test_plan_tags_of_the_confinement_options() -> None:
    cfg = docker_like_config()
    cfg["process"]["oomScoreAdj"] = -500
    cfg["linux"]["sysctl"] = {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "0"}
    cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600,
                                "uid": 0, "gid": 0}, {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]
    cfg["linux"]["namespaces"] = [{"type": "mount"}, {"type": "uts"}, {"type": "network"},
                                  {"type": "ipc", "path": "/proc/42/ns/ipc"},
                                  {"type": "pid", "path": "/proc/42/ns/pid"}]
    cfg["mounts"].append({"destination": "/dev/shm", "type": "bind", "source": "/proc/42/root/dev/shm",
                          "options": ["rbind", "rprivate"]})
    p = plan_from_oci(cfg, bundle=Path("/b"), log_path=None, exit_path=None)
    assert p.namespaces == P.CLONE_NEWNS | P.CLONE_NEWUTS | P.CLONE_NEWNET
    assert p.ns_paths == (("ipc", "/proc/42/ns/ipc"), ("pid", "/proc/42/ns/pid"))
    assert p.mounts[-1] == Mount(source="/proc/42/ns/mnt", target="/dev/shm", fstype="nsbind",
                                 flags=P.MS_BIND | P.MS_REC | P.MS_PRIVATE, data="/dev/shm")
    assert p.devices == (Device(path="/dev/fuse", type="c", major=10, minor=229, mode=0o600),
                         Device(path="/dev/sda", type="b", major=8, minor=0, mode=0o666))
    tags = decode(p.encode())
    assert ("ns_path", [b"ipc", b"/proc/42/ns/ipc"]) in tags
    assert ("sysctl", [b"kernel.shm_rmid_forced", b"1"]) in tags
    assert ("oom_score_adj", [b"-500"]) in tags
    assert ("device", [b"/dev/fuse", b"c", b"10", b"229", b"384", b"0", b"0"]) in tags
    assert ("oom_score_adj", [b"0"]) in decode(plan_from_oci({**docker_like_config(), "process": {
        **docker_like_config()["process"], "oomScoreAdj": 0}}, bundle=Path("/b"), log_path=None,
        exit_path=None).encode())


def test_device_lookup_as_moby(tmp_path: Path) -> None:
    assert devices.for_mapping("/dev/null", "/dev/mynull", "r") == [devices.HostDevice(
        path="/dev/mynull", type="c", major=1, minor=3, file_mode=os.stat("/dev/null").st_mode & 0o7777,
        uid=0, gid=0, permissions="r")]
    with pytest.raises(LookupError, match='^error gathering device information while adding custom device '
                                          '"/nope": no such file or directory$'):
        devices.for_mapping("/nope", "/nope", "rwm")
    (tmp_path / "f").write_text("x")
    with pytest.raises(LookupError, match="not a device node$"):
        devices.for_mapping(str(tmp_path / "f"), "/f", "rwm")
    (tmp_path / "link").symlink_to("/dev/zero")
    assert devices.for_mapping(str(tmp_path / "link"), "/dev/z", "rwm")[0].minor == 5  # a link is followed
    names = {d.path for d in devices.host_devices()}
    assert "/dev/null" in names and "/dev/console" not in names and not any(n.startswith("/dev/pts/") for n in names)


def test_daemon_no_new_privileges_flag_and_key(tmp_path: Path) -> None:
    import argparse

    from servin.daemon.config import add_daemon_flags, resolve

    def cfg(argv: list[str], data: str) -> bool:
        (tmp_path / "daemon.json").write_text(data)
        p = argparse.ArgumentParser()
        add_daemon_flags(p)
        return resolve(p.parse_args([*argv, "--config-file", str(tmp_path / "daemon.json")])).no_new_privileges

    assert cfg([], "{}") is False
    assert cfg(["--no-new-privileges"], "{}") is True
    assert cfg([], '{"no-new-privileges": true}') is True
