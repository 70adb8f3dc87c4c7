"""Malformed requests get Docker's 4xx answers: never a 500 carrying a Python exception."""

from __future__ import annotations

import pytest

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
         "/v1.41/containers/{cid}/exec", "/v1.41/containers/{cid}/update", "/v1.41/commit?container={cid}"]


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
                   "labels": {"a": "b"}, "options": {}}


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
    assert r.status < 500 or "Error" not in text, (r.status, text)
