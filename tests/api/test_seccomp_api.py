"""--security-opt seccomp through the API: the profile a container starts with, refusals at create
with dockerd's wording, inspect showing SecurityOpt as sent."""

from __future__ import annotations

import json

import pytest

from tests.api.helpers import error

pytestmark = pytest.mark.unit

MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


async def test_default_container_gets_dockers_profile(env):
    cid = await env.run(Cmd=["true"])
    section = env.runtime.specs[cid]["linux"]["seccomp"]
    assert section["defaultAction"] == "SCMP_ACT_ERRNO"
    assert (await env.inspect(cid))["HostConfig"]["SecurityOpt"] is None


async def test_unconfined_and_custom(env):
    cid = await env.run(Cmd=["true"], HostConfig={"SecurityOpt": ["seccomp=unconfined"]})
    assert "seccomp" not in env.runtime.specs[cid]["linux"]
    assert (await env.inspect(cid))["HostConfig"]["SecurityOpt"] == ["seccomp=unconfined"]
    opt = "seccomp=" + json.dumps(MKDIR, separators=(",", ":"))  # what the docker CLI sends
    cid = await env.run(Cmd=["true"], HostConfig={"SecurityOpt": [opt]})
    assert env.runtime.specs[cid]["linux"]["seccomp"] == MKDIR
    assert (await env.inspect(cid))["HostConfig"]["SecurityOpt"] == [opt]


async def test_bad_profile_refused_at_create(env):
    r = await env.client.post("/v1.41/containers/create", json={
        "Image": "busybox", "HostConfig": {"SecurityOpt": ['seccomp={"defaultAction": 1}']}})
    assert await error(r, 400) == ("Decoding seccomp profile failed: json: cannot unmarshal number into Go "
                                   "struct field Seccomp.LinuxSeccomp.defaultAction of type specs.LinuxSeccompAction")
    r = await env.client.post("/v1.41/containers/create", json={
        "Image": "busybox", "HostConfig": {"SecurityOpt": ['seccomp={"defaultAction": "SCMP_ACT_NOPE"}']}})
    assert await error(r, 400) == "string SCMP_ACT_NOPE is not a valid action for seccomp"
    r = await env.client.get("/v1.41/containers/json", params={"all": "1"})
    assert await r.json() == []


async def test_privileged_is_unconfined_unless_a_profile_is_given(env):
    r = await env.client.post("/v1.41/containers/create", json={"Image": "busybox", "Cmd": ["true"],
                                                                 "HostConfig": {"Privileged": True}})
    if r.status != 201:
        pytest.skip(f"privileged containers are refused here: {await r.text()}")
    cid = (await r.json())["Id"]
    await env.client.post(f"/v1.41/containers/{cid}/start")
    assert "seccomp" not in env.runtime.specs[cid]["linux"]
    opt = "seccomp=" + json.dumps(MKDIR)
    cid = await env.run(Cmd=["true"], HostConfig={"Privileged": True, "SecurityOpt": [opt]})
    assert env.runtime.specs[cid]["linux"]["seccomp"] == MKDIR
