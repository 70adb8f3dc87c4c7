"""The real API app and engine over a real image store and the recording fake runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from servin.api.app import build_app
from servin.core.containers import ContainerService
from servin.core.events import EventBus
from servin.core.store import ContainerStore
from servin.core.volumes import VolumeStore
from servin.core.host import HostFacts
from servin.daemon.wiring import build_services, image_events, image_users
from servin.images.seed import write_busybox_archive
from servin.images.service import ImageService
from servin.kernel.procfs import system_cpu_ns
from servin.runtime.devices import block_numbers
from tests.support.fakes import FakeRuntime

FACTS = HostFacts(
    id="0123456789abcdef0123456789abcdef", hostname="testhost", kernel_version="6.1.0-test",
    operating_system="Test Linux", os_version="1", architecture="x86_64", go_arch="amd64", ncpu=4,
    mem_total=8 << 30, data_root="/var/lib/servin", cgroup_version=2, cgroup_driver="cgroupfs", debug=False,
    swap_limit=True, start_time_ns=0,
)


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "busybox.tar"
    write_busybox_archive(out)
    return out


@dataclass
class Env:
    client: TestClient
    runtime: FakeRuntime
    engine: ContainerService
    images: ImageService
    events: EventBus
    tmp: Path

    async def create(self, name: str | None = None, **body: Any) -> str:
        body.setdefault("Image", "busybox")
        params = {"name": name} if name else {}
        r = await self.client.post("/v1.41/containers/create", json=body, params=params)
        assert r.status == 201, await r.text()
        return (await r.json())["Id"]

    async def run(self, name: str | None = None, **body: Any) -> str:
        cid = await self.create(name, **body)
        r = await self.client.post(f"/v1.41/containers/{cid}/start")
        assert r.status == 204, await r.text()
        return cid

    async def inspect(self, ref: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1.41/containers/{ref}/json")
        assert r.status == 200, await r.text()
        return await r.json()

    async def wait_exited(self, ref: str) -> dict[str, Any]:
        for _ in range(200):
            info = await self.inspect(ref)
            if info["State"]["Status"] == "exited":
                return info
            await asyncio.sleep(0.005)
        raise AssertionError(f"{ref} did not exit")


@pytest.fixture
async def env(tmp_path: Path, busybox_archive: Path) -> AsyncIterator[Env]:
    events = EventBus()
    images = ImageService(tmp_path / "images", events=image_events(events), users=image_users(lambda: engine))
    images.load_archive(busybox_archive)
    runtime = FakeRuntime()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\nnameserver 10.1.2.3\n")
    volumes = VolumeStore(tmp_path / "volumes")
    engine = ContainerService(store=ContainerStore(tmp_path / "containers"), images=images, runtime=runtime,
                              events=events, block_numbers=block_numbers, host_resolv_conf=resolv, volumes=volumes)
    (tmp_path / "tmp").mkdir()
    services = build_services(containers=engine, images=images, volumes=volumes, network=None, events=events,
                              host=FACTS, tmp_dir=tmp_path / "tmp", host_cpu_ns=system_cpu_ns)
    client = TestClient(TestServer(build_app(services)))
    await client.start_server()
    try:
        yield Env(client=client, runtime=runtime, engine=engine, images=images, events=events, tmp=tmp_path)
    finally:
        await client.close()
        await engine.shutdown()
