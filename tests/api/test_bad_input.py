"""Malformed requests get Docker's 4xx answers: never a 500 carrying a Python exception."""

from __future__ import annotations

import pytest

from servin.api.app import INTERNAL_ERROR
from tests.api.helpers import error

BAD_BODIES = [b"not json", b"[]", b'"str"', b"123", b"null", b'{"Image": 5}', b'{"Image": "busybox", "Cmd": 5}',
              b'{"Image": "busybox", "HostConfig": []}', b'{"Image": "busybox", "HostConfig": {"Memory": "x"}}',
              b'{"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": "x"}}}',
              b'{"Image": "busybox", "HostConfig": {"Binds": "x"}}', b'{"Image": "busybox", "Env": "A=1"}',
              b'{"Image": "busybox", "ExposedPorts": []}', b'{"Image": "busybox", "Labels": []}',
              b'{"Image": "busybox", "HostConfig": {"RestartPolicy": "always"}}',
              b'{"Image": "busybox", "HostConfig": {"Ulimits": [5]}}',
              b'{"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "nope"}]}}',
              b'{"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": []}}',
              b'{"Image": "busybox", "Healthcheck": {"Test": 5}}', b'{"Image": "busybox", "StopTimeout": "x"}']

PATHS = ["/v1.41/containers/create", "/v1.41/volumes/create", "/v1.41/networks/create",
         "/v1.41/containers/{cid}/exec", "/v1.41/containers/{cid}/update", "/v1.41/commit?container={cid}",
         "/v1.41/exec/nosuch/start", "/v1.41/networks/bridge/connect", "/v1.41/networks/bridge/disconnect"]


@pytest.mark.parametrize("path", PATHS)
async def test_malformed_bodies_are_client_errors(env, path):
    cid = await env.create()
    failures = []
    for body in BAD_BODIES:
        r = await env.client.post(path.format(cid=cid), data=body, headers={"Content-Type": "application/json"})
        if r.status >= 500:
            failures.append((body, r.status, await r.text()))
    assert failures == [], "\n".join(map(repr, failures))


@pytest.mark.parametrize("body", [
    None, [], {"Name": "n", "IPAM": [1]}, {"Name": "n", "IPAM": {"Config": {"Subnet": "x"}}},
    {"Name": "n", "IPAM": {"Config": [5]}}, {"Name": "n", "Labels": ["a"]}, {"Name": "n", "Options": "x"},
    {"Name": "n", "IPAM": {"Config": [{"AuxiliaryAddresses": ["x"]}]}}, {"Name": "n", "IPAM": {"Options": []}},
])
def test_network_create_bodies_of_the_wrong_shape_are_400(body):
    from servin import errors
    from servin.api.wire.networks import parse_create

    with pytest.raises(errors.InvalidArgument):
        parse_create(body)


def test_network_create_body_as_create_network_takes_it():
    from servin.api.wire.networks import parse_create

    req = parse_create({"Name": "app", "Internal": True, "Labels": {"a": "b"},
                        "IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254"}], "Options": None}})
    assert req == {"name": "app", "subnet": "10.9.0.0/24", "gateway": "10.9.0.254", "ip_range": None,
                   "aux_addresses": {}, "ipam_options": None, "internal": True, "attachable": False,
                   "labels": {"a": "b"}, "options": {}, "enable_ipv4": True, "enable_ipv6": False, "subnet6": None,
                   "gateway6": None, "ip_range6": None}


BAD_QUERIES = [
    ("POST", "/v1.41/containers/{cid}/stop?t=abc"), ("POST", "/v1.41/containers/{cid}/restart?t=1.5x"),
    ("POST", "/v1.41/containers/{cid}/kill?signal=NOPE"), ("POST", "/v1.41/containers/{cid}/kill?signal=99999"),
    ("GET", "/v1.41/containers/{cid}/logs?stdout=1&tail=abc"), ("GET", "/v1.41/containers/{cid}/logs?stdout=1&since=x"),
    ("POST", "/v1.41/containers/{cid}/resize?h=x&w=y"), ("POST", "/v1.41/containers/{cid}/wait?condition=nope"),
    ("GET", "/v1.41/containers/json?filters=notjson"), ("GET", "/v1.41/containers/json?filters=[1]"),
    ("GET", "/v1.41/containers/json?limit=x"), ("GET", "/v1.41/images/json?filters={{\"since\":[\"nope\"]}}"),
    ("GET", "/v1.41/events?since=x&until=1"), ("GET", "/v1.41/events?filters=notjson&until=1"),
    ("POST", "/v1.41/containers/prune?filters={{\"until\":[\"x\"]}}"), ("POST", "/v1.41/images/prune?filters=x"),
    ("GET", "/v1.41/volumes?filters=x"), ("GET", "/v1.41/networks?filters=x"),
    ("GET", "/v1.41/containers/{cid}/archive?path="), ("PUT", "/v1.41/containers/{cid}/archive?path=/tmp"),
    ("GET", "/v1.41/containers/{cid}/top?ps_args=--nope"), ("POST", "/v1.41/containers/{cid}/rename?name=!bad"),
    ("POST", "/v1.41/images/busybox/tag?repo=UPPER&tag=x"), ("POST", "/v1.41/images/busybox/tag?repo=ok&tag=bad:tag"),
    ("GET", "/v1.41/images/get?names="), ("POST", "/v1.41/images/create?fromImage=UPPER/Case"),
]


@pytest.mark.parametrize(("method", "path"), BAD_QUERIES)
async def test_bad_query_values_are_client_errors(env, method, path):
    cid = await env.run()
    r = await env.client.request(method, path.format(cid=cid), data=b"")
    text = await r.text()
    assert INTERNAL_ERROR not in text, (r.status, text)  # a 500 from a bug, not a SystemError_


async def test_an_unexpected_exception_is_a_generic_500(env, monkeypatch, caplog):
    """A bug answers 500 with a generic message; its Python text (a RecursionError, a host path)
    goes to the daemon's log only."""
    cid = await env.create()

    def boom(*_a, **_k):
        raise RecursionError("maximum recursion depth exceeded in /var/lib/servin/containers")

    monkeypatch.setattr(env.engine.store, "delete", boom)
    r = await env.client.delete(f"/v1.41/containers/{cid}")
    assert r.status == 500
    assert r.headers["Content-Type"] == "application/json"
    assert await r.json() == {"message": INTERNAL_ERROR, "code": "INTERNAL_ERROR"}
    assert "RecursionError" in caplog.text and "/var/lib/servin" in caplog.text


# ---- a wrong JSON type is Go's error, a 400 (dockerd v28.2.2 routes, Go 1.24's encoding/json) ------

GO = "invalid JSON: json: cannot unmarshal "

WRONG_TYPES = [
    ("/v1.41/volumes/create", {"Name": 5}, GO + "number into Go struct field CreateOptions.Name of type string"),
    ("/v1.41/volumes/create", {"Labels": []},
     GO + "array into Go struct field CreateOptions.Labels of type map[string]string"),
    ("/v1.41/volumes/create", {"DriverOpts": {"a": 1}},
     GO + "number into Go struct field CreateOptions.DriverOpts of type string"),
    ("/v1.41/volumes/create", [], GO + "array into Go value of type volume.CreateOptions"),
    ("/v1.41/volumes/create", "x", GO + "string into Go value of type volume.CreateOptions"),
    ("/v1.41/containers/create", {"Image": 5},
     GO + "number into Go struct field CreateRequest.Config.Image of type string"),
    ("/v1.41/containers/create", {"Image": "busybox", "HostConfig": {"Binds": "x"}},
     GO + "string into Go struct field HostConfig.HostConfig.Binds of type []string"),
    ("/v1.41/containers/create", [1], GO + "array into Go value of type container.CreateRequest"),
    ("/v1.41/networks/create", {"Name": 5}, GO + "number into Go struct field CreateRequest.Name of type string"),
    ("/v1.41/networks/create", {"Name": "n", "Labels": []},
     GO + "array into Go struct field CreateRequest.CreateOptions.Labels of type map[string]string"),
    ("/v1.41/networks/create", {"Name": "n", "IPAM": {"Config": [5]}},
     GO + "number into Go struct field IPAM.CreateOptions.IPAM.Config of type network.IPAMConfig"),
    ("/v1.41/networks/create", 1, GO + "number into Go value of type network.CreateRequest"),
    ("/v1.41/networks/bridge/connect", {"Container": 5},
     GO + "number into Go struct field ConnectOptions.Container of type string"),
    ("/v1.41/networks/bridge/connect", {"Container": "x", "EndpointConfig": {"Aliases": "a"}},
     GO + "string into Go struct field EndpointSettings.EndpointConfig.Aliases of type []string"),
    ("/v1.41/networks/bridge/disconnect", {"Container": "x", "Force": "yes"},
     GO + "string into Go struct field DisconnectOptions.Force of type bool"),
    ("/v1.41/containers/{cid}/exec", {"Cmd": "ls"},
     GO + "string into Go struct field ExecOptions.Cmd of type []string"),
    ("/v1.41/containers/{cid}/exec", True, GO + "bool into Go value of type container.ExecOptions"),
    ("/v1.41/exec/nosuch/start", {"Detach": "yes"},
     GO + "string into Go struct field ExecStartOptions.Detach of type bool"),
    ("/v1.41/containers/{cid}/update", {"Memory": "1g"},
     GO + "string into Go struct field UpdateConfig.Resources.Memory of type int64"),
    ("/v1.41/containers/{cid}/update", {"RestartPolicy": {"MaximumRetryCount": "3"}},
     GO + "string into Go struct field RestartPolicy.RestartPolicy.MaximumRetryCount of type int"),
    ("/v1.41/commit?container={cid}", {"Cmd": 5},
     GO + "number into Go struct field CreateRequest.Config.Cmd of type string"),
    ("/v1.41/commit?container={cid}", [], GO + "array into Go value of type container.CreateRequest"),
    ("/v1.41/auth", {"username": 5},
     "json: cannot unmarshal number into Go struct field AuthConfig.username of type string"),
]


@pytest.mark.parametrize(("path", "body", "message"), WRONG_TYPES)
async def test_a_wrong_json_type_is_go_s_400(env, path, body, message):
    cid = await env.create()
    r = await env.client.post(path.format(cid=cid), json=body)
    assert await error(r, 400) == message


async def test_volume_create_null_values_and_a_null_body_are_go_s_zero_values(env):
    r = await env.client.post("/v1.41/volumes/create", json={"Name": None, "Labels": None, "DriverOpts": None})
    assert r.status == 201, await r.text()
    assert len((await r.json())["Name"]) == 64
    r = await env.client.post("/v1.41/volumes/create", data=b"null", headers={"Content-Type": "application/json"})
    assert r.status == 201, await r.text()
    r = await env.client.post("/v1.41/volumes/create", json={"name": "lower", "labels": {"a": None}})
    assert r.status == 201, await r.text()
    assert (await r.json())["Labels"] == {"a": ""} and (await r.json())["Name"] == "lower"


async def test_volume_create_answers_null_labels_and_options_when_none_were_given(env):
    # dockerd 20.10: {"Labels":null,...,"Options":null} for `{}`, the labels when given
    r = await env.client.post("/v1.41/volumes/create", json={})
    body = await r.json()
    assert r.status == 201 and body["Labels"] is None and body["Options"] is None
    r = await env.client.post("/v1.41/volumes/create", json={"Name": "v2", "Labels": {"a": "b"}})
    body = await r.json()
    assert body["Labels"] == {"a": "b"} and body["Options"] is None
    r = await env.client.get("/v1.41/volumes/v2")
    assert (await r.json())["Labels"] == {"a": "b"} and (await r.json())["Options"] is None


async def test_connect_and_disconnect_without_a_container_are_dockerd_s_400(env):
    for path in ("/v1.41/networks/bridge/connect", "/v1.41/networks/bridge/disconnect"):
        r = await env.client.post(path, json={})
        assert await error(r, 400) == 'invalid name or ID supplied: ""'


# ---- names: dockerd's patterns, nothing after them --------------------------------------------

CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "//abc", "abc\x00"])
async def test_container_names_with_anything_after_the_pattern_are_refused(env, name):
    r = await env.client.post("/v1.41/containers/create", params={"name": name}, json={"Image": "busybox"})
    assert await error(r, 400) == f"Invalid container name ({name}), only {CHARS} are allowed"


async def test_a_leading_slash_is_not_part_of_the_name(env):
    cid = await env.create("/slashed")
    assert (await env.inspect("slashed"))["Id"] == cid


async def test_rename_refuses_as_dockerd_after_adding_the_slash(env):
    cid = await env.create("first")
    await env.create("second")
    r = await env.client.post(f"/v1.41/containers/{cid}/rename", params={"name": "abc\n"})
    assert await error(r, 400) == (
        f"Error when allocating new name: Invalid container name (/abc\n), only {CHARS} are allowed")
    r = await env.client.post(f"/v1.41/containers/{cid}/rename", params={"name": "second"})
    second = (await env.inspect("second"))["Id"]
    assert await error(r, 409) == (
        f'Error when allocating new name: Conflict. The container name "/second" is already in use by container '
        f'"{second}". You have to remove (or rename) that container to be able to reuse that name.')
    r = await env.client.post(f"/v1.41/containers/{cid}/rename", params={"name": "/first"})
    assert await error(r, 400) == "Renaming a container with the same name as its current name"
    r = await env.client.post("/v1.41/containers/nosuch/rename", params={"name": ""})
    assert await error(r, 400) == "Neither old nor new names may be empty"
    r = await env.client.post(f"/v1.41/containers/{cid}/rename", params={"name": "/renamed"})
    assert r.status == 204, await r.text()
    assert (await env.inspect(cid))["Name"] == "/renamed"


@pytest.mark.parametrize(("name", "shown"), [("abc\n", '"abc\\n"'), ("a b", '"a b"'), ("../x", '"../x"')])
async def test_volume_names_with_anything_after_the_pattern_are_refused(env, name, shown):
    r = await env.client.post("/v1.41/volumes/create", json={"Name": name})
    assert await error(r, 400) == (
        f"create {name}: {shown} includes invalid characters for a local volume name, only \"{CHARS}\" are "
        "allowed. If you intended to pass a host directory, use absolute path")
    assert not any(p.name.startswith(name[:2]) for p in (env.tmp / "volumes").iterdir())


async def test_a_bind_of_a_bad_volume_name_is_refused_at_create(env):
    r = await env.client.post("/v1.41/containers/create",
                              json={"Image": "busybox", "HostConfig": {"Binds": ["abc\n:/data"]}})
    assert r.status == 400 and "includes invalid characters for a local volume name" in await r.text()


async def test_a_one_character_volume_name_is_too_short(env):
    r = await env.client.post("/v1.41/volumes/create", json={"Name": "a"})
    assert await error(r, 400) == ("create a: volume name is too short, names should be at least two "
                                   "alphanumeric characters")


@pytest.mark.parametrize("body", [{}, {"Name": ""}, {"Name": " \t"}, None])
async def test_a_blank_network_name_is_libnetwork_s_400(env, body):
    r = await env.client.post("/v1.41/networks/create", json=body)
    assert await error(r, 400) == "invalid name: name is empty"


# ---- uids and gids: moby/sys/user's range ---------------------------------------------------------

@pytest.mark.parametrize("body", [{"User": "4294967295"}, {"User": "4294967296"}, {"User": "-1"},
                                  {"User": "0:4294967296"}, {"HostConfig": {"GroupAdd": ["4294967296"]}}])
async def test_ids_out_of_range_are_refused_at_start(env, body):
    cid = await env.create(**body)
    r = await env.client.post(f"/v1.41/containers/{cid}/start")
    assert await error(r, 400) == "uids and gids must be in range 0-2147483647"
    assert "create" not in env.runtime.actions(cid) and cid not in env.runtime.specs


@pytest.mark.parametrize(("extra", "says"), [
    ({"Scope": "swarm"}, "network scope 'swarm' is not supported by Servin"),
    ({"Ingress": True}, "Ingress networks are not supported by Servin"),
    ({"ConfigOnly": True}, "ConfigOnly networks are not supported by Servin"),
])
async def test_network_create_options_servin_lacks_are_refused_by_name(env, extra, says):
    r = await env.client.post("/v1.41/networks/create", json={"Name": "n1", **extra})
    assert says in await error(r, 501)


@pytest.mark.parametrize("subnets", [["172.31.1.0/24", "172.31.2.0/24"], ["fd00:1::/64", "fd00:2::/64"]])
async def test_two_pools_of_one_family_are_dockerd_s_bridge_403(env, subnets):
    r = await env.client.post("/v1.41/networks/create", json={
        "Name": "n2", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": s} for s in subnets]}})
    assert await error(r, 403) == "bridge driver doesn't support multiple subnets"
