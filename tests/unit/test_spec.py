"""Golden test of core/spec.build_spec against what dockerd 20.10 writes into config.json.

The container is the one `docker run --memory 64m --cpus 1.5 --cpu-shares 512 --cpuset-cpus 0
--pids-limit 100 -e A=1 -w /work -u 1000:1000 busybox sh` creates. The expected values below are
dockerd 20.10.24's (moby oci/defaults.go DefaultLinuxSpec, daemon/oci_linux.go WithNamespaces,
WithMounts, WithCapabilities, WithResources/getCPUResources, WithCgroups, and
daemon/daemon_unix.go adaptContainerSettings), written from the source, not from Servin.

Intentional differences are listed where they are asserted.
"""

from __future__ import annotations

from pathlib import Path

from servin.api.wire.containers import parse_create
from servin.core.model import Container, State
from servin.core.spec import ProcessUser, RootfsLayout, build_spec
from tests.support.fakes import FakeRuntime

CID = "4f1c0a2b3d4e" + "0" * 52
BUNDLE = f"/var/lib/servin/containers/{CID}"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# the body `docker run` (CLI 20.10) posts for the flags above
CREATE_BODY = {
    "Image": "busybox",
    "Cmd": ["sh"],
    "Env": ["A=1"],
    "WorkingDir": "/work",
    "User": "1000:1000",
    "HostConfig": {
        "Memory": 64 * 1024 * 1024,
        "NanoCpus": 1_500_000_000,
        "CpuShares": 512,
        "CpusetCpus": "0",
        "PidsLimit": 100,
    },
}

# ---- dockerd 20.10.24 -------------------------------------------------------------------

DOCKERD_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
# since 20.10.14 (CVE-2022-24769) dockerd no longer fills the inheritable set, and oci.SetCapabilities
# gives a non-root user (here 1000) the bounding set only, as execve would leave it
DOCKERD_CAP_SETS = {"bounding": DOCKERD_CAPS}

DOCKERD_MASKED = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
DOCKERD_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

DOCKERD_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    # IpcMode "private" (20.10's default): the spec's tmpfs with the ShmSize
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
    {"destination": "/etc/resolv.conf", "type": "bind", "source": f"{BUNDLE}/resolv.conf",
     "options": ["rbind", "rprivate"]},
    {"destination": "/etc/hostname", "type": "bind", "source": f"{BUNDLE}/hostname",
     "options": ["rbind", "rprivate"]},
    {"destination": "/etc/hosts", "type": "bind", "source": f"{BUNDLE}/hosts", "options": ["rbind", "rprivate"]},
]

DOCKERD_MEMORY = {"limit": 67108864, "swap": 134217728}  # swap: adaptContainerSettings doubles Memory
DOCKERD_CPU = {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0"}
DOCKERD_PIDS = {"limit": 100}
# oci/defaults.go: after deny-all, allow c 1:5 1:3 1:9 1:8 5:0 5:1, deny c 10:229 (fuse)
DOCKERD_DEVICE_RULES = {(True, "c", 1, 5, "rwm"), (True, "c", 1, 3, "rwm"), (True, "c", 1, 9, "rwm"),
                        (True, "c", 1, 8, "rwm"), (True, "c", 5, 0, "rwm"), (True, "c", 5, 1, "rwm"),
                        (False, "c", 10, 229, "rwm")}
RUNC_ADDED_DEVICE_RULES = {(True, "c", None, None, "m"), (True, "b", None, None, "m"), (True, "c", 1, 7, "rwm"),
                           (True, "c", 5, 2, "rwm"), (True, "c", 136, None, "rwm"), (True, "c", 10, 200, "rwm")}


# ---- Servin -----------------------------------------------------------------------------

def _container(tmp_path: Path) -> Container:
    config, host = parse_create(CREATE_BODY)
    hostname = CID[:12]
    return Container(
        id=CID, name="golden", created="2024-01-01T00:00:00.000000000Z", image_id="sha256:" + "b" * 64,
        config=config, host_config=host, state=State(), path="sh", args=(),
        # what ContainerService.create resolves: image env, then HOSTNAME, then the user's
        resolved_env=(PATH, f"HOSTNAME={hostname}", "A=1"),
        resolved_user=config.user, resolved_workdir=config.working_dir, resolved_hostname=hostname,
    )


def _spec(tmp_path: Path, cgroup_version: int = 1, cgroup_parent: str = "docker") -> dict:
    c = _container(tmp_path)
    runtime = FakeRuntime(cgroup_parent=cgroup_parent, cgroup_version=cgroup_version)
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=("/l/2", "/l/1"), upperdir=f"{BUNDLE}/upper",
                          workdir=f"{BUNDLE}/work")
    return build_spec(c, layout=layout, user=ProcessUser(uid=1000, gid=1000, additional_gids=(1000,)),
                      cgroups_path=runtime.cgroups_path(CID), cgroup_version=cgroup_version)


def test_namespaces_v1_match_dockerd(tmp_path):
    # dockerd 20.10 leaves the network namespace pathless and joins it from libnetwork's
    # prestart hook; Servin has no hooks (networking is set up by the runtime).
    assert _spec(tmp_path)["linux"]["namespaces"] == [
        {"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}]


def test_namespaces_v2_add_a_private_cgroupns(tmp_path):
    # on cgroup v2 dockerd 20.10's default cgroupns mode is "private"
    ns = [n["type"] for n in _spec(tmp_path, cgroup_version=2)["linux"]["namespaces"]]
    assert ns == ["mount", "network", "uts", "pid", "ipc", "cgroup"]


def test_mounts_match_dockerd(tmp_path):
    assert _spec(tmp_path)["mounts"] == DOCKERD_MOUNTS


def test_capabilities_match_dockerd(tmp_path):
    caps = _spec(tmp_path)["process"]["capabilities"]
    assert caps == DOCKERD_CAP_SETS
    assert "inheritable" not in caps and "ambient" not in caps


def test_masked_and_readonly_paths(tmp_path):
    linux = _spec(tmp_path)["linux"]
    # Intentional: Servin also masks /proc/interrupts, as later dockerd releases do.
    assert set(linux["maskedPaths"]) == set(DOCKERD_MASKED) | {"/proc/interrupts"}
    assert len(linux["maskedPaths"]) == len(set(linux["maskedPaths"]))
    assert linux["readonlyPaths"] == DOCKERD_READONLY


def test_resources_match_dockerd(tmp_path):
    res = _spec(tmp_path)["linux"]["resources"]
    assert res["memory"] == DOCKERD_MEMORY
    assert res["cpu"] == DOCKERD_CPU
    assert res["pids"] == DOCKERD_PIDS
    devices = res["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    rules = {(d["allow"], d.get("type"), d.get("major"), d.get("minor"), d["access"]) for d in devices[1:]}
    assert DOCKERD_DEVICE_RULES <= rules
    # Intentional: Servin also writes into the spec what runc adds by itself at apply time
    # (libcontainer/specconv AllowedDevices), since servin-shim has no such built-in list.
    assert rules - DOCKERD_DEVICE_RULES == RUNC_ADDED_DEVICE_RULES


def test_cgroups_path_is_parent_slash_id(tmp_path):
    # dockerd (cgroupfs driver): "/docker/<id>"; Servin uses its own --cgroup-parent the same way
    assert _spec(tmp_path)["linux"]["cgroupsPath"] == f"/docker/{CID}"
    assert _spec(tmp_path, cgroup_parent="/servin/")["linux"]["cgroupsPath"] == f"/servin/{CID}"


def test_process_matches_dockerd(tmp_path):
    proc = _spec(tmp_path)["process"]
    assert proc["args"] == ["sh"]
    assert proc["cwd"] == "/work"
    assert proc["env"] == [PATH, f"HOSTNAME={CID[:12]}", "A=1"]  # dockerd's CreateDaemonEnvironment order
    assert proc["user"]["uid"] == 1000 and proc["user"]["gid"] == 1000
    assert proc["terminal"] is False
    assert proc["oomScoreAdj"] == 0
    # Docker's default seccomp profile (its rules: tests/unit/test_seccomp.py); no AppArmor on this host
    assert _spec(tmp_path)["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert proc["apparmorProfile"] == ""


def test_root_and_hostname(tmp_path):
    spec = _spec(tmp_path)
    assert spec["root"]["path"] == f"{BUNDLE}/rootfs"
    assert spec["hostname"] == CID[:12]
    assert spec["ociVersion"] == "1.0.2-dev"


def test_no_limits_means_no_resource_sections(tmp_path):
    config, host = parse_create({"Image": "busybox"})
    c = _container(tmp_path)
    from dataclasses import replace

    c = replace(c, host_config=host)
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=(), upperdir="u", workdir="w")
    res = build_spec(c, layout=layout, user=ProcessUser(uid=0, gid=0), cgroups_path="/x",
                     cgroup_version=1)["linux"]["resources"]
    assert set(res) == {"devices"}


def test_cpu_quota_and_period_without_nanocpus(tmp_path):
    from dataclasses import replace

    _, host = parse_create({"Image": "busybox", "HostConfig": {"CpuQuota": 50000, "CpuPeriod": 200000}})
    c = replace(_container(tmp_path), host_config=host)
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=(), upperdir="u", workdir="w")
    res = build_spec(c, layout=layout, user=ProcessUser(uid=0, gid=0), cgroups_path="/x", cgroup_version=1)
    assert res["linux"]["resources"]["cpu"] == {"quota": 50000, "period": 200000}
    assert "additionalGids" not in res["process"]["user"]


def test_shm_size_and_stdin_annotation(tmp_path):
    from dataclasses import replace

    config, host = parse_create({"Image": "busybox", "OpenStdin": True, "StdinOnce": True, "Tty": True,
                                 "HostConfig": {"ShmSize": 1 << 20}})
    c = replace(_container(tmp_path), config=config, host_config=host)
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=("/a", "/b"), upperdir="u", workdir="w")
    spec = build_spec(c, layout=layout, user=ProcessUser(uid=0, gid=0), cgroups_path="/x", cgroup_version=1)
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert shm["options"][-1] == "size=1048576"
    assert spec["process"]["terminal"] is True
    # a Tty container's stdin is never closed by a client's EOF (dockerd), so not "once"
    assert spec["annotations"]["io.servin.stdin"] == "open"
    assert spec["annotations"]["io.servin.overlay.lowerdir"] == "/a:/b"
    config, host = parse_create({"Image": "busybox", "OpenStdin": True, "StdinOnce": True})
    c = replace(_container(tmp_path), config=config, host_config=host)
    spec = build_spec(c, layout=layout, user=ProcessUser(uid=0, gid=0), cgroups_path="/x", cgroup_version=1)
    assert spec["annotations"]["io.servin.stdin"] == "once"


def test_bridge_mode_joins_the_endpoints_namespace(tmp_path):
    c = _container(tmp_path)
    layout = RootfsLayout(bundle=BUNDLE, lowerdirs=("/l/1",), upperdir=f"{BUNDLE}/upper", workdir=f"{BUNDLE}/work")
    spec = build_spec(c, layout=layout, user=ProcessUser(uid=0, gid=0, additional_gids=()), cgroups_path="/x",
                      cgroup_version=1, netns_path="/run/servin/netns/" + CID)
    assert {"type": "network", "path": "/run/servin/netns/" + CID} in spec["linux"]["namespaces"]
    assert [n["type"] for n in spec["linux"]["namespaces"]] == ["mount", "network", "uts", "pid", "ipc"]
