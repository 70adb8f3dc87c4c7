"""A local volume's options checked at create with dockerd's status and wording
(daemon/volume/local/local_unix.go validateOpts, wrapped as `create NAME: ...` by its volume store)."""

from __future__ import annotations

import pytest

from servin.core.volumeopts import ram_in_bytes
from servin.errors import InvalidArgument


@pytest.mark.parametrize(("opts", "message"), [
    ({"foo": "bar"}, 'create vol: invalid option: "foo"'),
    ({"device": "/x"}, 'create vol: missing required option: "type"'),
    ({"type": "tmpfs"}, 'create vol: missing required option: "device"'),
    ({"o": "size=1m"}, 'create vol: missing required option: "device"'),
    ({"o": "bind", "device": "/x"}, 'create vol: missing required option: "type"'),
    ({"size": "10m"}, "create vol: quota size requested but no quota support"),
    ({"size": "abc"}, "create vol: invalid size: 'abc'"),
    ({"size": "10x"}, "create vol: invalid suffix: 'x'"),
    ({"type": "cifs", "device": "//host:445/share"},
     "create vol: port not allowed in CIFS device URL, include 'port' in 'o='"),
])
async def test_refused_options(env, opts: dict[str, str], message: str) -> None:
    r = await env.client.post("/volumes/create", json={"Name": "vol", "DriverOpts": opts})
    assert r.status == 400
    assert (await r.json())["message"] == message
    r = await env.client.get("/volumes/vol")
    assert r.status == 404  # nothing left behind


@pytest.mark.parametrize("opts", [
    {"size": "0"},
    {"size": "1e308p"}, {"size": "1e300"},  # beyond int64: Go's int64() on amd64 is MinInt64, no quota asked
    {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, {"type": "cifs", "device": "//host/share"},
    {"type": "none", "device": ""},  # refused at mount time: missing device in volume options
])
async def test_accepted_options(env, opts: dict[str, str]) -> None:
    r = await env.client.post("/volumes/create", json={"Name": "vol", "DriverOpts": opts})
    assert r.status == 201, await r.text()
    assert (await r.json())["Options"] == opts


async def test_existing_name_is_returned_whatever_the_options(env) -> None:
    assert (await env.client.post("/volumes/create", json={"Name": "vol"})).status == 201
    r = await env.client.post("/volumes/create", json={"Name": "vol", "DriverOpts": {"foo": "bar"}})
    assert r.status == 201


@pytest.mark.parametrize(("text", "size"), [("0", 0), ("10", 10), ("1k", 1024), ("1.5 KiB", 1536), ("2mb", 2 << 20),
                                            ("3b", 3), ("1G", 1 << 30), ("1e308p", -(1 << 63)),
                                            ("9.3e18", -(1 << 63))])
def test_ram_in_bytes(text: str, size: int) -> None:
    assert ram_in_bytes(text) == size


@pytest.mark.parametrize(("text", "message"), [("", "invalid size: ''"), ("-1", "invalid size: '-1'"),
                                               ("1..2", 'strconv.ParseFloat: parsing "1..2": invalid syntax'),
                                               ("1kbb", "invalid suffix: 'kbb'"), ("1bit", "invalid suffix: 'bit'"),
                                               ("1e309k", 'strconv.ParseFloat: parsing "1e309": value out of range')])
def test_ram_in_bytes_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        ram_in_bytes(text)
    assert exc.value.message == message
