"""OCI config -> servin-shim plan: golden checks of the translation and the wire format."""

from __future__ import annotations

from pathlib import Path

import pytest

from servin.errors import InvalidArgument, NotImplementedYet
from servin.kernel.cgroups import Resources, v1_hierarchy_mounts
from servin.runtime import plan as P
from servin.runtime.plan import Mount, Rlimit, decode, plan_from_oci
from servin.runtime.resources import resources_from_oci

pytestmark = pytest.mark.unit

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip

MOUNTINFO_HYBRID = """\
25 1 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
"""


def docker_like_config(**over) -> dict:  # noqa: ANN003
    cfg = {
        "ociVersion": "1.0.2",
        "process": {
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]},
            "args": ["sh", "-c", "echo hi"],
            "env": ["PATH=/bin", "A=b c"],
            "cwd": "/work",
            "capabilities": {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "abc123",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/data", "type": "bind", "source": "/srv/data",
             "options": ["rbind", "ro", "rprivate"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "hosts", "options": ["rbind", "rprivate"]},
        ],
        "linux": {
            "cgroupsPath": "/servin/abc",
            "resources": {
                "memory": {"limit": 8388608, "swap": 16777216},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
                "pids": {"limit": 100},
            },
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys"],
        },
        "annotations": {
            "io.servin.overlay.lowerdir": "/l/top:/l/base",
            "io.servin.overlay.upperdir": "/c/diff",
            "io.servin.overlay.workdir": "/c/work",
            "io.servin.stdin": "once",
        },
    }  # fmt: skip
    cfg.update(over)
    return cfg


def build(cfg: dict, **kw) -> P.Plan:  # noqa: ANN003
    kw.setdefault("cgroup_v1_hierarchies", v1_hierarchy_mounts(MOUNTINFO_HYBRID))
    return plan_from_oci(
        cfg, bundle=Path("/b/x"), log_path=Path("/l/x.log"), exit_path=Path("/e/x.json"),
        cgroup_procs=[Path("/sys/fs/cgroup/memory/servin/abc/cgroup.procs")], **kw,
    )  # fmt: skip


def test_process_fields() -> None:
    p = build(docker_like_config())
    assert p.args == (b"sh", b"-c", b"echo hi")
    assert p.env == (b"PATH=/bin", b"A=b c")
    assert (p.cwd, p.uid, p.gid, p.groups) == ("/work", 1000, 1000, (10, 20))
    assert p.no_new_privs and p.open_stdin and p.stdin_once
    assert p.rlimits == (Rlimit(resource=7, soft=1024, hard=1048576),)
    assert p.hostname == "abc123"
    assert p.root == "/b/x/rootfs" and p.readonly_root
    assert p.overlay == "lowerdir=/l/top:/l/base,upperdir=/c/diff,workdir=/c/work"
    assert p.log == "/l/x.log" and p.exit_file == "/e/x.json"
    assert p.cgroup_procs == ("/sys/fs/cgroup/memory/servin/abc/cgroup.procs",)


def test_capability_mask_is_dockers_default() -> None:
    assert build(docker_like_config()).caps == 0xA80425FB  # CapBnd of a default docker container
    assert P.capability_mask(["CAP_SYS_ADMIN", "NET_ADMIN", "CAP_NOT_A_THING"]) == (1 << 21) | (1 << 12)


def test_namespace_flags() -> None:
    p = build(docker_like_config())
    assert p.namespaces == 0x6E020000  # pid|net|ipc|uts|cgroup|mount
    cfg = docker_like_config()
    cfg["linux"]["namespaces"] = [{"type": "mount", "path": "/proc/1/ns/mnt"}]
    with pytest.raises(NotImplementedYet):
        build(cfg)
    cfg["linux"]["namespaces"] = [{"type": "network", "path": "relative/net"}]
    with pytest.raises(InvalidArgument):
        build(cfg)
    cfg["linux"]["namespaces"] = [{"type": "bogus"}]
    with pytest.raises(InvalidArgument):
        build(cfg)


def test_hostname_needs_uts_namespace() -> None:
    cfg = docker_like_config()
    cfg["linux"]["namespaces"] = [{"type": "mount"}]
    assert build(cfg).hostname is None


def test_mount_option_parsing_like_runc() -> None:
    assert P.parse_mount_options(["nosuid", "noexec", "nodev"]) == (0xE, "")
    assert P.parse_mount_options(["nosuid", "strictatime", "mode=755", "size=65536k"]) == (
        P.MS_NOSUID | P.MS_STRICTATIME, "mode=755,size=65536k")  # fmt: skip
    assert P.parse_mount_options(["rbind", "ro", "rprivate"]) == (
        P.MS_BIND | P.MS_REC | P.MS_RDONLY | P.MS_PRIVATE, "")  # fmt: skip
    assert P.parse_mount_options(["ro", "rw", "rslave", "relatime"]) == (
        P.MS_SLAVE | P.MS_REC | P.MS_RELATIME, "")  # fmt: skip
    assert P.parse_mount_options(["defaults", "suid", "nosuid", "exec"])[0] == P.MS_NOSUID


def test_mounts_translated() -> None:
    mounts = build(docker_like_config()).mounts
    assert mounts[0] == Mount(source="proc", target="/proc", fstype="proc", flags=0xE)
    assert mounts[1] == Mount(source="tmpfs", target="/dev", fstype="tmpfs",
                              flags=P.MS_NOSUID | P.MS_STRICTATIME, data="mode=755,size=65536k")  # fmt: skip
    assert mounts[2].data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    # cgroup on a hybrid host with a cgroup namespace: rw tmpfs, one cgroup mount per v1 hierarchy
    # (the namespace roots each at the container's cgroup), symlinks for co-mounted controllers,
    # tmpfs remounted ro
    cg = [m for m in mounts if m.target.startswith("/sys/fs/cgroup")]
    assert [(m.target, m.fstype, m.data) for m in cg] == [
        ("/sys/fs/cgroup", "tmpfs", "mode=755"),
        ("/sys/fs/cgroup/systemd", "cgroup", "none,name=systemd"),
        ("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cpu,cpuacct"),
        ("/sys/fs/cgroup/cpu", "symlink", ""),
        ("/sys/fs/cgroup/cpuacct", "symlink", ""),
        ("/sys/fs/cgroup/memory", "cgroup", "memory"),
        ("/sys/fs/cgroup", "tmpfs", "mode=755"),
    ]
    assert cg[3].source == cg[4].source == "cpu,cpuacct"
    assert cg[1].flags == P.MS_RDONLY | P.MS_NOSUID | P.MS_NODEV | P.MS_NOEXEC
    assert cg[-1].flags & P.MS_REMOUNT and cg[-1].flags & P.MS_RDONLY
    data, hosts = mounts[-2], mounts[-1]
    assert data == Mount(source="/srv/data", target="/data", fstype="bind",
                         flags=P.MS_BIND | P.MS_REC | P.MS_RDONLY | P.MS_PRIVATE)  # fmt: skip
    assert hosts.source == "/b/x/hosts"  # relative to the bundle


def test_cgroup_view_on_v1_without_cgroupns_binds_the_containers_own_cgroups() -> None:
    # dockerd's default on v1 (cgroupns host): as runc, the container's own directory of each
    # hierarchy, read-only, so memory.limit_in_bytes is its limit and not the host's
    cfg = docker_like_config()
    cfg["linux"]["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    cg = [m for m in build(cfg).mounts if m.target.startswith("/sys/fs/cgroup")]
    ro_bind = P.MS_BIND | P.MS_REC | P.MS_RDONLY | P.MS_NOSUID | P.MS_NODEV | P.MS_NOEXEC
    assert cg == [
        Mount(source="tmpfs", target="/sys/fs/cgroup", fstype="tmpfs", flags=P.MS_NOSUID | P.MS_NODEV | P.MS_NOEXEC,
              data="mode=755"),
        Mount(source="/sys/fs/cgroup/systemd/servin/abc", target="/sys/fs/cgroup/systemd", fstype="bind",
              flags=ro_bind),
        Mount(source="/sys/fs/cgroup/cpu,cpuacct/servin/abc", target="/sys/fs/cgroup/cpu,cpuacct", fstype="bind",
              flags=ro_bind),
        Mount(source="cpu,cpuacct", target="/sys/fs/cgroup/cpu", fstype="symlink", flags=0),
        Mount(source="cpu,cpuacct", target="/sys/fs/cgroup/cpuacct", fstype="symlink", flags=0),
        Mount(source="/sys/fs/cgroup/memory/servin/abc", target="/sys/fs/cgroup/memory", fstype="bind",
              flags=ro_bind),
        Mount(source="tmpfs", target="/sys/fs/cgroup", fstype="tmpfs",
              flags=P.MS_REMOUNT | P.MS_RDONLY | P.MS_NOSUID | P.MS_NODEV | P.MS_NOEXEC, data="mode=755"),
    ]  # fmt: skip
    cfg["linux"]["cgroupsPath"] = ""
    with pytest.raises(InvalidArgument, match="needs linux.cgroupsPath"):
        build(cfg)


def test_v1_hierarchies_are_the_ones_a_container_joins() -> None:
    # named hierarchies other than systemd's hold no cgroup of the container: not shown
    info = MOUNTINFO_HYBRID + (
        "32 25 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio\n"
        "33 25 0:31 / /sys/fs/cgroup/elogind rw,relatime shared:17 - cgroup cgroup rw,name=elogind\n")
    assert v1_hierarchy_mounts(info) == [
        ("systemd", "none,name=systemd"), ("cpu,cpuacct", "cpu,cpuacct"), ("memory", "memory"),
        ("net_cls,net_prio", "net_cls,net_prio")]


def test_cgroup_mount_on_v2_host() -> None:
    cg = [
        m for m in build(docker_like_config(), cgroup_v1_hierarchies=None).mounts if m.fstype.startswith("cgroup")
    ]
    assert cg == [Mount(source="cgroup", target="/sys/fs/cgroup", fstype="cgroup2",
                        flags=P.MS_RDONLY | P.MS_NOSUID | P.MS_NODEV | P.MS_NOEXEC)]  # fmt: skip


def test_resources() -> None:
    assert resources_from_oci(docker_like_config()["linux"]) == Resources(
        memory=8388608, memory_swap=16777216, cpu_shares=512, cpu_quota=50000, cpu_period=100000,
        cpuset_cpus="0-1", cpuset_mems="0", pids_limit=100,
    )  # fmt: skip
    assert resources_from_oci({}) == Resources()


def test_root_absolute_and_stdin_variants() -> None:
    cfg = docker_like_config(root={"path": "/abs/root"})
    cfg["annotations"] = {"io.servin.stdin": "open"}
    p = build(cfg)
    assert p.root == "/abs/root" and not p.readonly_root
    assert p.overlay is None and p.open_stdin and not p.stdin_once
    cfg["annotations"] = {}
    assert not build(cfg).open_stdin


def test_rlimit_infinity_and_unknown() -> None:
    cfg = docker_like_config()
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": -1}]
    assert build(cfg).rlimits == (Rlimit(resource=4, soft=P.RLIM_INFINITY, hard=P.RLIM_INFINITY),)
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]
    with pytest.raises(InvalidArgument):
        build(cfg)


def test_encode_wire_format() -> None:
    p = P.Plan(args=(b"echo", b"\xff bytes"), env=(b"A=1",), root="/r", caps=5,
               mounts=(Mount(source="proc", target="/proc", fstype="proc", flags=14),),
               rlimits=(Rlimit(resource=7, soft=1, hard=2),))  # fmt: skip
    raw = p.encode()
    assert raw.startswith(b"version\x001\x001\x00args\x002\x00echo\x00\xff bytes\x00env\x001\x00A=1\x00")
    assert raw.endswith(b"\x00")
    tags = dict((t, v) for t, v in decode(raw) if t not in ("mount", "rlimit"))
    assert tags["root"] == [b"/r"] and tags["caps"] == [b"5"] and tags["groups"] == []
    assert ("mount", [b"proc", b"/proc", b"proc", b"14", b""]) in decode(raw)
    assert ("rlimit", [b"7", b"1", b"2"]) in decode(raw)
    with pytest.raises(InvalidArgument):
        P.Plan(args=(b"a\0b",), root="/r").encode()


def test_empty_args_rejected() -> None:
    cfg = docker_like_config()
    cfg["process"]["args"] = []
    with pytest.raises(InvalidArgument):
        build(cfg)


def tags_of(p: P.Plan | P.ExecPlan) -> dict[str, list[bytes]]:
    return dict(decode(p.encode()))


def test_terminal_and_console_size() -> None:
    assert "terminal" not in tags_of(build(docker_like_config()))
    cfg = docker_like_config()
    cfg["process"]["terminal"] = True
    cfg["process"]["consoleSize"] = {"height": 40, "width": 120}
    p = build(cfg)
    assert p.terminal and p.console_size == (40, 120)
    assert tags_of(p)["terminal"] == [b"1"]
    assert tags_of(p)["consolesize"] == [b"40", b"120"]
    cfg["process"]["consoleSize"] = {"height": 0, "width": 0}
    assert "consolesize" not in tags_of(build(cfg))


def test_init_annotation_mounts_docker_init_and_prepends_it() -> None:
    cfg = docker_like_config()
    cfg["annotations"]["io.servin.init"] = "1"
    p = build(cfg, init_binary="/opt/servin/libexec/servin-init")
    assert p.init and tags_of(p)["init"] == [b"1"]
    assert p.args == (b"/sbin/docker-init", b"--", b"sh", b"-c", b"echo hi")
    init_mount = p.mounts[-1]
    assert init_mount == Mount(source="/opt/servin/libexec/servin-init", target="/sbin/docker-init", fstype="bind",
                               flags=P.MS_BIND | P.MS_RDONLY | P.MS_NOSUID | P.MS_NODEV)  # fmt: skip
    assert build(cfg).mounts[-1].source.endswith("/servin/libexec/servin-init")  # the default binary
    cfg["annotations"]["io.servin.init"] = "0"
    p = build(cfg)
    assert not p.init and p.args[0] == b"sh" and "init" not in tags_of(p)


def test_log_rotation_annotations() -> None:
    cfg = docker_like_config()
    cfg["annotations"].update({"io.servin.log.max-size": "10m", "io.servin.log.max-file": "3"})
    p = build(cfg)
    assert (p.log_max_size, p.log_max_files) == (10 * 1024 * 1024, 3)
    tags = tags_of(p)
    assert tags["log_max_size"] == [b"10485760"] and tags["log_max_files"] == [b"3"]
    # max-file without max-size means nothing (Docker refuses it at create; the plan just ignores it)
    cfg["annotations"]["io.servin.log.max-size"] = "-1"
    p = build(cfg)
    assert p.log_max_size is None and p.log_max_files is None
    assert "log_max_size" not in tags_of(p) and "log_max_files" not in tags_of(p)
    cfg["annotations"]["io.servin.log.max-file"] = "0"
    with pytest.raises(InvalidArgument):
        build(cfg)
    cfg["annotations"].update({"io.servin.log.max-file": "1", "io.servin.log.max-size": "ten"})
    with pytest.raises(InvalidArgument):
        build(cfg)


@pytest.mark.parametrize(
    ("text", "size"),
    [("100", 100), ("1k", 1024), ("1kb", 1024), ("1.5m", 1572864), ("2g", 2 << 30), ("10MiB", 10 << 20),
     ("-1", None), ("0", None), ("", None), (None, None)],
)  # fmt: skip
def test_parse_size(text: str | None, size: int | None) -> None:
    assert P.parse_size(text) == size


def test_log_driver_none_has_no_log_tag() -> None:
    cfg = docker_like_config()
    cfg["annotations"]["io.servin.log.driver"] = "none"
    cfg["annotations"]["io.servin.log.max-size"] = "1k"
    p = build(cfg)
    assert p.log is None and p.log_max_size is None
    assert not {"log", "log_max_size", "log_max_files"} & set(tags_of(p))
    p = plan_from_oci(docker_like_config(), bundle=Path("/b"), log_path=None, exit_path=None)
    assert p.log is None and "log" not in tags_of(p)
    cfg["annotations"]["io.servin.log.driver"] = "syslog"
    with pytest.raises(InvalidArgument, match="syslog"):
        build(cfg)


def test_exec_plan_wire_format() -> None:
    x = P.ExecPlan(
        args=(b"sh", b"-c", b"id"), env=(b"PATH=/bin",), cwd="/tmp", uid=1, gid=2, groups=(3, 4),
        caps=P.ALL_CAPS, no_new_privs=True, terminal=True, open_stdin=True, console_size=(24, 80),
    )  # fmt: skip
    assert decode(x.encode()) == [
        ("version", [b"1"]), ("args", [b"sh", b"-c", b"id"]), ("env", [b"PATH=/bin"]), ("cwd", [b"/tmp"]),
        ("uid", [b"1"]), ("gid", [b"2"]), ("groups", [b"3", b"4"]), ("caps", [b"18446744073709551615"]),
        ("no_new_privs", [b"1"]), ("terminal", [b"1"]), ("open_stdin", [b"1"]), ("consolesize", [b"24", b"80"]),
    ]  # fmt: skip
    plain = tags_of(P.ExecPlan(args=(b"true",)))
    assert plain["terminal"] == [b"0"] and plain["cwd"] == [b"/"] and "consolesize" not in plain
    with pytest.raises(InvalidArgument):
        P.ExecPlan(args=()).encode()


def test_network_namespace_path_is_joined_not_created() -> None:
    cfg = docker_like_config()
    cfg["linux"]["namespaces"] = [
        {"type": t} for t in ("pid", "ipc", "uts", "mount")
    ] + [{"type": "network", "path": "/run/servin/netns/abc"}]
    p = build(cfg)
    assert not p.namespaces & P.CLONE_NEWNET
    assert p.netns_path == "/run/servin/netns/abc"
    assert ("ns_path", [b"network", b"/run/servin/netns/abc"]) in P.decode(p.encode())
    assert "ns_path" not in [t for t, _ in P.decode(build(docker_like_config()).encode())]
