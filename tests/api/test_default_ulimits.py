"""The daemon's default-ulimits through the API: each container started gets those it does not set
itself in its spec's rlimits, inspect shows them merged into HostConfig.Ulimits (as dockerd's
getInspectData), and a change (a reload) holds for containers started afterwards."""

from __future__ import annotations

import json
from typing import Any

from servin.core.model import Ulimit

NOFILE = Ulimit(name="nofile", soft=1024, hard=2048)
CORE = Ulimit(name="core", soft=0, hard=0)


def rlimits(env: Any, cid: str) -> list[dict[str, Any]]:
    spec = json.loads((env.engine.store.dir(cid) / "config.json").read_text())
    return list(spec["process"].get("rlimits", []))


async def test_defaults_fill_in_what_the_container_does_not_set(env: Any) -> None:
    env.engine.set_default_ulimits((CORE, NOFILE))
    plain = await env.run(Cmd=["true"])
    assert rlimits(env, plain) == [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                                   {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}]
    own = await env.run(Cmd=["true"], HostConfig={"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]})
    assert rlimits(env, own) == [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                                 {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    assert (await env.inspect(own))["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200},
                                                                 {"Name": "core", "Soft": 0, "Hard": 0}]


async def test_a_change_holds_for_containers_started_afterwards(env: Any) -> None:
    before = await env.run(Cmd=["true"])
    assert rlimits(env, before) == []
    assert (await env.inspect(before))["HostConfig"]["Ulimits"] is None
    env.engine.set_default_ulimits((NOFILE,))
    after = await env.run(Cmd=["true"])
    assert rlimits(env, after) == [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}]
    assert rlimits(env, before) == []  # its spec was written at its start
    # the stored HostConfig stays the container's own: inspect merges the daemon's current defaults
    stored = env.engine.store.get(after)
    assert stored is not None and stored.host_config.ulimits == ()
    assert (await env.inspect(after))["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
