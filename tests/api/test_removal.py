"""A removal that fails part way leaves the container dead, to be removed again (dockerd's SetDead)."""

from __future__ import annotations

from servin.core.model import Status


async def test_a_removal_that_fails_leaves_the_container_dead_and_removable(env, monkeypatch) -> None:
    cid = await env.create()
    real = env.engine.store.delete

    def fail_once(container_id: str):  # noqa: ANN202
        monkeypatch.setattr(env.engine.store, "delete", real)
        raise OSError("the disk is on fire")

    monkeypatch.setattr(env.engine.store, "delete", fail_once)
    r = await env.client.delete(f"/v1.41/containers/{cid}")
    assert r.status == 500
    state = (await env.inspect(cid))["State"]
    assert state["Status"] == "dead" and state["Dead"] is True
    r = await env.client.post(f"/v1.41/containers/{cid}/start")
    assert r.status == 409
    assert (await r.json())["message"] == f"container {cid} is marked for removal and cannot be started"
    r = await env.client.delete(f"/v1.41/containers/{cid}")
    assert r.status == 204
    r = await env.client.get(f"/v1.41/containers/{cid}/json")
    assert r.status == 404


async def test_a_removal_the_daemon_died_in_is_dead_at_restore(env) -> None:
    cid = await env.create()
    await env.engine.store.save(env.engine.store.get(cid).with_state(status=Status.REMOVING))
    await env.engine.restore()
    assert (await env.inspect(cid))["State"]["Status"] == "dead"
    r = await env.client.delete(f"/v1.41/containers/{cid}")
    assert r.status == 204


async def test_force_removal_of_a_container_its_policy_would_restart(env) -> None:
    cid = await env.run(Cmd=["sleep", "100"],
                        HostConfig={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    r = await env.client.delete(f"/v1.41/containers/{cid}?force=1")
    assert r.status == 204, await r.text()
    r = await env.client.get(f"/v1.41/containers/{cid}/json")
    assert r.status == 404
