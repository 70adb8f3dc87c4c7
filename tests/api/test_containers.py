"""/containers/... through the real app and engine, with the recording fake runtime."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from tests.api.helpers import JSON, error


def frames(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    while raw:
        kind, size = struct.unpack(">BxxxI", raw[:8])
        out.append((kind, raw[8:8 + size]))
        raw = raw[8 + size:]
    return out


# ---- create -----------------------------------------------------------------------------

async def test_create(env):
    r = await env.client.post("/v1.41/containers/create", json={"Image": "busybox"})
    assert r.status == 201
    assert r.headers["Content-Type"] == JSON
    body = await r.json()
    assert set(body) == {"Id", "Warnings"}
    assert len(body["Id"]) == 64 and body["Warnings"] == []
    info = await env.inspect(body["Id"])
    assert info["State"]["Status"] == "created"
    assert info["Path"] == "sh" and info["Args"] == []  # the image's Cmd
    assert info["Name"].startswith("/") and "_" in info["Name"]  # a generated adjective_surname


async def test_create_with_name_and_lookup_by_name_and_prefix(env):
    cid = await env.create("web")
    assert (await env.inspect("web"))["Id"] == cid
    assert (await env.inspect(cid[:8]))["Id"] == cid
    assert (await env.inspect("web"))["Name"] == "/web"


@pytest.mark.parametrize("name", ["a", "-x", "bad name", "x/y", "ü"])
async def test_invalid_name(env, name):
    r = await env.client.post("/containers/create", params={"name": name}, json={"Image": "busybox"})
    assert await error(r, 400) == f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"


async def test_name_conflict(env):
    cid = await env.create("db")
    r = await env.client.post("/containers/create", params={"name": "db"}, json={"Image": "busybox"})
    assert await error(r, 409) == (
        f'Conflict. The container name "/db" is already in use by container "{cid}". You have to remove '
        "(or rename) that container to be able to reuse that name.")


async def test_name_is_free_again_after_remove(env):
    cid = await env.create("again")
    assert (await env.client.delete(f"/containers/{cid}")).status == 204
    await env.create("again")


async def test_unknown_image(env):
    r = await env.client.post("/containers/create", json={"Image": "nope"})
    assert await error(r, 404) == "No such image: nope:latest"


async def test_create_bad_bodies(env):
    r = await env.client.post("/containers/create", data=b"{not json", headers={"Content-Type": JSON})
    await error(r, 400)
    r = await env.client.post("/containers/create", json={"Image": "busybox", "Cmd": [1]})
    assert "Cmd" in await error(r, 400)
    r = await env.client.post("/containers/create", json={})
    assert "cannot be empty" in await error(r, 400)


async def test_create_with_empty_entrypoint_and_no_cmd(env):
    r = await env.client.post("/containers/create", json={"Image": "busybox", "Entrypoint": [""]})
    assert await error(r, 400) == "No command specified"


# ---- lifecycle -----------------------------------------------------------------------------

async def test_start_twice_is_304(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    r = await env.client.post(f"/containers/{cid}/start")
    assert r.status == 304
    assert await r.read() == b""
    assert (await env.inspect(cid))["State"]["Running"] is True
    await env.client.post(f"/containers/{cid}/kill")


async def test_start_builds_the_spec(env):
    cid = await env.run(Cmd=["sleep", "inf"], Env=["A=1"], User="nobody", WorkingDir="/srv",
                        HostConfig={"Memory": 16 << 20, "PidsLimit": 7})
    spec = env.runtime.specs[cid]
    assert spec["process"]["args"] == ["sleep", "inf"]
    assert spec["process"]["user"]["uid"] == 65534
    assert spec["process"]["cwd"] == "/srv"
    env_list = spec["process"]["env"]
    assert "A=1" in env_list and f"HOSTNAME={cid[:12]}" in env_list and "HOME=/home" in env_list
    assert spec["linux"]["cgroupsPath"] == f"/servin-test/{cid}"
    assert spec["linux"]["resources"]["memory"] == {"limit": 16 << 20, "swap": 32 << 20}
    assert spec["linux"]["resources"]["pids"] == {"limit": 7}
    bundle = env.engine.store.dir(cid)
    assert (bundle / "resolv.conf").read_text() == "nameserver 10.1.2.3\n"
    assert (bundle / "hostname").read_text() == cid[:12] + "\n"
    await env.client.post(f"/containers/{cid}/kill")


async def test_start_unknown_user_fails_with_dockers_message(env):
    cid = await env.create(User="nobody-here")
    r = await env.client.post(f"/containers/{cid}/start")
    msg = await error(r, 400)
    assert "unable to find user nobody-here: no matching entries in passwd file" in msg


async def test_start_failure_127(env):
    cid = await env.create(Cmd=["nope"])
    env.runtime.fail_next_start = (127, 'exec: "nope": executable file not found in $PATH')
    r = await env.client.post(f"/containers/{cid}/start")
    msg = await error(r, 400)
    assert msg == ('OCI runtime create failed: runc create failed: unable to start container process: '
                   'exec: "nope": executable file not found in $PATH: unknown')
    st = (await env.inspect(cid))["State"]
    assert st["Status"] == "created" and st["ExitCode"] == 127 and st["Error"] == msg
    assert env.runtime.actions(cid)[-1] == "delete"
    # a wait now returns at once, with the error
    r = await env.client.post(f"/containers/{cid}/wait")
    assert await r.json() == {"Error": {"Message": msg}, "StatusCode": 127}


async def test_stop_a_stopped_one_is_304(env):
    cid = await env.create()
    assert (await env.client.post(f"/containers/{cid}/stop")).status == 304
    cid = await env.run(Cmd=["sh", "-c", "exit 0"])
    await env.wait_exited(cid)
    assert (await env.client.post(f"/containers/{cid}/stop")).status == 304


async def test_stop_sends_sigterm_then_reports_143(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    r = await env.client.post(f"/containers/{cid}/stop", params={"t": "5"})
    assert r.status == 204
    st = (await env.inspect(cid))["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 143 and st["Running"] is False
    assert ("kill", cid, 15) in env.runtime.calls


async def test_stop_escalates_to_sigkill(env):
    cid = await env.run(Cmd=["sh", "-c", "trap; sleep"])
    r = await env.client.post(f"/containers/{cid}/stop", params={"t": "0"})
    assert r.status == 204
    assert (await env.inspect(cid))["State"]["ExitCode"] == 137
    cid = await env.run(Cmd=["sh", "-c", "trap; sleep"], StopTimeout=0)
    assert (await env.client.post(f"/containers/{cid}/stop")).status == 204
    assert [c[2] for c in env.runtime.calls if c[:2] == ("kill", cid)] == [9]


async def test_kill(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    r = await env.client.post(f"/containers/{cid}/kill", params={"signal": "SIGUSR1"})
    assert r.status == 204
    info = await env.wait_exited(cid)
    assert info["State"]["ExitCode"] == 128 + 10


async def test_kill_a_stopped_one_is_409(env):
    cid = await env.create()
    r = await env.client.post(f"/containers/{cid}/kill")
    assert await error(r, 409) == f"Container {cid} is not running"


async def test_kill_bad_signal(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    r = await env.client.post(f"/containers/{cid}/kill", params={"signal": "NOPE"})
    assert await error(r, 400) == "Invalid signal: NOPE"
    await env.client.post(f"/containers/{cid}/kill")


async def test_restart(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    pid = (await env.inspect(cid))["State"]["Pid"]
    assert (await env.client.post(f"/containers/{cid}/restart", params={"t": "1"})).status == 204
    st = (await env.inspect(cid))["State"]
    assert st["Running"] and st["Pid"] != pid
    await env.client.post(f"/containers/{cid}/kill")


async def test_remove_running_without_force_is_409(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    r = await env.client.delete(f"/containers/{cid}")
    assert await error(r, 409) == (
        f"You cannot remove a running container {cid}. Stop the container before attempting removal or "
        "force remove")
    r = await env.client.delete(f"/containers/{cid}", params={"force": "1"})
    assert r.status == 204
    assert await error(await env.client.get(f"/containers/{cid}/json"), 404) == f"No such container: {cid}"
    assert not env.engine.store.dir(cid).exists()


async def test_remove_unknown_is_404(env):
    assert await error(await env.client.delete("/containers/ghost"), 404) == "No such container: ghost"


async def test_auto_remove(env):
    cid = await env.run(Cmd=["sh", "-c", "exit 2"], HostConfig={"AutoRemove": True})
    for _ in range(200):
        if (await env.client.get(f"/containers/{cid}/json")).status == 404:
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError("not removed")


# ---- wait ----------------------------------------------------------------------------------

async def test_wait_not_running_returns_at_once_for_a_created_container(env):
    cid = await env.create()
    for cond in ("", "not-running"):
        r = await asyncio.wait_for(env.client.post(f"/containers/{cid}/wait", params={"condition": cond}
                                                   if cond else {}), 2)
        assert r.status == 200
        assert await r.json() == {"Error": None, "StatusCode": 0}


async def test_wait_headers_arrive_before_the_exit(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    r = await asyncio.wait_for(env.client.post(f"/v1.41/containers/{cid}/wait"), 2)
    assert r.status == 200
    assert r.headers["Content-Type"] == JSON
    body = asyncio.ensure_future(r.read())
    await asyncio.sleep(0.05)
    assert not body.done()
    await env.client.post(f"/containers/{cid}/kill", params={"signal": "TERM"})
    assert json.loads(await asyncio.wait_for(body, 2)) == {"Error": None, "StatusCode": 143}


async def test_wait_next_exit_waits_even_for_a_stopped_one(env):
    cid = await env.create(Cmd=["sleep", "inf"])
    r = await asyncio.wait_for(env.client.post(f"/containers/{cid}/wait", params={"condition": "next-exit"}), 2)
    body = asyncio.ensure_future(r.read())
    await asyncio.sleep(0.02)
    assert not body.done()
    await env.client.post(f"/containers/{cid}/start")
    await env.client.post(f"/containers/{cid}/kill")
    assert json.loads(await asyncio.wait_for(body, 2))["StatusCode"] == 137


async def test_wait_removed(env):
    cid = await env.run(Cmd=["sh", "-c", "exit 4"])
    r = await asyncio.wait_for(env.client.post(f"/containers/{cid}/wait", params={"condition": "removed"}), 2)
    body = asyncio.ensure_future(r.read())
    await env.wait_exited(cid)
    await asyncio.sleep(0.02)
    assert not body.done()  # exited, not yet removed
    assert (await env.client.delete(f"/containers/{cid}")).status == 204
    assert json.loads(await asyncio.wait_for(body, 2)) == {"Error": None, "StatusCode": 4}


async def test_wait_bad_condition(env):
    cid = await env.create()
    r = await env.client.post(f"/containers/{cid}/wait", params={"condition": "soon"})
    await error(r, 400)


# ---- list ----------------------------------------------------------------------------------

async def test_list(env):
    a = await env.run("a-run", Cmd=["sleep", "inf"], Labels={"app": "x", "tier": "web"})
    b = await env.create("b-created", Labels={"app": "x"})
    c = await env.run("c-exit3", Cmd=["sh", "-c", "exit 3"])
    await env.wait_exited(c)

    async def names(**params):
        r = await env.client.get("/v1.41/containers/json", params=params)
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == JSON
        return [x["Names"][0] for x in await r.json()]

    assert await names() == ["/a-run"]
    assert sorted(await names(all="1")) == ["/a-run", "/b-created", "/c-exit3"]
    assert (await names(all="1"))[0] == "/c-exit3"  # newest first
    assert len(await names(limit="2")) == 2  # limit implies all
    assert await names(all="1", filters=json.dumps({"label": ["app=x"]})) == ["/b-created", "/a-run"]
    assert await names(all="1", filters=json.dumps({"label": {"tier": True}})) == ["/a-run"]
    assert await names(filters=json.dumps({"status": ["created"]})) == ["/b-created"]
    assert await names(filters=json.dumps({"exited": ["3"]})) == ["/c-exit3"]
    assert await names(all="1", filters=json.dumps({"name": ["b-cre"]})) == ["/b-created"]
    assert await names(all="1", filters=json.dumps({"id": [b[:10]]})) == ["/b-created"]
    assert len(await names(all="1", filters=json.dumps({"ancestor": ["busybox"]}))) == 3
    assert await names(all="1", filters=json.dumps({"ancestor": ["nope"]})) == []
    r = await env.client.get("/containers/json", params={"filters": json.dumps({"bogus": ["1"]})})
    assert await error(r, 400) == "invalid filter 'bogus'"
    await env.client.post(f"/containers/{a}/kill")


async def test_list_summary_fields(env):
    cid = await env.run("summ", Cmd=["sh", "-c", "exit 3"], Labels={"k": "v"})
    await env.wait_exited(cid)
    r = await env.client.get("/containers/json", params={"all": "true"})
    [s] = await r.json()
    assert s["Id"] == cid and s["Names"] == ["/summ"] and s["Image"] == "busybox"
    assert s["ImageID"] == env.images.get("busybox").id
    assert s["Command"] == "sh -c exit 3"
    assert s["State"] == "exited" and s["Status"].startswith("Exited (3) ")
    assert s["Labels"] == {"k": "v"} and s["Ports"] == [] and s["Mounts"] == []
    assert isinstance(s["Created"], int)


# ---- inspect -------------------------------------------------------------------------------

async def test_inspect_fields(env):
    cid = await env.create("insp", Env=["A=1"], Labels={"l": "1"}, Tty=True,
                           HostConfig={"Memory": 32 << 20, "NanoCpus": 500_000_000, "CpuShares": 256,
                                       "PidsLimit": 9})
    r = await env.client.get(f"/containers/{cid}/json")
    assert r.headers["Content-Type"] == JSON
    info = await r.json()
    assert info["Id"] == cid and info["Name"] == "/insp"
    assert info["Image"] == env.images.get("busybox").id
    st = info["State"]
    assert st == {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                  "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                  "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}
    cfg = info["Config"]
    assert cfg["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          f"HOSTNAME={cid[:12]}", "TERM=xterm", "A=1"]
    assert cfg["Image"] == "busybox" and cfg["Labels"] == {"l": "1"} and cfg["Tty"] is True
    assert cfg["Hostname"] == cid[:12]
    hc = info["HostConfig"]
    assert hc["Memory"] == 32 << 20 and hc["MemorySwap"] == 64 << 20
    assert hc["NanoCpus"] == 500_000_000 and hc["CpuShares"] == 256 and hc["PidsLimit"] == 9
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert info["Mounts"] == []
    assert info["NetworkSettings"]["Networks"] == {}
    assert info["LogPath"].endswith(f"{cid}-json.log")


async def test_inspect_config_cmd_is_the_images(env):
    cid = await env.create()
    cfg = (await env.inspect(cid))["Config"]
    assert cfg["Cmd"] == ["sh"] and cfg["Entrypoint"] is None


async def test_inspect_running_and_exited_state(env):
    cid = await env.run(Cmd=["sleep", "inf"])
    st = (await env.inspect(cid))["State"]
    assert st["Running"] is True and st["Status"] == "running" and st["Pid"] > 0
    assert st["StartedAt"] != "0001-01-01T00:00:00Z"
    await env.client.post(f"/containers/{cid}/kill")
    st = (await env.wait_exited(cid))["State"]
    assert st["Running"] is False and st["Pid"] == 0 and st["ExitCode"] == 137
    assert st["FinishedAt"] != "0001-01-01T00:00:00Z"


# ---- logs ----------------------------------------------------------------------------------

async def test_logs_framing_and_tail(env):
    cid = await env.run(Cmd=["sh", "-c", "echo one; echo oops >&2; echo two; exit 0"])
    await env.wait_exited(cid)
    r = await env.client.get(f"/v1.41/containers/{cid}/logs", params={"stdout": "1", "stderr": "1"})
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/vnd.docker.raw-stream"  # 1.41: always raw
    newest = await env.client.get(f"/containers/{cid}/logs", params={"stdout": "1", "stderr": "1"})
    assert newest.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"  # from 1.42, no TTY
    assert frames(await r.read()) == [(1, b"one\n"), (2, b"oops\n"), (1, b"two\n")]
    r = await env.client.get(f"/containers/{cid}/logs", params={"stdout": "1"})
    assert frames(await r.read()) == [(1, b"one\n"), (1, b"two\n")]
    r = await env.client.get(f"/containers/{cid}/logs", params={"stdout": "1", "stderr": "1", "tail": "1"})
    assert frames(await r.read()) == [(1, b"two\n")]
    r = await env.client.get(f"/containers/{cid}/logs", params={"stderr": "1", "timestamps": "1"})
    [(kind, data)] = frames(await r.read())
    assert kind == 2 and data.endswith(b"Z oops\n")


async def test_logs_tty_is_raw(env):
    cid = await env.run(Cmd=["sh", "-c", "echo hi; echo err >&2"], Tty=True)
    await env.wait_exited(cid)
    r = await env.client.get(f"/containers/{cid}/logs", params={"stdout": "1", "stderr": "1"})
    assert await r.read() == b"hi\nerr\n"


async def test_logs_need_a_stream(env):
    cid = await env.create()
    r = await env.client.get(f"/containers/{cid}/logs")
    assert await error(r, 400) == "Bad parameters: you must choose at least one stream"


async def test_logs_follow_ends_when_the_container_stops(env):
    cid = await env.run(Cmd=["sh", "-c", "echo up; sleep"])
    r = await env.client.get(f"/containers/{cid}/logs", params={"stdout": "1", "follow": "1"})
    assert r.status == 200
    body = asyncio.ensure_future(r.read())
    await asyncio.sleep(0.1)
    assert not body.done()
    await env.client.post(f"/containers/{cid}/kill")
    assert frames(await asyncio.wait_for(body, 3)) == [(1, b"up\n")]


# ---- attach (a client that does not upgrade gets a one-way body) ---------------------------

async def test_attach_before_start_gets_the_first_bytes(env):
    cid = await env.create(Cmd=["sh", "-c", "echo first; echo second >&2; exit 0"])
    r = asyncio.ensure_future(env.client.post(f"/containers/{cid}/attach",
                                              params={"stream": "1", "stdout": "1", "stderr": "1"}))
    await asyncio.sleep(0.05)
    assert (await env.client.post(f"/containers/{cid}/start")).status == 204
    resp = await asyncio.wait_for(r, 2)
    assert resp.status == 200
    assert frames(await asyncio.wait_for(resp.read(), 2)) == [(1, b"first\n"), (2, b"second\n")]
