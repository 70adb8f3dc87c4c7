"""Resource fields through the API: honoured (spec, inspect, live update), discarded with dockerd's
warning where the host cannot, or refused with dockerd's words and status."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from servin.core.resources import assumed_features
from servin.runtime.resources import resources_from_oci
from tests.api.helpers import error

MB = 1 << 20
CREATE = "/v1.41/containers/create"


async def refused(env: Any, status: int, **host_config: Any) -> str:  # noqa: ANN401
    r = await env.client.post(CREATE, json={"Image": "busybox", "HostConfig": host_config})
    return await error(r, status)


@pytest.mark.parametrize(("host_config", "message"), [
    ({"CpusetCpus": "999"}, "Requested CPUs are not available - requested 999, available: 0-1"),
    ({"CpusetMems": "3"}, "Requested memory nodes are not available - requested 3, available: 0"),
    ({"RestartPolicy": {"Name": "bogus"}}, "invalid restart policy 'bogus'"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
     "maximum retry count cannot be used with restart policy 'always'"),
    ({"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 1}},
     "maximum retry count cannot be used with restart policy 'unless-stopped'"),
    ({"Memory": 64 * MB, "MemorySwap": 32 * MB},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"Runtime": "nvidia"}, "Unknown runtime specified nvidia"),
    ({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]},
     'could not select device driver "" with capabilities: [[gpu]]: Servin has no device drivers '
     "(no GPU support yet)"),
    ({"CgroupParent": "/mine"},
     "CgroupParent is not supported by Servin: a cgroup parent per container (the daemon's --cgroup-parent applies)"),
    ({"KernelMemoryTCP": 64 * MB}, "KernelMemoryTCP is not supported by Servin: a kernel TCP memory limit"),
    ({"CpuCount": 2}, "CpuCount is not supported by Servin: a CPU count (Windows only; use --cpus)"),
])  # fmt: skip
async def test_create_refuses_with_dockerds_words(env, host_config: dict, message: str) -> None:
    env.engine.features = assumed_features(1, 2)
    assert await refused(env, 400, **host_config) == message
    assert env.engine.list() == []


@pytest.mark.parametrize(("host_config", "message"), [
    ({"StorageOpt": {"size": "10G"}},
     "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"),
    ({"StorageOpt": {"foo": "bar"}}, "Unknown option foo"),
])  # fmt: skip
async def test_create_refusals_dockerd_answers_with_500(env, host_config: dict, message: str) -> None:
    """The layer driver refuses these while creating the container's layer (errdefs.System in moby)."""
    assert await refused(env, 500, **host_config) == message


@pytest.mark.parametrize(("host_config", "message"), [
    ({"IOMaximumBandwidth": 1000}, "Invalid QoS settings: linux does not support configuration of maximum bandwidth"),
    ({"IOMaximumIOps": 10}, "Invalid QoS settings: linux does not support configuration of maximum IOPs"),
    ({"CpuRealtimeRuntime": 1000}, "Your kernel does not support CPU real-time scheduler"),  # a v2 host
])  # fmt: skip
async def test_create_refusals_current_moby_answers_with_400(env, host_config: dict, message: str) -> None:
    """dockerd 20.10 answered these with a 500; current moby's create wraps them as InvalidParameter."""
    assert await refused(env, 400, **host_config) == message


async def test_zero_values_are_accepted(env) -> None:
    # what the docker CLI sends on every create
    cid = await env.create(HostConfig={
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "CpuCount": 0,
        "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "KernelMemory": 0, "KernelMemoryTCP": 0,
        "MemoryReservation": 0, "MemorySwappiness": None, "DeviceRequests": None, "Runtime": "", "StorageOpt": None,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0})
    hc = (await env.inspect(cid))["HostConfig"]
    assert (hc["BlkioWeight"], hc["BlkioWeightDevice"], hc["BlkioDeviceReadBps"], hc["MemorySwappiness"]) == (
        0, [], None, None)
    assert hc["Runtime"] == "runc"


async def test_kernel_memory_is_accepted_with_dockerds_warnings(env) -> None:
    r = await env.client.post(CREATE, json={"Image": "busybox", "HostConfig": {"KernelMemory": 64 * MB}})
    assert r.status == 201
    body = await r.json()
    assert body["Warnings"] == [
        "Specifying a kernel memory limit is deprecated and will be removed in a future release.",
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
        "Limitation discarded.",
    ]
    assert (await env.inspect(body["Id"]))["HostConfig"]["KernelMemory"] == 0


async def test_swappiness_on_v2_is_discarded_with_a_warning(env) -> None:
    r = await env.client.post(CREATE, json={"Image": "busybox", "HostConfig": {"MemorySwappiness": 30}})
    assert (await r.json())["Warnings"] == [
        "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
        "Memory swappiness discarded."]


async def test_resources_reach_the_spec_and_inspect(env) -> None:
    env.engine.features = assumed_features(1, 2)
    env.engine.block_numbers = lambda paths: {p: (8, 16) for p in paths}
    cid = await env.run(HostConfig={
        "Memory": 64 * MB, "MemoryReservation": 32 * MB, "MemorySwappiness": 10, "BlkioWeight": 300,
        "BlkioWeightDevice": [{"Path": "/dev/sdb", "Weight": 400}],
        "BlkioDeviceReadBps": [{"Path": "/dev/sdb", "Rate": MB}], "BlkioDeviceWriteIOps": [{"Path": "/dev/sdb",
                                                                                           "Rate": 100}],
        "CpuRealtimePeriod": 1_000_000, "CpuRealtimeRuntime": 10_000, "PidsLimit": 42})
    res = env.runtime.specs[cid]["linux"]["resources"]
    assert res["memory"] == {"limit": 64 * MB, "swap": 128 * MB, "reservation": 32 * MB, "swappiness": 10}
    assert res["cpu"] == {"realtimePeriod": 1_000_000, "realtimeRuntime": 10_000}
    assert res["pids"] == {"limit": 42}
    assert res["blockIO"] == {
        "weight": 300, "weightDevice": [{"major": 8, "minor": 16, "weight": 400}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 16, "rate": MB}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]}
    hc = (await env.inspect(cid))["HostConfig"]
    assert (hc["BlkioWeight"], hc["BlkioWeightDevice"], hc["BlkioDeviceReadBps"], hc["BlkioDeviceWriteIOps"]) == (
        300, [{"Path": "/dev/sdb", "Weight": 400}], [{"Path": "/dev/sdb", "Rate": MB}],
        [{"Path": "/dev/sdb", "Rate": 100}])
    assert (hc["MemoryReservation"], hc["MemorySwappiness"], hc["CpuRealtimePeriod"], hc["CpuRealtimeRuntime"]) == (
        32 * MB, 10, 1_000_000, 10_000)


async def test_a_missing_block_device_is_refused(env) -> None:
    env.engine.features = assumed_features(1, 2)
    assert await refused(env, 400, BlkioDeviceReadBps=[{"Path": "/dev/servin-no-such", "Rate": 1}]) == (
        "stat /dev/servin-no-such: no such file or directory")
    assert await refused(env, 400, BlkioDeviceReadBps=[{"Path": "/dev/null", "Rate": 1}]) == (
        "/dev/null is not a block device")


class RecordingCgroups:
    """What the runtime's update writes to the container's cgroup: (its path, the kernel's limits)."""

    def __init__(self, runtime: Any) -> None:  # noqa: ANN401 - the FakeRuntime
        self.updates: list[Any] = []
        self.runtime = runtime

    async def update(self, cid: str, resources: Any) -> None:  # noqa: ANN401
        limits = replace(resources_from_oci({"resources": resources}), device_rules=None)
        self.updates.append((self.runtime.cgroups_path(cid), limits))


async def test_update_applies_what_dockerd_updates_and_refuses_the_rest(env) -> None:
    env.engine.features = assumed_features(1, 2)
    cg = RecordingCgroups(env.runtime)
    env.runtime.update = cg.update  # type: ignore[method-assign]
    cid = await env.run(Cmd=["sleep", "100"], HostConfig={"Memory": 64 * MB,
                                                           "RestartPolicy": {"Name": "unless-stopped"}})
    r = await env.client.post(f"/v1.41/containers/{cid}/update", json={
        "Memory": 128 * MB, "MemorySwap": 256 * MB, "MemoryReservation": 64 * MB, "BlkioWeight": 500,
        "CpuRealtimePeriod": 1_000_000, "CpuRealtimeRuntime": 5000, "KernelMemory": 0, "MemorySwappiness": None,
        "BlkioWeightDevice": None, "OomKillDisable": None, "PidsLimit": 50, "RestartPolicy": {"Name": ""}})
    assert r.status == 200, await r.text()
    assert await r.json() == {"Warnings": []}
    path, res = cg.updates[-1]
    assert path.endswith(cid)
    assert (res.memory, res.memory_swap, res.memory_reservation, res.blkio_weight, res.cpu_rt_runtime,
            res.pids_limit) == (128 * MB, 256 * MB, 64 * MB, 500, 5000, 50)
    hc = (await env.inspect(cid))["HostConfig"]
    assert (hc["Memory"], hc["MemoryReservation"], hc["BlkioWeight"]) == (128 * MB, 64 * MB, 500)
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"  # Name "" (the CLI's default) changes nothing
    # kernel memory: accepted with dockerd's warnings, not applied
    r = await env.client.post(f"/v1.41/containers/{cid}/update", json={"KernelMemory": 64 * MB})
    assert len((await r.json())["Warnings"]) == 2
    # what dockerd silently ignores in an update is refused, naming the field
    r = await env.client.post(f"/v1.41/containers/{cid}/update", json={"MemorySwappiness": 10})
    assert await error(r, 400) == "MemorySwappiness cannot be changed by docker update; create a new container"
    r = await env.client.post(f"/v1.41/containers/{cid}/update", json={"RestartPolicy": {"Name": "bogus"}})
    assert await error(r, 400) == "invalid restart policy 'bogus'"
    r = await env.client.post(f"/v1.41/containers/{cid}/update", json={"CpusetCpus": "7"})
    assert await error(r, 400) == "Requested CPUs are not available - requested 7, available: 0-1"
    await env.client.post(f"/v1.41/containers/{cid}/kill")


async def test_env_without_a_value_unsets_and_is_not_passed(env) -> None:
    # `docker run -e NAME` with NAME unset in the client's environment sends "NAME"
    cid = await env.run(Cmd=["sleep", "100"], Env=["NAME", "A=1", "HOSTNAME"])
    spec_env = env.runtime.specs[cid]["process"]["env"]
    assert "NAME" not in spec_env and "A=1" in spec_env
    assert not any(e.startswith("HOSTNAME") for e in spec_env)  # unset, as dockerd's default is removed
    assert "NAME" in (await env.inspect(cid))["Config"]["Env"]  # kept in Config.Env, as dockerd
    await env.client.post(f"/v1.41/containers/{cid}/kill")


def test_assumed_features_are_replaceable() -> None:
    f = assumed_features(2, 4)
    assert replace(f, cpus="0").cpus == "0" and f.cpus == "0-3"
