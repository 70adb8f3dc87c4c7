"""Paths inside the container from an image config or a request: cleaned inside the container's
root as dockerd does, refused where dockerd refuses them, with its words, and never a host path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from servin.images import reference as refs
from tests.api.helpers import error

ESCAPE = "/" + "../" * 40


def hostile_image(env, name: str, **config) -> str:
    """busybox's layers under a config of our own (the way an attacker publishes one)."""
    cfg = json.loads(env.images.config_raw("busybox"))
    cfg["config"] = {**(cfg.get("config") or {}), **config}
    env.images.add_image(json.dumps(cfg).encode(), refs.parse_normalized(name))
    return name


def host_tree(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in ["", *dirnames, *filenames]:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_ctime_ns,
                      Path(p).read_bytes() if os.path.isfile(p) and not os.path.islink(p) else None)
    return out


@pytest.fixture
def marker(tmp_path: Path):
    m = tmp_path / "host" / "marker"
    m.mkdir(parents=True)
    (m / "secret").write_bytes(b"host secret\n")
    (m / "secret").chmod(0o600)
    before = host_tree(m.parent)
    yield m
    assert host_tree(m.parent) == before, "the host marker was changed"


# ---- WorkingDir -----------------------------------------------------------------------------------

async def test_relative_working_dir_is_refused(env):
    r = await env.client.post("/containers/create", json={"Image": "busybox", "WorkingDir": "srv/app"})
    assert await error(r, 400) == "the working directory 'srv/app' is invalid, it needs to be an absolute path"


async def test_working_dir_is_cleaned(env):
    cid = await env.run(Cmd=["true"], WorkingDir="/srv/../app//x/")
    assert (await env.inspect(cid))["Config"]["WorkingDir"] == "/app/x"
    assert env.runtime.specs[cid]["process"]["cwd"] == "/app/x"


async def test_image_working_dir_never_makes_a_host_dir(env, tmp_path, marker):
    target = marker.parent / "made-by-workdir"
    image = hostile_image(env, "hostile-wd:1", WorkingDir=ESCAPE + str(target).lstrip("/"))
    cid = await env.run(Image=image, Cmd=["true"])
    assert not target.exists()
    assert env.runtime.specs[cid]["process"]["cwd"] == str(target)  # the container's path of that name
    assert list((env.engine.store.dir(cid) / "upper").iterdir()) == []  # made by the supervisor, inside


async def test_image_working_dir_relative_is_under_the_root(env):
    image = hostile_image(env, "rel-wd:1", WorkingDir="app")
    cid = await env.create(Image=image, Cmd=["true"])
    await env.client.post(f"/containers/{cid}/start")
    assert env.runtime.specs[cid]["process"]["cwd"] == "/app"


# ---- Volumes --------------------------------------------------------------------------------------

async def test_image_volume_with_dotdot_is_a_container_path(env, marker):
    image = hostile_image(env, "hostile-vol:1", Volumes={ESCAPE + str(marker).lstrip("/"): {}})
    cid = await env.run(Image=image, Cmd=["true"])
    [mount] = (await env.inspect(cid))["Mounts"]
    assert mount["Destination"] == str(marker)
    assert os.listdir(mount["Source"]) == []  # the image has nothing there; the host's marker is not read


async def test_image_volume_content_is_copied_from_the_cleaned_path(env):
    image = hostile_image(env, "etc-vol:1", Volumes={"/../../etc/": {}})
    cid = await env.run(Image=image, Cmd=["true"])
    [mount] = (await env.inspect(cid))["Mounts"]
    assert mount["Destination"] == "/etc"
    assert (Path(mount["Source"]) / "passwd").read_bytes() == env.images.read_file("busybox", "/etc/passwd")


@pytest.mark.parametrize("spec", ["/", "/..", "//", "/./"])
async def test_volume_on_the_root_is_refused(env, spec):
    image = hostile_image(env, "root-vol:1", Volumes={spec: {}})
    r = await env.client.post("/containers/create", json={"Image": image})
    assert await error(r, 400) == (f"invalid volume specification: '{spec}': invalid mount config for type "
                                   "\"volume\": invalid specification: destination can't be '/'")
    r = await env.client.post("/containers/create", json={"Image": "busybox", "Volumes": {spec: {}}})
    assert r.status == 400


async def test_request_volume_is_cleaned(env):
    cid = await env.create(Volumes={"/data/../srv//x/": {}})
    assert [m["Destination"] for m in (await env.inspect(cid))["Mounts"]] == ["/srv/x"]


# ---- Binds, Mounts, Tmpfs -------------------------------------------------------------------------

BAD_DESTINATIONS = [
    ({"Binds": ["vol:/"]},
     "invalid volume specification: 'vol:/': invalid mount config for type \"volume\": "
     "invalid specification: destination can't be '/'"),
    ({"Binds": ["/srv:/.."]},
     "invalid volume specification: '/srv:/..': invalid mount config for type \"bind\": "
     "invalid specification: destination can't be '/'"),
    ({"Binds": ["/srv:rel"]},
     "invalid volume specification: '/srv:rel': invalid mount config for type \"bind\": "
     "invalid mount path: 'rel' mount path must be absolute"),
    ({"Binds": ["rel"]},
     "invalid volume specification: 'rel': invalid mount config for type \"volume\": "
     "invalid mount path: 'rel' mount path must be absolute"),
    ({"Mounts": [{"Type": "volume", "Target": "/"}]},
     "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/a/../.."}]},
     "invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'"),
    ({"Mounts": [{"Type": "bind", "Source": "/srv", "Target": "x"}]},
     "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute"),
    ({"Mounts": [{"Type": "bind", "Source": "srv", "Target": "/x"}]},
     "invalid mount config for type \"bind\": invalid mount path: 'srv' mount path must be absolute"),
    ({"Tmpfs": {"/": ""}}, "invalid specification: destination can't be '/'"),
    ({"Tmpfs": {"run": ""}}, "invalid mount path: 'run' mount path must be absolute"),
]


@pytest.mark.parametrize(("hc", "message"), BAD_DESTINATIONS)
async def test_bad_destinations_are_refused_with_dockerd_words(env, hc, message):
    r = await env.client.post("/containers/create", json={"Image": "busybox", "HostConfig": hc})
    assert await error(r, 400) == message


async def test_destinations_are_cleaned(env, tmp_path):
    src = tmp_path / "bindsrc"
    src.mkdir()
    cid = await env.create(HostConfig={
        "Binds": [f"{src}:/a/../b/"],
        "Mounts": [{"Type": "volume", "Target": "//c/./d"}],
        "Tmpfs": {"/e/../f": ""},
    })
    dests = sorted(m["Destination"] for m in (await env.inspect(cid))["Mounts"])
    assert dests == ["/b", "/c/d", "/f"]
