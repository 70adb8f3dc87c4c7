"""Nothing accepted and dropped: every field of the v1.41 create body is honoured or refused
(servin/api/wire/fields.py). The swagger is walked, so a field added to the tables' source of
truth without a decision fails here; each refused field's sample is posted and refused, naming it;
the zero values the docker CLI sends on every call are accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import servin.api.app
import servin.api.wire.system
from servin.api.wire import fields, versions
from tests.api.helpers import error

SWAGGER = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "docker-api-v1.41.yaml"
FIELDS = Path(__file__).with_name("data") / "create_fields_v1.41.json"  # the swagger's, kept here for CI
CREATE = "/v1.41/containers/create"
STRUCTS = ("ContainerConfig", "HostConfig", "EndpointSettings", "EndpointIPAMConfig")


def swagger_fields(definitions: dict[str, Any], name: str) -> set[str]:
    d = definitions[name]
    out = set(d.get("properties", {}))
    for part in d.get("allOf", ()):
        if "$ref" in part:
            out |= swagger_fields(definitions, part["$ref"].rsplit("/", 1)[1])
        out |= set(part.get("properties", {}))
    return out


@pytest.fixture(scope="module")
def definitions() -> dict[str, set[str]]:
    """Each struct's field names, from the swagger where it is at hand (and the copy checked against
    it), else from the copy."""
    kept = {k: set(v) for k, v in json.loads(FIELDS.read_text()).items() if not k.startswith("_")}
    if SWAGGER.exists():
        swagger = yaml.safe_load(SWAGGER.read_text())["definitions"]
        assert {k: swagger_fields(swagger, k) for k in kept} == kept, f"{FIELDS} is behind the swagger"
    return kept


@pytest.mark.parametrize("struct", STRUCTS)
def test_every_field_is_honoured_or_refused(definitions: dict[str, set[str]], struct: str) -> None:
    honoured, refused = fields.HONOURED.get(struct, frozenset()), set(fields.refused(struct))
    assert not honoured & refused
    swagger = definitions[struct]
    assert swagger - honoured - refused == set(), "fields with no decision"
    assert (honoured | refused) - swagger == set(), "fields the swagger does not have"


def body_with(struct: str, name: str, value: Any) -> dict[str, Any]:  # noqa: ANN401
    body: dict[str, Any] = {"Image": "busybox", "Cmd": ["true"]}
    if struct == "ContainerConfig":
        body[name] = value
    elif struct == "HostConfig":
        body["HostConfig"] = {name: value}
    else:
        settings = {name: value} if struct == "EndpointSettings" else {"IPAMConfig": {name: value}}
        body["HostConfig"] = {"NetworkMode": "bridge"}
        body["NetworkingConfig"] = {"EndpointsConfig": {"bridge": settings}}
    return body


REFUSALS = [(s, n, r) for s in STRUCTS for n, r in sorted(fields.refused(s).items())]


@pytest.mark.parametrize(("struct", "name", "refusal"), REFUSALS, ids=[f"{s}.{n}" for s, n, _ in REFUSALS])
async def test_a_refused_field_with_a_value_is_refused_by_name(env, struct: str, name: str,
                                                               refusal: fields.Refusal) -> None:
    r = await env.client.post(CREATE, json=body_with(struct, name, refusal.sample))
    assert r.status in (400, 500, 501), await r.text()  # 501: IPv6, not built yet
    assert refusal.says in await error(r, r.status)


@pytest.mark.parametrize(("struct", "name", "refusal"), REFUSALS, ids=[f"{s}.{n}" for s, n, _ in REFUSALS])
async def test_the_zero_value_of_a_refused_field_is_accepted(env, struct: str, name: str,
                                                             refusal: fields.Refusal) -> None:
    zero = type(refusal.sample)()
    r = await env.client.post(CREATE, json=body_with(struct, name, zero))
    assert r.status == 201, await r.text()


async def test_isolation_takes_only_its_linux_values(env) -> None:
    for value in ("", "default"):
        r = await env.client.post(CREATE, json=body_with("HostConfig", "Isolation", value))
        assert r.status == 201, await r.text()
    r = await env.client.post(CREATE, json=body_with("HostConfig", "Isolation", "hyperv"))
    assert await error(r, 400) == "invalid isolation: \"hyperv\" - linux only supports 'default'"


async def test_a_volume_driver_is_kept_and_used_for_the_volumes_a_container_makes(env) -> None:
    """As dockerd: stored as given; only a volume made with it needs the plugin (docker-py's suite
    creates a container with VolumeDriver "foo" and no volume)."""
    r = await env.client.post(CREATE, json=body_with("HostConfig", "VolumeDriver", "foo"))
    assert r.status == 201, await r.text()
    assert (await env.inspect((await r.json())["Id"]))["HostConfig"]["VolumeDriver"] == "foo"
    body = body_with("HostConfig", "VolumeDriver", "foo")
    body["Volumes"] = {"/data": {}}
    r = await env.client.post(CREATE, json=body)
    assert await error(r, 404) == 'error looking up volume plugin foo: plugin "foo" not found'


async def test_console_size_and_cidfile_are_kept(env, monkeypatch: pytest.MonkeyPatch) -> None:
    # HostConfig.ConsoleSize is read from API 1.42 on (below, dockerd forces [0, 0]: versions.py)
    monkeypatch.setattr(versions, "MAX_VERSION", (1, 42))
    for module in (servin.api.app, servin.api.wire.system):
        monkeypatch.setattr(module, "API_VERSION", "1.42", raising=False)
    body = {"Image": "busybox", "Cmd": ["true"], "Tty": True,
            "HostConfig": {"ConsoleSize": [33, 101], "ContainerIDFile": "/tmp/cid"}}
    r = await env.client.post(CREATE.replace("v1.41", "v1.42"), json=body)
    assert r.status == 201, await r.text()
    cid = (await r.json())["Id"]
    info = await env.inspect(cid)
    assert info["HostConfig"]["ConsoleSize"] == [33, 101]
    assert info["HostConfig"]["ContainerIDFile"] == "/tmp/cid"
    r = await env.client.post(CREATE.replace("v1.41", "v1.42"), json={**body, "HostConfig": {"ConsoleSize": [1, 2, 3]}})
    assert "invalid ConsoleSize" in await error(r, 400)


def test_every_update_field_is_changed_or_refused(definitions: dict[str, set[str]]) -> None:
    """`docker update` takes Resources and RestartPolicy: each is changed live or refused by name."""
    from servin.api.wire import resources

    swagger = definitions["Resources"] | {"RestartPolicy"}
    assert swagger - resources.UPDATABLE - resources.NOT_UPDATABLE == set()


async def test_an_update_of_a_field_it_cannot_change_is_refused_by_name(env) -> None:
    cid = await env.create()
    r = await env.client.post(f"/v1.41/containers/{cid}/update", json={"OomKillDisable": True})
    assert await error(r, 400) == "OomKillDisable cannot be changed by docker update; create a new container"
    r = await env.client.post(f"/v1.41/containers/{cid}/update", json={"Memory": 64 << 20, "MemorySwap": -1})
    assert r.status == 200, await r.text()

