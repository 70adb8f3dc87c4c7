"""The image service's seams: the events it publishes through the narrow publisher (the API's
operations, on the event loop), the prune policy of the filters, and the typed progress events
rendered as Docker's JSON lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from servin.api.wire import progress as wire
from servin.errors import Conflict, InvalidArgument
from servin.images.events import ImageEvent
from servin.images.model import Image
from servin.images.progress import LayerProgress, PushedManifest, Status
from servin.images.query import prune_policy
from servin.images.seed import write_busybox_archive
from servin.images.service import ImageService

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "busybox.tar"
    write_busybox_archive(out)
    return out


class Published(list[ImageEvent]):
    def actions(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(e.action, e.actor_id, dict(e.attributes)) for e in self]


@pytest.fixture
def published() -> Published:
    return Published()


async def test_load_tag_remove_publish_dockerds_events(tmp_path: Path, seed: Path, published: Published) -> None:
    images = ImageService(tmp_path / "images", events=published.append)
    progress: list[object] = []
    assert await images.load(seed, progress.append) == ["Loaded image: busybox:latest"]
    image_id = images.get("busybox").id
    assert progress and all(isinstance(p, LayerProgress) and p.action == "Loading layer" for p in progress)
    await images.tag_image("busybox", "docker.io/library/mine", "v1")  # as docker CLI 28 sends it
    await images.remove("mine:v1", force=False, prune=True)
    await images.remove("busybox", force=False, prune=True)
    assert published.actions() == [
        ("load", image_id, {"name": image_id}),
        ("tag", image_id, {"name": "mine:v1"}),
        ("untag", image_id, {"name": "mine:v1"}),
        ("untag", image_id, {"name": "busybox:latest"}),
        ("delete", image_id, {"name": image_id}),
    ]


async def test_remove_asks_the_users_given_at_construction(tmp_path: Path, seed: Path) -> None:
    images = ImageService(tmp_path / "images", users=lambda image_id: [("c" * 64, True)])
    images.load_archive(seed)
    with pytest.raises(Conflict, match="is using its referenced image"):
        await images.remove("busybox", force=False, prune=True)


async def test_prune_publishes_untag_delete_then_prune(tmp_path: Path, seed: Path, published: Published) -> None:
    images = ImageService(tmp_path / "images", events=published.append)
    images.load_archive(seed)
    image_id = images.get("busybox").id
    items, reclaimed = await images.prune_images(prune_policy({"dangling": ["false"]}, lambda s: 0))
    assert [i.deleted for i in items if i.deleted][0] == image_id and reclaimed > 0
    assert published.actions() == [
        ("untag", image_id, {"name": "busybox:latest"}),
        ("delete", image_id, {"name": image_id}),
        ("prune", "", {"reclaimed": str(reclaimed)}),
    ]


def test_prune_policy_of_the_filters() -> None:
    img = Image(id="sha256:" + "a" * 64, created="2020-01-01T00:00:00Z", config={"config": {"Labels": {"k": "v"}}})
    assert prune_policy({}, int).dangling_only
    assert not prune_policy({"dangling": ["0"]}, int).dangling_only
    with pytest.raises(InvalidArgument, match=r"Invalid filter 'dangling=\[maybe\]'"):
        prune_policy({"dangling": ["maybe"]}, int)
    assert prune_policy({"label": ["k=v"]}, int).keeps(img)
    assert not prune_policy({"label!": ["k"]}, int).keeps(img)
    assert not prune_policy({"until": ["x"]}, lambda s: 1_000_000_000 * 1_500_000_000).keeps(img)
    assert prune_policy({"until": ["x"]}, lambda s: 1_000_000_000 * 1_600_000_000).keeps(img)


def test_typed_progress_renders_dockerds_lines() -> None:
    assert wire.dumps(wire.render(Status(text="Pulling from library/busybox", id="latest"))) == (
        b'{"status":"Pulling from library/busybox","id":"latest"}\r\n')
    assert wire.dumps(wire.render(Status(text="Digest: sha256:x"))) == b'{"status":"Digest: sha256:x"}\r\n'
    assert wire.dumps(wire.render(LayerProgress(id="abc", action="Pull complete"))) == (
        b'{"status":"Pull complete","progressDetail":{},"id":"abc"}\r\n')
    assert wire.render(LayerProgress(id="abc", action="Downloading", current=1_000_000, total=2_000_000)) == {
        "status": "Downloading", "progressDetail": {"current": 1_000_000, "total": 2_000_000},
        "progress": "[" + "=" * 25 + ">" + " " * 25 + "]      1MB/2MB", "id": "abc"}
    assert wire.dumps(wire.render(PushedManifest(tag="v1", digest="sha256:d", size=528))) == (
        b'{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:d","Size":528}}\r\n')
