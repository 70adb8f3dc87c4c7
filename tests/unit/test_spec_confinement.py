"""Golden tests of core/spec.build_spec for the confinement flags.

The expected values are what dockerd 20.10.24 (Debian's 20.10.24+dfsg1, runc 1.1.5) wrote into
config.json for the same `docker run` flags on this cgroup v1 host (captured once with a throwaway
dockerd, see each test), or, where dockerd cannot run the container here (--privileged and
--cap-add ALL need CAP_SYS_RESOURCE, which this host's bounding set lacks), what moby's
daemon/oci_linux.go writes. Intentional differences are said where asserted.
"""

from __future__ import annotations

from typing import Any

import pytest

from servin.api.wire.containers import parse_create
from servin.core.caps import DEFAULT_CAPS
from servin.core.confinement import adapt
from servin.core.model import Container, State
from servin.core.spec import Confinement, ProcessUser, RootfsLayout, build_spec
from servin.runtime.devices import HostDevice
from servin.runtime.plan import CAPABILITIES

CID = "4f1c0a2b3d4e" + "0" * 52
BUNDLE = f"/var/lib/servin/containers/{CID}"
HOST_CAPS = tuple(c for c in CAPABILITIES if c != "CAP_SYS_RESOURCE")  # this host's CapBnd
FUSE = HostDevice(path="/dev/fuse", type="c", major=10, minor=229, file_mode=0o600, uid=0, gid=0)
DONOR = 4242

# dockerd: linux.resources.devices of a default container (oci/defaults.go), in order
DOCKERD_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
]
DOCKERD_DEFAULT_SYSCTLS = {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}


def spec(host_config: dict[str, Any], *, uid: int = 0, conf: Confinement | None = None, cgroup_version: int = 1,
         **body: Any) -> dict[str, Any]:
    config, hc = parse_create({"Image": "busybox", "Cmd": ["sleep", "20"], "HostConfig": host_config, **body})
    hc = adapt(hc, cgroup_version=cgroup_version, lookup=lambda ref: pytest.fail(f"looked up {ref}"))
    c = Container(id=CID, name="golden", created="2024-01-01T00:00:00Z", image_id="sha256:" + "b" * 64,
                  config=config, host_config=hc, state=State(), path="sleep", args=("20",),
                  resolved_env=("PATH=/bin", f"HOSTNAME={CID[:12]}"), resolved_user="", resolved_workdir="/",
                  resolved_hostname=CID[:12])
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=("/l/1",), upperdir=f"{BUNDLE}/upper", workdir=f"{BUNDLE}/work")
    return build_spec(c, layout=layout, user=ProcessUser(uid=uid, gid=uid), cgroups_path=f"/servin/{CID}",
                      cgroup_version=cgroup_version, seccomp_default="unconfined",
                      confinement=conf or Confinement(host_caps=HOST_CAPS))


def mount(s: dict[str, Any], destination: str) -> dict[str, Any] | None:
    return next((m for m in s["mounts"] if m["destination"] == destination), None)


def namespaces(s: dict[str, Any]) -> list[dict[str, str]]:
    return s["linux"]["namespaces"]


def test_default_matches_dockerd() -> None:
    s = spec({})
    assert s["process"]["capabilities"] == {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")}
    # Docker's rules (runc's AllowedDevices besides), the deny of /dev/fuse last
    assert all(r in s["linux"]["resources"]["devices"] for r in DOCKERD_DEVICE_RULES)
    assert s["linux"]["resources"]["devices"][-1] == DOCKERD_DEVICE_RULES[-1]
    assert s["linux"]["sysctl"] == DOCKERD_DEFAULT_SYSCTLS
    assert s["process"]["oomScoreAdj"] == 0
    assert "noNewPrivileges" not in s["process"]
    assert "devices" not in s["linux"]
    assert mount(s, "/sys")["options"] == ["nosuid", "noexec", "nodev", "ro"]


def test_cap_add_and_drop_match_dockerd() -> None:
    # docker run --cap-add NET_ADMIN --cap-drop chown (the CLI sends them as given)
    caps = spec({"CapAdd": ["NET_ADMIN"], "CapDrop": ["chown"]})["process"]["capabilities"]
    want = ["CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
            "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
            "CAP_NET_ADMIN"]
    assert caps == {"bounding": want, "effective": want, "permitted": want}


def test_cap_drop_all_keeps_only_the_added_ones() -> None:
    # docker run --cap-drop ALL --cap-add cap_kill
    assert spec({"CapDrop": ["ALL"], "CapAdd": ["cap_kill"]})["process"]["capabilities"]["bounding"] == ["CAP_KILL"]


def test_cap_add_all_is_the_daemons_bounding_set() -> None:
    # dockerd 20.10 adds its own list of all capabilities (CAP_SYS_RESOURCE too: runc then fails with
    # "unable to apply caps: operation not permitted" here); Servin adds what the daemon holds
    bounding = spec({"CapAdd": ["ALL"], "CapDrop": ["MKNOD"]})["process"]["capabilities"]["bounding"]
    assert bounding == [c for c in HOST_CAPS if c != "CAP_MKNOD"]
    assert "CAP_SYS_RESOURCE" not in bounding


def test_a_non_root_user_gets_the_bounding_set_only() -> None:
    # docker run --security-opt no-new-privileges --oom-score-adj 500 -u 1000 (oci.SetCapabilities)
    s = spec({"SecurityOpt": ["no-new-privileges"], "OomScoreAdj": 500}, uid=1000, User="1000")
    assert s["process"]["capabilities"] == {"bounding": list(DEFAULT_CAPS)}
    assert s["process"]["noNewPrivileges"] is True
    assert s["process"]["oomScoreAdj"] == 500


@pytest.mark.parametrize(("opts", "daemon", "want"), [
    (["no-new-privileges:false"], False, False), (["no-new-privileges=true"], False, True),
    ([], True, True), (["no-new-privileges=false"], True, False),
])
def test_no_new_privileges_from_the_container_or_the_daemon(opts: list[str], daemon: bool, want: bool) -> None:
    s = spec({"SecurityOpt": opts}, conf=Confinement(host_caps=HOST_CAPS, no_new_privileges=daemon))
    assert s["process"].get("noNewPrivileges", False) is want


def test_privileged() -> None:
    # moby's WithCapabilities (all), WithMounts (/sys and cgroup rw, no masked or read-only paths),
    # WithDevices (every host device, one allow-all rule); no seccomp (WithSeccomp)
    s = spec({"Privileged": True}, conf=Confinement(host_caps=HOST_CAPS, devices=(FUSE,)))
    assert s["process"]["capabilities"] == {k: list(HOST_CAPS) for k in ("bounding", "effective", "permitted")}
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]
    assert mount(s, "/sys")["options"] == ["nosuid", "noexec", "nodev"]
    assert "ro" not in mount(s, "/sys/fs/cgroup")["options"]
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert s["linux"]["devices"] == [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 0, "gid": 0}]
    assert "seccomp" not in s["linux"]
    assert "noNewPrivileges" not in s["process"]


def test_privileged_with_the_default_seccomp_profile_has_none() -> None:
    config, hc = parse_create({"Image": "busybox", "HostConfig": {"Privileged": True}})
    c = Container(id=CID, name="p", created="x", image_id="sha256:" + "b" * 64, config=config, host_config=hc,
                  state=State(), path="true", args=(), resolved_env=(), resolved_user="", resolved_workdir="/",
                  resolved_hostname="p")
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=("/l/1",), upperdir="/u", workdir="/w")
    s = build_spec(c, layout=layout, user=ProcessUser(uid=0, gid=0), cgroups_path="/x", cgroup_version=1,
                   confinement=Confinement(host_caps=HOST_CAPS))
    assert "seccomp" not in s["linux"]


def test_device_matches_dockerd() -> None:
    # docker run --device /dev/fuse, and --device /dev/fuse:/dev/myfuse:r
    s = spec({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}]},
             conf=Confinement(host_caps=HOST_CAPS, devices=(FUSE,)))
    assert s["linux"]["devices"] == [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 0, "gid": 0}]
    rules = s["linux"]["resources"]["devices"]
    assert rules[-2:-1] == DOCKERD_DEVICE_RULES[-1:]  # the default deny of /dev/fuse, then its allow
    assert rules[-1] == {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
    mapped = FUSE._replace(path="/dev/myfuse", permissions="r")
    s = spec({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/myfuse", "CgroupPermissions": "r"}],
              "DeviceCgroupRules": ["c 42:* rmw"]}, conf=Confinement(host_caps=HOST_CAPS, devices=(mapped,)))
    assert s["linux"]["devices"][0]["path"] == "/dev/myfuse"
    assert s["linux"]["resources"]["devices"][-2:] == [  # the device, then --device-cgroup-rule
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"},
        {"allow": True, "type": "c", "major": 42, "minor": None, "access": "rmw"}]


def test_sysctls_match_dockerd() -> None:
    # docker run --sysctl kernel.shm_rmid_forced=1 --sysctl net.ipv4.ip_forward=1
    s = spec({"Sysctls": {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_forward": "1"}})
    assert s["linux"]["sysctl"] == {**DOCKERD_DEFAULT_SYSCTLS, "kernel.shm_rmid_forced": "1",
                                    "net.ipv4.ip_forward": "1"}
    # docker run --network host: no sysctl section (not the host's namespace's to set)
    assert "sysctl" not in spec({"NetworkMode": "host"})["linux"]


def test_ipc_modes_match_dockerd() -> None:
    assert {"type": "ipc"} in namespaces(spec({"IpcMode": "none"}))
    assert mount(spec({"IpcMode": "none"}), "/dev/shm") is None
    host = spec({"IpcMode": "host"})
    assert "ipc" not in [n["type"] for n in namespaces(host)]
    assert mount(host, "/dev/shm") == {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                                       "options": ["rbind", "rprivate"]}
    # Intentional: dockerd binds a shareable container's /dev/shm from a tmpfs it mounts on the host
    # (containers/<id>/mounts/shm); Servin keeps the container's own tmpfs, joined through its init
    assert mount(spec({"IpcMode": "shareable"}), "/dev/shm")["type"] == "tmpfs"


def test_joining_another_containers_ipc_and_pid_namespaces() -> None:
    from servin.core.model import HostConfig

    config, _ = parse_create({"Image": "busybox"})
    hc = HostConfig(ipc_mode="container:" + "d" * 64, pid_mode="container:" + "d" * 64)
    c = Container(id=CID, name="j", created="x", image_id="sha256:" + "b" * 64, config=config, host_config=hc,
                  state=State(), path="true", args=(), resolved_env=(), resolved_user="", resolved_workdir="/",
                  resolved_hostname="j")
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=("/l/1",), upperdir="/u", workdir="/w")
    s = build_spec(c, layout=layout, user=ProcessUser(uid=0, gid=0), cgroups_path="/x", cgroup_version=1,
                   seccomp_default="unconfined",
                   confinement=Confinement(host_caps=HOST_CAPS, ipc_pid=DONOR, pid_pid=DONOR))
    # dockerd: {"type": "ipc", "path": "/proc/<pid>/ns/ipc"}, {"type": "pid", "path": "/proc/<pid>/ns/pid"}
    assert {"type": "ipc", "path": f"/proc/{DONOR}/ns/ipc"} in namespaces(s)
    assert {"type": "pid", "path": f"/proc/{DONOR}/ns/pid"} in namespaces(s)
    # dockerd binds the donor's shm directory; Servin the donor's /dev/shm, through its init's root
    assert mount(s, "/dev/shm") == {"destination": "/dev/shm", "type": "bind",
                                    "source": f"/proc/{DONOR}/root/dev/shm", "options": ["rbind", "rprivate"]}


def test_pid_uts_and_cgroup_namespace_modes_match_dockerd() -> None:
    assert [n["type"] for n in namespaces(spec({"PidMode": "host"}))] == ["mount", "network", "uts", "ipc"]
    uts = spec({"UTSMode": "host"})
    assert [n["type"] for n in namespaces(uts)] == ["mount", "network", "pid", "ipc"]
    assert "hostname" not in uts
    assert namespaces(spec({"CgroupnsMode": "private"}))[-1] == {"type": "cgroup"}
    assert "cgroup" not in [n["type"] for n in namespaces(spec({}))]  # v1: host
    assert namespaces(spec({}, cgroup_version=2))[-1] == {"type": "cgroup"}  # v2: private


def test_systempaths_unconfined_and_given_paths() -> None:
    s = spec({"SecurityOpt": ["systempaths=unconfined"]})
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]
    # the docker CLI sends systempaths=unconfined as empty MaskedPaths and ReadonlyPaths
    s = spec({"MaskedPaths": [], "ReadonlyPaths": ["/proc/sys"]})
    assert "maskedPaths" not in s["linux"] and s["linux"]["readonlyPaths"] == ["/proc/sys"]
