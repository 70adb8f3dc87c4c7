"""The container-config work of API 1.42 to 1.48 at 1.41, 1.44 and 1.55 (versions.py's rules): mounts
(CreateMountpoint, options of another type, recursive read-only binds, volume subpaths, tmpfs options,
image mounts), console size, annotations, the healthcheck's start interval, stop/restart `signal`,
volume prune's `all`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import servin.api.app
import servin.api.wire.system
from servin.api.wire import versions


@pytest.fixture(autouse=True)
def api_1_55(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "MAX_VERSION", (1, 55))
    # the names the version middleware compared with before it read versions.MAX_VERSION itself
    monkeypatch.setattr(servin.api.wire.system, "API_VERSION", "1.55", raising=False)
    monkeypatch.setattr(servin.api.app, "API_VERSION", "1.55", raising=False)


async def create(env, version: str, status: int = 201, **body: Any) -> Any:
    body.setdefault("Image", "busybox")
    body.setdefault("Cmd", ["true"])
    r = await env.client.post(f"/v{version}/containers/create", json=body)
    assert r.status == status, await r.text()
    return (await r.json())["Id" if status == 201 else "message"]


async def inspect(env, version: str, cid: str) -> dict[str, Any]:
    r = await env.client.get(f"/v{version}/containers/{cid}/json")
    assert r.status == 200, await r.text()
    return await r.json()


async def started_spec(env, cid: str) -> dict[str, Any]:
    r = await env.client.post(f"/containers/{cid}/start")
    assert r.status == 204, await r.text()
    return env.runtime.specs[cid]


async def made_in_volume(env, name: str, sub: str) -> Path:
    """The directory `sub` made in the volume, as a container using it would."""
    r = await env.client.get(f"/volumes/{name}")
    assert r.status == 200, await r.text()
    path = Path((await r.json())["Mountpoint"]) / sub
    path.mkdir(parents=True)
    return path


def mount_at(spec: dict[str, Any], dest: str) -> dict[str, Any]:
    return next(m for m in spec["mounts"] if m["destination"] == dest)


# ---- BindOptions.CreateMountpoint (1.42) -----------------------------------------------------------

async def test_create_mountpoint_makes_the_missing_source_from_1_42(env, tmp_path: Path) -> None:
    src = tmp_path / "made" / "here"
    mount = {"Type": "bind", "Source": str(src), "Target": "/m", "BindOptions": {"CreateMountpoint": True}}
    message = await create(env, "1.41", 400, HostConfig={"Mounts": [mount]})
    assert message == f'invalid mount config for type "bind": bind source path does not exist: {src}'
    cid = await create(env, "1.42", HostConfig={"Mounts": [mount]})
    assert src.is_dir()
    info = await inspect(env, "1.55", cid)
    assert info["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": str(src), "Target": "/m",
                                             "BindOptions": {"CreateMountpoint": True}}]


# ---- options of another mount type (1.42) --------------------------------------------------------

@pytest.mark.parametrize(("mount", "message"), [
    ({"Type": "bind", "Source": "/tmp", "Target": "/m", "VolumeOptions": {"NoCopy": True}},
     'VolumeOptions must not be specified on mount type "bind"'),
    ({"Type": "volume", "Source": "v", "Target": "/m", "BindOptions": {"Propagation": "rshared"}},
     'BindOptions must not be specified on mount type "volume"'),
    ({"Type": "volume", "Source": "v", "Target": "/m", "TmpfsOptions": {"SizeBytes": 1024}},
     'TmpfsOptions must not be specified on mount type "volume"'),
])
async def test_options_of_another_type_are_refused_from_1_42(env, mount, message) -> None:
    assert await create(env, "1.42", 400, HostConfig={"Mounts": [mount]}) == message


async def test_options_of_another_type_are_dropped_below_1_42(env) -> None:
    mount = {"Type": "bind", "Source": "/tmp", "Target": "/m", "VolumeOptions": {"NoCopy": True}}
    cid = await create(env, "1.41", HostConfig={"Mounts": [mount]})
    hc_mounts = (await inspect(env, "1.41", cid))["HostConfig"]["Mounts"]
    assert "VolumeOptions" not in hc_mounts[0]


# ---- recursive read-only binds (1.44) -----------------------------------------------------------

async def test_read_only_binds_are_recursively_read_only_from_1_44(env, tmp_path: Path) -> None:
    cid = await create(env, "1.44", HostConfig={"Binds": [f"{tmp_path}:/b:ro"], "Mounts": [
        {"Type": "bind", "Source": str(tmp_path), "Target": "/m", "ReadOnly": True}]})
    spec = await started_spec(env, cid)
    assert mount_at(spec, "/b")["options"] == ["rbind", "rro", "rprivate"]
    assert mount_at(spec, "/m")["options"] == ["rbind", "rro", "rprivate"]


async def test_below_1_44_read_only_binds_stay_non_recursive(env, tmp_path: Path) -> None:
    cid = await create(env, "1.41", HostConfig={"Binds": [f"{tmp_path}:/b:ro"], "Mounts": [
        {"Type": "bind", "Source": str(tmp_path), "Target": "/m", "ReadOnly": True}]})
    spec = await started_spec(env, cid)
    assert mount_at(spec, "/b")["options"] == ["rbind", "ro", "rprivate"]
    assert mount_at(spec, "/m")["options"] == ["rbind", "ro", "rprivate"]
    echoed = (await inspect(env, "1.41", cid))["HostConfig"]["Mounts"][0]
    assert echoed["BindOptions"] == {"ReadOnlyNonRecursive": True}


async def test_read_only_non_recursive_and_force_recursive(env, tmp_path: Path) -> None:
    cid = await create(env, "1.55", HostConfig={"Mounts": [
        {"Type": "bind", "Source": str(tmp_path), "Target": "/n", "ReadOnly": True,
         "BindOptions": {"ReadOnlyNonRecursive": True}},
        {"Type": "bind", "Source": str(tmp_path), "Target": "/f", "ReadOnly": True,
         "BindOptions": {"ReadOnlyForceRecursive": True, "NonRecursive": True}}]})
    spec = await started_spec(env, cid)
    assert mount_at(spec, "/n")["options"] == ["rbind", "ro", "rprivate"]
    assert mount_at(spec, "/f")["options"] == ["bind", "rro", "rprivate"]
    info = await inspect(env, "1.55", cid)
    assert [m.get("BindOptions") for m in info["HostConfig"]["Mounts"]] == [
        {"ReadOnlyNonRecursive": True}, {"NonRecursive": True, "ReadOnlyForceRecursive": True}]
    assert sorted((m["Destination"], m["RW"]) for m in info["Mounts"]) == [("/f", False), ("/n", False)]


@pytest.mark.parametrize(("read_only", "options", "message"), [
    (False, {"ReadOnlyNonRecursive": True}, "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive"),
    (False, {"ReadOnlyForceRecursive": True},
     "mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive"),
    (True, {"ReadOnlyNonRecursive": True, "ReadOnlyForceRecursive": True},
     "mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"),
])
async def test_read_only_options_conflicts(env, tmp_path: Path, read_only, options, message) -> None:
    mount = {"Type": "bind", "Source": str(tmp_path), "Target": "/m", "ReadOnly": read_only, "BindOptions": options}
    assert await create(env, "1.55", 400, HostConfig={"Mounts": [mount]}) == message


async def test_force_recursive_needs_1_44(env, tmp_path: Path) -> None:
    mount = {"Type": "bind", "Source": str(tmp_path), "Target": "/f", "ReadOnly": True,
             "BindOptions": {"ReadOnlyForceRecursive": True}}
    assert await create(env, "1.43", 400, HostConfig={"Mounts": [mount]}) == \
        "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"


async def test_rro_is_no_bind_mode(env, tmp_path: Path) -> None:
    assert await create(env, "1.55", 400, HostConfig={"Binds": [f"{tmp_path}:/b:rro"]}) == "invalid mode: rro"


# ---- VolumeOptions.Subpath (1.45) ------------------------------------------------------------------

async def test_volume_subpath(env) -> None:
    mount = {"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"Subpath": "sub/dir"}}
    assert await create(env, "1.44", 400, HostConfig={"Mounts": [mount]}) == \
        "VolumeOptions.Subpath needs API v1.45 or newer"
    cid = await create(env, "1.45", HostConfig={"Mounts": [mount]})
    await made_in_volume(env, "data", "sub/dir")  # dockerd's start needs it (a 404 otherwise)
    spec = await started_spec(env, cid)
    m = mount_at(spec, "/d")
    assert m["source"].endswith("/volumes/data/_data")
    assert m["options"] == ["rbind", "rprivate", "x-servin.subpath=sub/dir"]
    assert (await inspect(env, "1.55", cid))["HostConfig"]["Mounts"][0]["VolumeOptions"] == {"Subpath": "sub/dir"}


@pytest.mark.parametrize(("mount", "message"), [
    ({"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"Subpath": "../../etc"}},
     'invalid mount config for type "volume": subpath must be a relative path within the volume'),
    ({"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"Subpath": "/etc"}},
     'invalid mount config for type "volume": subpath must be a relative path within the volume'),
    ({"Type": "volume", "Target": "/d", "VolumeOptions": {"Subpath": "x"}},
     'invalid mount config for type "volume": must not set Subpath when using anonymous volumes'),
])
async def test_volume_subpath_out_of_the_volume_is_refused(env, mount, message) -> None:
    assert await create(env, "1.55", 400, HostConfig={"Mounts": [mount]}) == message


# ---- TmpfsOptions.Options (1.46) --------------------------------------------------------------------

async def test_tmpfs_options(env) -> None:
    mount = {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Options": [["exec"]]}}
    cid = await create(env, "1.46", HostConfig={"Mounts": [mount]})
    spec = await started_spec(env, cid)
    assert mount_at(spec, "/t")["options"] == ["nosuid", "nodev", "size=1m", "exec"]
    assert (await inspect(env, "1.55", cid))["HostConfig"]["Mounts"][0]["TmpfsOptions"] == \
        {"SizeBytes": 1 << 20, "Options": [["exec"]]}
    old = await create(env, "1.45", HostConfig={"Mounts": [mount]})
    assert "exec" not in mount_at(await started_spec(env, old), "/t")["options"]


async def test_tmpfs_options_dockerd_refuses(env) -> None:
    mount = {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [["noexec"], ["uid", "1000"]]}}
    assert await create(env, "1.55", 400, HostConfig={"Mounts": [mount]}) == \
        'invalid mount config for type "tmpfs": invalid option: uid'
    mount["TmpfsOptions"] = {"Options": [["exec", "1", "2"]]}
    assert await create(env, "1.55", 400, HostConfig={"Mounts": [mount]}) == \
        'invalid mount config for type "tmpfs": invalid option array length'


# ---- image mounts (1.48) ----------------------------------------------------------------------------

async def test_image_mounts_need_1_48(env) -> None:
    mount = {"Type": "image", "Source": "busybox", "Target": "/img"}
    assert await create(env, "1.47", 400, HostConfig={"Mounts": [mount]}) == \
        'Mount type "Image" needs API v1.48 or newer'
    mount["ImageOptions"] = {"Subpath": "../x"}
    assert await create(env, "1.48", 400, HostConfig={"Mounts": [mount]}) == \
        'invalid mount config for type "image": subpath must be a relative path within the volume'
    bad = {"Type": "bind", "Source": "/tmp", "Target": "/m", "ImageOptions": {"Subpath": "x"}}
    assert await create(env, "1.48", 400, HostConfig={"Mounts": [bad]}) == \
        'invalid mount config for type "bind": field ImageOptions must not be specified'


async def test_image_mount_is_the_images_layers_read_only_and_keeps_the_image(env) -> None:
    mount = {"Type": "image", "Source": "busybox", "Target": "/img", "ImageOptions": {"Subpath": "bin"}}
    cid = await create(env, "1.48", HostConfig={"Mounts": [mount]})
    m = mount_at(await started_spec(env, cid), "/img")
    layers = [str(p) for p in reversed(env.images.layer_dirs("busybox"))]
    assert layers and m == {"destination": "/img", "type": "bind", "source": layers[0],  # one layer: a bind
                            "options": ["rbind", "ro", "nosuid", "nodev", "rprivate", "x-servin.subpath=bin"]}
    info = await inspect(env, "1.55", cid)
    assert info["HostConfig"]["Mounts"] == [mount]
    assert info["Mounts"] == [{"Type": "image", "Source": "busybox", "Destination": "/img", "Mode": "",
                               "RW": False, "Propagation": "rprivate"}]
    r = await env.client.delete("/images/busybox")
    assert r.status == 409, await r.text()
    assert await create(env, "1.48", 404, HostConfig={"Mounts": [{**mount, "Source": "nosuch:1"}]}) == \
        "No such image: nosuch:1"


# ---- HostConfig.ConsoleSize (1.42) --------------------------------------------------------------

async def test_console_size_from_1_42(env) -> None:
    old = await create(env, "1.41", Tty=True, HostConfig={"ConsoleSize": [30, 100]})
    assert (await inspect(env, "1.55", old))["HostConfig"]["ConsoleSize"] == [0, 0]
    assert "consoleSize" not in (await started_spec(env, old))["process"]
    new = await create(env, "1.42", Tty=True, HostConfig={"ConsoleSize": [30, 100]})
    assert (await inspect(env, "1.55", new))["HostConfig"]["ConsoleSize"] == [30, 100]
    assert (await started_spec(env, new))["process"]["consoleSize"] == {"height": 30, "width": 100}


# ---- HostConfig.Annotations (1.43; in list summaries 1.46) --------------------------------------------

async def test_annotations(env) -> None:
    hc = {"Annotations": {"com.example.key": "v"}}
    old = await create(env, "1.42", HostConfig=hc)
    assert "Annotations" not in (await inspect(env, "1.55", old))["HostConfig"]
    cid = await create(env, "1.43", HostConfig=hc)
    assert (await inspect(env, "1.43", cid))["HostConfig"]["Annotations"] == {"com.example.key": "v"}
    assert (await started_spec(env, cid))["annotations"]["com.example.key"] == "v"

    async def summary_hc(version: str) -> dict[str, Any]:
        r = await env.client.get(f"/v{version}/containers/json", params={"all": "1"})
        return next(c["HostConfig"] for c in await r.json() if c["Id"] == cid)

    assert "Annotations" not in await summary_hc("1.45")
    assert (await summary_hc("1.46"))["Annotations"] == {"com.example.key": "v"}


@pytest.mark.parametrize(("annotations", "message"), [
    ({"": "x"}, "invalid Annotations: the empty string is not permitted as an annotation key"),
    ({"io.servin.init": "1"}, "invalid Annotations: io.servin.init: keys under io.servin. are Servin's own"),
])
async def test_annotations_refused(env, annotations, message) -> None:
    assert await create(env, "1.55", 400, HostConfig={"Annotations": annotations}) == message


# ---- Healthcheck.StartInterval (1.44) ---------------------------------------------------------------

async def test_healthcheck_start_interval(env) -> None:
    check = {"Test": ["CMD", "true"], "StartPeriod": 10_000_000_000, "StartInterval": 1_000_000_000}
    old = await create(env, "1.43", Healthcheck=check)
    assert "StartInterval" not in (await inspect(env, "1.55", old))["Config"]["Healthcheck"]
    cid = await create(env, "1.44", Healthcheck=check)
    assert (await inspect(env, "1.44", cid))["Config"]["Healthcheck"] == check
    assert await create(env, "1.44", 400, Healthcheck={**check, "StartInterval": 10}) == \
        "StartInterval in Healthcheck cannot be less than 1ms"


# ---- stop and restart `signal` (1.42) ----------------------------------------------------------------

async def test_stop_and_restart_signal_parameter_from_1_42(env) -> None:
    cid = await create(env, "1.55", Cmd=["sleep", "60"])
    await started_spec(env, cid)

    def signals() -> list[int]:
        return [c[2] for c in env.runtime.calls if c[0] == "kill" and c[1] == cid]

    r = await env.client.post(f"/v1.42/containers/{cid}/stop", params={"signal": "NOPE"})
    assert r.status == 400 and (await r.json())["message"] == "Invalid signal: NOPE"
    assert signals() == []
    r = await env.client.post(f"/v1.41/containers/{cid}/stop", params={"signal": "NOPE"})
    assert r.status == 204, await r.text()  # a parameter 1.41 did not know: not read
    assert signals() == [15]
    await started_spec(env, cid)
    r = await env.client.post(f"/v1.42/containers/{cid}/restart", params={"signal": "SIGUSR1"})
    assert r.status == 204, await r.text()
    assert signals() == [15, 10]
    r = await env.client.post(f"/v1.55/containers/{cid}/stop", params={"signal": "KILL"})
    assert r.status == 204, await r.text()
    assert signals() == [15, 10, 9]


# ---- volume prune: anonymous volumes only from 1.42 ----------------------------------------------

async def test_volume_prune_all_filter(env) -> None:
    for body in ({"Name": "named"}, {}):
        r = await env.client.post("/volumes/create", json=body)
        assert r.status == 201
    anonymous = [v["Name"] for v in (await (await env.client.get("/volumes")).json())["Volumes"]
                 if v["Name"] != "named"]

    async def prune(version: str, filters: dict[str, Any] | None = None) -> Any:
        params = {"filters": json.dumps(filters)} if filters is not None else {}
        return await env.client.post(f"/v{version}/volumes/prune", params=params)

    r = await prune("1.55", {"all": ["yes"]})
    assert r.status == 400
    assert (await r.json())["message"] == \
        'invalid filter \'all\': strconv.ParseBool: parsing "yes": invalid syntax'
    r = await prune("1.55", {"all": ["true", "false"]})
    assert (await r.json())["message"] == "invalid filter 'all=[true false]': only one value is expected"
    assert (await (await prune("1.55")).json())["VolumesDeleted"] == anonymous
    assert (await (await prune("1.55", {"all": {"1": True}})).json())["VolumesDeleted"] == ["named"]
    r = await env.client.post("/volumes/create", json={"Name": "again"})
    assert (await (await prune("1.41")).json())["VolumesDeleted"] == ["again"]


# ---- exec ConsoleSize (1.42) -----------------------------------------------------------------------

async def test_exec_console_size_from_1_42(env, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = await create(env, "1.55", Cmd=["sleep", "60"])
    await started_spec(env, cid)
    sizes = []
    run_exec = env.runtime.exec

    async def spy(container_id, process):  # noqa: ANN001, ANN202
        sizes.append(process.console_size)
        return await run_exec(container_id, process)

    monkeypatch.setattr(env.runtime, "exec", spy)

    async def exec_with(version: str, start: dict[str, Any]) -> None:
        r = await env.client.post(f"/v{version}/containers/{cid}/exec",
                                  json={"Cmd": ["echo", "x"], "Tty": True, "ConsoleSize": [10, 20]})
        assert r.status == 201, await r.text()
        r = await env.client.post(f"/v{version}/exec/{(await r.json())['Id']}/start", json={"Detach": True, **start})
        assert r.status == 200, await r.text()

    await exec_with("1.41", {"Tty": True, "ConsoleSize": [30, 40]})
    await exec_with("1.42", {})
    await exec_with("1.42", {"Tty": True, "ConsoleSize": [30, 40]})
    assert sizes == [None, (10, 20), (30, 40)]
