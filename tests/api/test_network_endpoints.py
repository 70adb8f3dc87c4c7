"""The network-endpoint fields of container create at each API version (the engine here has no
networking: what is checked is what each version accepts, refuses and warns about)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import error

pytestmark = pytest.mark.unit

MAC = "02:42:ac:11:00:99"
DEPRECATED = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."


async def create(env, version: str, **body: Any):  # noqa: ANN001, ANN201 - the api env, an aiohttp response
    return await env.client.post(f"/v{version}/containers/create", json={"Image": "busybox", **body})


async def test_several_endpoints_are_refused_below_1_44(env) -> None:
    two = {"HostConfig": {"NetworkMode": "net1"}, "NetworkingConfig": {"EndpointsConfig": {"net2": {}, "net1": {}}}}
    for version in ("1.24", "1.41", "1.43"):
        assert await error(await create(env, version, **two), 400) == (
            "Container cannot be created with multiple network endpoints: net1, net2")
    for version in ("1.44", "1.55"):  # past the version's check: this engine has no user-defined networks
        assert "user-defined networks need the bridge driver" in await error(await create(env, version, **two), 501)
    r = await env.client.post("/containers/create", json={"Image": "busybox", **two})  # unversioned: the newest
    await error(r, 501)


async def test_the_container_wide_mac_address_by_version(env) -> None:
    r = await create(env, "1.41", MacAddress=MAC)
    assert r.status == 201 and (await r.json())["Warnings"] == []
    cid = (await r.json())["Id"]
    for version in ("1.41", "1.44", "1.51"):
        info = await (await env.client.get(f"/v{version}/containers/{cid}/json")).json()
        assert info["Config"]["MacAddress"] == MAC
    for version in ("1.52", "1.55"):
        info = await (await env.client.get(f"/v{version}/containers/{cid}/json")).json()
        assert "MacAddress" not in info["Config"]

    r = await create(env, "1.44", MacAddress=MAC)
    assert r.status == 201 and (await r.json())["Warnings"] == [DEPRECATED]
    mismatch = {"MacAddress": MAC,
                "NetworkingConfig": {"EndpointsConfig": {"bridge": {"MacAddress": "02:42:00:00:00:01"}}}}
    assert await error(await create(env, "1.51", **mismatch), 400) == (
        "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be "
        "left empty")
    assert await error(await create(env, "1.41", MacAddress=MAC, HostConfig={"NetworkMode": "host"}), 400) == (
        "conflicting options: mac-address and the network mode")
    for version in ("1.52", "1.55"):
        assert await error(await create(env, version, MacAddress=MAC), 400) == (
            "container-wide MAC address no longer supported; use endpoint-specific MAC address instead")
    # the endpoint's own MAC: read from 1.44 on
    r = await create(env, "1.55", NetworkingConfig={"EndpointsConfig": {"bridge": {"MacAddress": MAC}}})
    assert r.status == 201 and (await r.json())["Warnings"] == []
    info = await (await env.client.get(f"/v1.51/containers/{(await r.json())['Id']}/json")).json()
    assert info["Config"]["MacAddress"] == MAC
    r = await create(env, "1.43", NetworkingConfig={"EndpointsConfig": {"bridge": {"MacAddress": MAC}}})
    info = await (await env.client.get(f"/v1.43/containers/{(await r.json())['Id']}/json")).json()
    assert "MacAddress" not in info["Config"]


async def test_interface_sysctls_by_version(env) -> None:
    sysctls = {"HostConfig": {"Sysctls": {"net.ipv4.conf.eth0.log_martians": "1"}}}
    for version in ("1.41", "1.47"):
        r = await create(env, version, **sysctls)
        assert r.status == 201, await r.text()
        assert (await r.json())["Warnings"] == [
            'Migrated sysctl "net.ipv4.conf.eth0.log_martians" to DriverOpts{"com.docker.network.endpoint.sysctls":'
            '"net.ipv4.conf.IFNAME.log_martians=1"}.']
        info = await (await env.client.get(f"/v{version}/containers/{(await r.json())['Id']}/json")).json()
        assert "Sysctls" not in info["HostConfig"]  # moved to the endpoint
    for version in ("1.48", "1.55"):
        assert await error(await create(env, version, **sysctls), 500) == (
            "interface specific sysctl setting \"net.ipv4.conf.eth0.log_martians\" must be supplied using driver "
            "option 'com.docker.network.endpoint.sysctls'")
    bad = {"NetworkingConfig": {"EndpointsConfig": {"bridge": {"DriverOpts": {
        "com.docker.network.endpoint.sysctls": "net.ipv4.conf.eth0.log_martians=1"}}}}}
    assert (await error(await create(env, "1.55", **bad), 400)).startswith(
        "invalid endpoint settings:\nunrecognised network interface sysctl 'net.ipv4.conf.eth0.log_martians=1'")
