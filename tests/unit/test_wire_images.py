import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.api.wire import versions
from servin.api.wire.images import delete_items, image_inspect, image_list, image_summary, load_lines
from servin.images.model import DeleteItem, Image
from servin.images.query import familiar_match

pytestmark = pytest.mark.unit

ID = "sha256:" + "ab" * 32
D1 = "sha256:" + "11" * 32
D2 = "sha256:" + "22" * 32


def make_image(**kw) -> Image:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00.5Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"k": "v"}},
        "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
    }
    base = dict(
        id=ID,
        repo_tags=("busybox:latest",),
        created="2024-01-01T00:00:00.5Z",
        architecture="amd64",
        os="linux",
        size=1234,
        diff_ids=(D1, D2),
        config=config,
    )
    base.update(kw)
    return Image(**base)


def test_summary():
    s = image_summary(make_image())
    assert s == {
        "Containers": -1,
        "Created": 1704067200,
        "Id": ID,
        "Labels": {"k": "v"},
        "ParentId": "",
        "RepoDigests": [],
        "RepoTags": ["busybox:latest"],
        "SharedSize": -1,
        "Size": 1234,
        "VirtualSize": 1234,
    }
    json.dumps(s)


def test_summary_untagged_and_no_labels():
    img = make_image(repo_tags=(), config={"config": {"Labels": None}})
    token = versions.use((1, 41))
    try:
        [s] = image_list([img], lambda _id: 0)
    finally:
        versions.reset(token)
    assert s["RepoTags"] == ["<none>:<none>"]  # below 1.43 an untagged image lists placeholders
    assert s["RepoDigests"] == ["<none>@<none>"]
    assert s["Labels"] == {}
    token = versions.use((1, 43))
    try:
        [s] = image_list([img], lambda _id: 0)
    finally:
        versions.reset(token)
    assert s["RepoTags"] == [] and s["RepoDigests"] == []


@pytest.fixture
def at_1_41() -> Iterator[None]:
    token = versions.use((1, 41))  # the shape a 1.41 client has always seen
    yield
    versions.reset(token)


def test_inspect(at_1_41: None):
    img = make_image(last_tag_time=None)
    dirs = [Path("/var/lib/servin/images/layers/11/diff"), Path("/var/lib/servin/images/layers/22/diff")]
    out = image_inspect(img, layer_dirs=dirs)
    assert list(out) == [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Container",
        "ContainerConfig",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "VirtualSize",
        "GraphDriver",
        "RootFS",
        "Metadata",
    ]
    assert out["Id"] == ID
    assert out["RepoTags"] == ["busybox:latest"]
    assert out["RepoDigests"] == []
    assert out["Created"] == "2024-01-01T00:00:00.5Z"
    assert out["Config"]["Cmd"] == ["sh"]
    assert out["Config"]["Env"] == ["PATH=/bin"]
    assert out["Config"]["Labels"] == {"k": "v"}
    assert out["Config"]["Hostname"] == "" and out["Config"]["Entrypoint"] is None
    assert "StopSignal" not in out["Config"]
    assert out["ContainerConfig"]["Cmd"] is None and out["ContainerConfig"]["Image"] == ""
    assert out["RootFS"] == {"Type": "layers", "Layers": [D1, D2]}
    assert out["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}
    assert out["GraphDriver"] == {
        "Name": "overlay2",
        "Data": {
            "LowerDir": "/var/lib/servin/images/layers/11/diff",
            "MergedDir": "/var/lib/servin/images/layers/22/merged",
            "UpperDir": "/var/lib/servin/images/layers/22/diff",
            "WorkDir": "/var/lib/servin/images/layers/22/work",
        },
    }
    assert out["Size"] == out["VirtualSize"] == 1234
    json.dumps(out)


def test_inspect_keeps_extra_config_fields_and_tag_time():
    img = make_image(
        last_tag_time="2024-02-03T04:05:06.7Z",
        config={"config": {"StopSignal": "SIGINT", "ExposedPorts": {"80/tcp": {}}, "Custom": 1}},
    )
    out = image_inspect(img)
    assert out["Config"]["StopSignal"] == "SIGINT"
    assert out["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert out["Config"]["Custom"] == 1
    assert out["Metadata"]["LastTagTime"] == "2024-02-03T04:05:06.7Z"
    assert out["GraphDriver"] == {"Name": "overlay2", "Data": {}}
    # rendering never mutates the domain object's config
    out["Config"]["Env"] = ["X=1"]
    assert "Env" not in img.config["config"]


def test_delete_items_and_load_lines():
    assert delete_items([DeleteItem(untagged="busybox:latest"), DeleteItem(deleted=ID)]) == [
        {"Untagged": "busybox:latest"},
        {"Deleted": ID},
    ]
    assert delete_items([]) == []
    assert load_lines(["Loaded image: busybox:latest"]) == [{"stream": "Loaded image: busybox:latest\n"}]


@pytest.mark.parametrize(
    ("pattern", "ref", "hit"),
    [
        ("busybox", "busybox:latest", True),
        ("busy*", "busybox:latest", True),
        ("*/app", "example.com/team/app:v1", False),
        ("example.com/*/app", "example.com/team/app:v1", True),
        ("localhost:5000/x", "localhost:5000/x:1", True),
        ("*:1", "localhost:5000/x:1", False),
        ("b?sybox:[lz]atest", "busybox:latest", True),
        ("busybox", "busybox@sha256:" + "a" * 64, True),
    ],
)
def test_reference_filter_is_go_path_match(pattern, ref, hit):
    assert familiar_match(pattern, ref) is hit
