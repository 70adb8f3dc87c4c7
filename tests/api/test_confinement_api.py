"""Confinement options through POST /containers/create, start and inspect (fake runtime): what is
refused with dockerd's wording, and what inspect reports of what was applied."""

from __future__ import annotations

import pytest

from servin.runtime.plan import CAPABILITIES
from tests.api.helpers import error


async def create_error(env, status: int, **host_config) -> str:  # noqa: ANN001, ANN003
    r = await env.client.post("/v1.41/containers/create", json={"Image": "busybox", "HostConfig": host_config})
    return await error(r, status)


@pytest.mark.parametrize(("host_config", "message"), [
    ({"SecurityOpt": ["nonsense"]}, 'invalid --security-opt 1: "nonsense"'),
    ({"SecurityOpt": ["foo=bar"]}, 'invalid --security-opt 2: "foo=bar"'),
    ({"SecurityOpt": ["no-new-privileges=maybe"]}, 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ({"SecurityOpt": ["systempaths=confined"]}, 'invalid --security-opt 2: "systempaths=confined"'),
    ({"SecurityOpt": ["writable-cgroups=true"]}, 'invalid --security-opt 2: "writable-cgroups=true"'),
    ({"SecurityOpt": ["apparmor=docker-default"]},
     'invalid --security-opt "apparmor=docker-default": apparmor: config provided but apparmor not supported'),
    ({"CapAdd": ["NET_ADMIN", "FOO"]}, 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    ({"CapDrop": ["cap_bar"]}, 'invalid CapDrop: unknown capability: "CAP_BAR"'),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"OomScoreAdj": -1001}, "Invalid value -1001, range for oom score adj is [-1000, 1000]"),
    ({"Sysctls": {"kernel.hostname": "x"}}, "sysctl 'kernel.hostname=x' is not allowed"),
    ({"Sysctls": {"vm.swappiness": "1"}}, "sysctl 'vm.swappiness=1' is not allowed"),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"},
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"},
     'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ({"Sysctls": {"fs.mqueue.msg_max": "1"}, "IpcMode": "host"},
     'sysctl "fs.mqueue.msg_max" is not allowed in the hosts ipc namespace'),
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"PidMode": "container:"}, "invalid PID mode: container:"),
    ({"UTSMode": "private"}, "invalid UTS mode: private"),
    ({"CgroupnsMode": "shared"}, "invalid cgroup namespace mode: shared"),
    ({"UsernsMode": "private"},
     'invalid USER mode: private (Servin has no user namespace remapping: only "host" is supported)'),
    ({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "dev/fuse"}]}, "dev/fuse is not an absolute path"),
    ({"Devices": [{"PathOnHost": "/dev/fuse", "CgroupPermissions": "rwx"}]}, "bad mode specified: rwx"),
])
async def test_refused_at_create_with_dockerds_wording(env, host_config, message) -> None:  # noqa: ANN001
    assert await create_error(env, 400, **host_config) == message
    assert env.engine.list() == []


async def test_a_capability_the_daemon_lacks_cannot_be_added(env) -> None:  # noqa: ANN001
    env.engine.host_caps = tuple(c for c in CAPABILITIES if c != "CAP_SYS_RESOURCE")
    assert await create_error(env, 400, CapAdd=["sys_resource"]) == (
        'invalid CapAdd: capability not supported by your kernel or not available in the current environment: '
        '"CAP_SYS_RESOURCE"')
    await env.create(HostConfig={"CapDrop": ["SYS_RESOURCE"]})  # dropping what is not there is fine


async def test_hostname_and_the_hosts_uts_namespace_conflict(env) -> None:  # noqa: ANN001
    r = await env.client.post("/v1.41/containers/create",
                              json={"Image": "busybox", "Hostname": "h", "HostConfig": {"UTSMode": "host"}})
    assert await error(r, 400) == "conflicting options: hostname and the UTS mode"


async def test_joining_a_missing_container_is_a_404_at_create(env) -> None:  # noqa: ANN001
    assert await create_error(env, 404, IpcMode="container:missing") == "No such container: missing"
    assert await create_error(env, 404, PidMode="container:missing") == "No such container: missing"


async def test_inspect_reports_what_was_asked(env) -> None:  # noqa: ANN001
    cid = await env.create(HostConfig={
        "CapAdd": ["NET_ADMIN"], "CapDrop": ["chown"], "SecurityOpt": ["no-new-privileges", "label=type:foo"],
        "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}],
        "Sysctls": {"kernel.shm_rmid_forced": "1"}, "OomScoreAdj": 500, "UsernsMode": "host",
        "CgroupnsMode": "private"})
    info = await env.inspect(cid)
    hc = info["HostConfig"]
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["chown"]
    assert hc["SecurityOpt"] == ["no-new-privileges", "label=type:foo"]
    assert hc["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}]
    assert hc["Sysctls"] == {"kernel.shm_rmid_forced": "1"}
    assert (hc["OomScoreAdj"], hc["UsernsMode"], hc["CgroupnsMode"], hc["IpcMode"]) == (500, "host", "private",
                                                                                        "private")
    assert hc["Privileged"] is False
    assert "/proc/kcore" in hc["MaskedPaths"] and "/proc/sys" in hc["ReadonlyPaths"]
    assert info["AppArmorProfile"] == ""
    spec = await _started_spec(env, cid)
    assert spec["process"]["noNewPrivileges"] is True and spec["process"]["oomScoreAdj"] == 500
    assert spec["linux"]["devices"][0]["path"] == "/dev/fuse"


async def _started_spec(env, cid: str) -> dict:  # noqa: ANN001
    r = await env.client.post(f"/v1.41/containers/{cid}/start")
    assert r.status == 204, await r.text()
    return env.runtime.specs[cid]


async def test_inspect_of_a_privileged_container(env) -> None:  # noqa: ANN001
    # as dockerd 20.10: label=disable recorded, no masked or read-only paths (null)
    info = await env.inspect(await env.create(HostConfig={"Privileged": True}))
    hc = info["HostConfig"]
    assert hc["Privileged"] is True and hc["SecurityOpt"] == ["label=disable"]
    assert hc["MaskedPaths"] is None and hc["ReadonlyPaths"] is None
    for mode in ({"IpcMode": "host"}, {"PidMode": "host"}):
        info = await env.inspect(await env.create(HostConfig=mode))
        assert info["HostConfig"]["SecurityOpt"] == ["label=disable"]
    info = await env.inspect(await env.create(HostConfig={"Privileged": True, "SecurityOpt": ["label=level:s0"]}))
    assert info["HostConfig"]["SecurityOpt"] == ["label=level:s0"]


async def test_systempaths_and_apparmor_unconfined(env) -> None:  # noqa: ANN001
    info = await env.inspect(await env.create(HostConfig={"SecurityOpt": ["systempaths=unconfined",
                                                                          "apparmor=unconfined"]}))
    assert info["HostConfig"]["MaskedPaths"] == [] and info["HostConfig"]["ReadonlyPaths"] == []
    assert info["AppArmorProfile"] == "unconfined"
    # what the docker CLI sends for --security-opt systempaths=unconfined
    info = await env.inspect(await env.create(HostConfig={"SecurityOpt": [], "MaskedPaths": [], "ReadonlyPaths": []}))
    assert info["HostConfig"]["MaskedPaths"] == [] and info["HostConfig"]["SecurityOpt"] is None


async def test_seccomp_value_is_handed_through(env) -> None:  # noqa: ANN001
    profile = '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a=b:c"],"action":"SCMP_ACT_ERRNO"}]}'
    cid = await env.create(HostConfig={"SecurityOpt": ["seccomp=" + profile]})
    assert env.engine.get(cid).host_config.seccomp_profile == profile
    cid = await env.create(HostConfig={"SecurityOpt": ["seccomp:unconfined"]})  # the deprecated separator
    assert env.engine.get(cid).host_config.seccomp_profile == "unconfined"


async def test_joining_at_start_as_dockerd_answers(env) -> None:  # noqa: ANN001
    private = await env.run("donor", Cmd=["sleep", "60"])
    joiner = await env.create(HostConfig={"IpcMode": "container:donor"})
    assert (await env.inspect(joiner))["HostConfig"]["IpcMode"] == f"container:{private}"
    r = await env.client.post(f"/v1.41/containers/{joiner}/start")
    assert await error(r, 500) == (f"can't join IPC of container {private}: non-shareable IPC (hint: use "
                                   "IpcMode:shareable for the donor container)")
    shareable = await env.run("sharer", Cmd=["sleep", "60"], HostConfig={"IpcMode": "shareable"})
    pid_of = env.engine.get(shareable).state.pid
    joiner = await env.create(HostConfig={"IpcMode": "container:sharer", "PidMode": "container:sharer"})
    spec = await _started_spec(env, joiner)
    assert {"type": "ipc", "path": f"/proc/{pid_of}/ns/ipc"} in spec["linux"]["namespaces"]
    assert {"type": "pid", "path": f"/proc/{pid_of}/ns/pid"} in spec["linux"]["namespaces"]
    stopped = await env.create("stopped", HostConfig={"IpcMode": "shareable"})
    joiner = await env.create(HostConfig={"PidMode": "container:stopped"})
    r = await env.client.post(f"/v1.41/containers/{joiner}/start")
    assert await error(r, 500) == (f"cannot join PID of a non running container: {stopped}: container {stopped} "
                                   "is not running")


async def test_a_missing_device_fails_the_start_as_dockerds(env) -> None:  # noqa: ANN001
    cid = await env.create(HostConfig={"Devices": [{"PathOnHost": "/dev/nope", "PathInContainer": "/dev/nope",
                                                    "CgroupPermissions": "rwm"}]})
    r = await env.client.post(f"/v1.41/containers/{cid}/start")
    assert await error(r, 500) == ('error gathering device information while adding custom device "/dev/nope": '
                                   "no such file or directory")


async def test_network_host_takes_the_hosts_name(env) -> None:  # noqa: ANN001
    import socket

    info = await env.inspect(await env.create(HostConfig={"NetworkMode": "host"}))
    assert info["Config"]["Hostname"] == socket.gethostname()


@pytest.mark.parametrize(("host_config", "warned"), [
    ({"CapAdd": ["SYS_ADMIN"]}, True), ({"CapAdd": ["ALL"]}, True), ({"CapAdd": ["cap_sys_admin"]}, True),
    ({"CapAdd": ["NET_ADMIN"]}, False), ({"Privileged": True}, False), ({}, False),
    ({"CapAdd": ["ALL"], "CapDrop": ["SYS_ADMIN"]}, False),
])
async def test_sys_admin_without_an_lsm_profile_is_warned_about(env, host_config: dict, warned: bool) -> None:
    """A red-team run reached the host from --cap-add SYS_ADMIN (cgroup release_agent): Docker's
    AppArmor profile is what stops that, and Servin applies none, so the create says so."""
    from servin.core.confinement import SYS_ADMIN_WARNING

    r = await env.client.post("/v1.41/containers/create", json={"Image": "busybox", "HostConfig": host_config})
    assert r.status == 201, await r.text()
    assert (SYS_ADMIN_WARNING in ((await r.json())["Warnings"] or [])) is warned
