"""The daemon's max-concurrent-downloads and max-concurrent-uploads as the registry service's
settings, daemon-wide as dockerd's transfer manager: all pulls together fetch, and all pushes send,
that many layers at once; a change (a reload) applies to the next transfer to start."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servin import errors
from servin.images.reference import parse_normalized
from servin.registry import pull as pull_mod
from servin.registry import push as push_mod
from servin.registry.auth import AuthConfig
from servin.registry.service import RegistryService
from tests.registry.fakestore import FakeStore
from tests.registry.recorder import Recorder
from tests.registry.server import REGISTRY_BIN, Registry, running_registry

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")]

LAYERS = 6


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with running_registry() as reg:
        yield reg


class Peak:
    """Wraps a transfer function and records how many ran at once."""

    def __init__(self, real: Any, on_first: Any = None) -> None:
        self.real, self.on_first, self.now, self.peak, self.calls = real, on_first, 0, 0, 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1 and self.on_first is not None:
            self.on_first()
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.2)  # long enough for every transfer the gate lets through to start
            return await self.real(*args, **kwargs)
        finally:
            self.now -= 1


def six_layers(store: FakeStore, name: str) -> None:
    store.make_image(name, [{f"f{n}": os.urandom(50_000)} for n in range(LAYERS)])


async def pull(svc: RegistryService, name: str) -> Recorder:
    rec = Recorder()
    await svc.pull(parse_normalized(name), AuthConfig(), None, rec)
    return rec


async def test_uploads_at_once_follow_the_setting(registry: Registry, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = FakeStore()
    six_layers(src, f"{registry.host}/limits/up:v1")
    svc = RegistryService(src, tmp_path, max_concurrent_uploads=2)
    peak = Peak(push_mod.push_layer)
    monkeypatch.setattr(push_mod, "push_layer", peak)
    rec = Recorder()
    await svc.push(parse_normalized(f"{registry.host}/limits/up:v1"), AuthConfig(), rec)
    assert peak.peak == 2 and sum(m.get("status") == "Waiting" for m in rec.lines) == LAYERS - 2

    svc.limit_transfers(downloads=3, uploads=4)  # what a reload does
    peak.peak = 0
    await svc.push(parse_normalized(f"{registry.host}/limits/up:v1"), AuthConfig(), Recorder())
    assert peak.peak == 4


async def test_downloads_at_once_are_daemon_wide_and_a_new_limit_applies_at_once(
        registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = FakeStore()
    names = [f"{registry.host}/limits/down{i}:v1" for i in (1, 2)]
    for name in names:
        six_layers(src, name)
        await RegistryService(src, tmp_path).push(parse_normalized(name), AuthConfig(), Recorder())

    svc = RegistryService(FakeStore(), tmp_path, max_concurrent_downloads=2)
    peak = Peak(pull_mod.download_blob)
    monkeypatch.setattr(pull_mod, "download_blob", peak)
    recs = await asyncio.gather(*(pull(svc, name) for name in names))  # two pulls share the 2
    assert peak.peak == 2  # each pull alone would have fetched 2 at once: 4 together
    # each shows its layers past the free slots as Waiting (all of them, when the other pull has both)
    assert all(sum(m.get("status") == "Waiting" for m in rec.lines) >= LAYERS - 2 for rec in recs)

    svc.store = FakeStore()  # nothing stored yet: every layer is fetched again
    peak.peak, peak.calls = 0, 0
    # a reload while the pull's first layer is under way: the transfers that start next follow it
    peak.on_first = lambda: svc.limit_transfers(downloads=5, uploads=5)
    await pull(svc, names[0])
    assert peak.peak == 5


def test_a_limit_below_one_is_refused(tmp_path: Path) -> None:
    svc = RegistryService(FakeStore(), tmp_path)
    with pytest.raises(errors.InvalidArgument):
        svc.limit_transfers(downloads=0, uploads=5)
    assert (svc.max_concurrent_downloads, svc.max_concurrent_uploads) == (3, 5)
