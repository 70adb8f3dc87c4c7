"""/images/... handlers: load, save, import, list, inspect, history, tag, remove, prune."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from servin import errors
from servin.api import streams
from servin.api.errors import json_response
from servin.api.routes import distribution
from servin.api.context import flag, services
from servin.api.wire import images as wire
from servin.api.wire import platforms
from servin.api.wire.platforms import HOST_PLATFORM
from servin.api.wire import progress as wire_progress
from servin.api.wire.filters import parse_filters
from servin.core.query import parse_until
from servin.images.manifests import ImageManifests
from servin.images.model import Image
from servin.images.progress import ProgressEvent
from servin.images.query import prune_policy

LIST_FILTERS = frozenset({"dangling", "label", "before", "since", "reference", "until"})
PRUNE_FILTERS = frozenset({"dangling", "label", "label!", "until"})
log = logging.getLogger(__name__)


async def _spool(request: web.Request) -> Path:
    """The request body into a temp file (the store works on files, off the event loop)."""
    tmp_dir = services(request).tmp_dir
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.content.iter_chunked(1 << 20):
                await asyncio.to_thread(f.write, chunk) if len(chunk) > (1 << 19) else f.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


async def load(request: web.Request) -> web.StreamResponse:
    wanted = platforms.decode(request.query.getall("platform", []))
    if wanted and not any(platforms.formatted(w) == platforms.formatted(HOST_PLATFORM) for w in wanted):
        raise errors.InvalidArgument(f"loading images for {', '.join(platforms.formatted(w) for w in wanted)} is "
                                     f"not supported: this daemon stores {platforms.formatted(HOST_PLATFORM)} images")
    path = await _spool(request)
    s = services(request)
    quiet = flag(request, "quiet")
    resp = await streams.open_stream(request, "application/json")
    loop = asyncio.get_running_loop()
    progress: asyncio.Queue[ProgressEvent | None] = asyncio.Queue()

    def report(event: ProgressEvent) -> None:  # called from the loading thread
        loop.call_soon_threadsafe(progress.put_nowait, event)

    async def run() -> list[str]:
        try:
            return await s.images.load(path, None if quiet else report)
        finally:
            loop.call_soon_threadsafe(progress.put_nowait, None)

    task = asyncio.ensure_future(run())
    try:
        while (event := await progress.get()) is not None:
            await streams.write_json_line(resp, wire_progress.render(event))
        lines, error = await task, None
    except errors.ServinError as exc:  # dockerd reports a bad archive inside the 200 stream
        lines, error = [], exc.message
    finally:
        if not task.done():
            await asyncio.wait([task])
        path.unlink(missing_ok=True)
    for line in lines:
        await streams.write_json_line(resp, {"stream": line + "\n"})
    if error is not None:
        await streams.write_json_line(resp, wire_progress.error(error))
    await resp.write_eof()
    return resp


async def create(request: web.Request) -> web.StreamResponse:
    q = request.query
    if q.get("fromSrc") == "-":
        path = await _spool(request)
        repo = q.get("repo") or None
        tag = q.get("tag") or None
        try:
            img = await services(request).images.import_image(
                path, repo=repo, tag=tag, changes=list(q.getall("changes", [])), message=q.get("message", ""))
        finally:
            path.unlink(missing_ok=True)
        resp = await streams.open_stream(request, "application/json")
        await streams.write_json_line(resp, {"status": img.id})
        await resp.write_eof()
        return resp
    if q.get("fromSrc"):
        raise errors.NotImplementedYet("importing from a URL is not implemented in Servin yet")
    if q.get("fromImage"):
        return await distribution.pull(request)
    raise errors.InvalidArgument("fromImage or fromSrc is required")


async def list_(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), LIST_FILTERS)
    if filters.get("until"):  # a timestamp or a Go duration back from now, as unix seconds
        filters = {**filters, "until": [str(parse_until(filters["until"][-1]) / 1e9)]}
    listed, identity = flag(request, "manifests"), flag(request, "identity")  # from 1.47 and 1.54 on
    if identity and not listed:
        raise errors.InvalidArgument("conflicting options: identity requires manifests=1")
    s = services(request)
    imgs = await s.images.select(filters, all_=flag(request, "all"))
    users = _users(request)
    shared = await asyncio.to_thread(s.images.shared_sizes) if flag(request, "shared-size") else {}

    def manifests_of(img: Image) -> ImageManifests | None:
        with contextlib.suppress(errors.NotFound):  # removed since it was selected
            return s.images.manifests.of(img)
        return None

    oci = await asyncio.to_thread(lambda: {img.id: manifests_of(img) for img in imgs})
    imgs = [img for img in imgs if oci[img.id] is not None]
    return json_response(wire.image_list(imgs, lambda image_id: len(users.get(image_id, ())),
                                         lambda image_id: shared.get(image_id, -1), manifests=lambda img: oci[img.id],
                                         users=lambda image_id: users.get(image_id, ()), listed=listed,
                                         identity=identity))


def _users(request: web.Request) -> dict[str, list[str]]:
    """The containers made from each image, by image ID."""
    users: dict[str, list[str]] = {}
    for item in services(request).container_views.list({}, all_=True, limit=0):
        users.setdefault(item.container.image_id, []).append(item.container.id)
    return users


async def _image(request: web.Request, name: str) -> Image:
    """The image `name`, if its platform is one of the request's `platform` parameters (when it has any)."""
    img = await asyncio.to_thread(services(request).images.get, name)
    await _platforms_match(request, [name], known=img)
    return img


async def _platforms_match(request: web.Request, names: list[str], known: Image | None = None) -> None:
    """dockerd's 404 unless each image's platform is among the request's `platform(s)` (none: any)."""
    wanted = platforms.decode(request.query.getall("platform", []) or request.query.getall("platforms", []))
    for name in names if wanted else ():
        img = known if known is not None else await asyncio.to_thread(services(request).images.get, name)
        platforms.require(img, name, wanted)


async def history(request: web.Request) -> web.Response:
    await _platforms_match(request, [request.match_info["name"]])
    items = await asyncio.to_thread(services(request).images.history, request.match_info["name"])
    return json_response(wire.history(items))


async def save(request: web.Request) -> web.StreamResponse:
    """GET /images/get?names=... and /images/{name}/get: a docker-archive, streamed."""
    s = services(request)
    names = [request.match_info["name"]] if "name" in request.match_info else list(request.query.getall("names", []))
    if not names:
        raise errors.InvalidArgument("no images to save: names is required")
    await _platforms_match(request, names)
    selection = await s.images.save_plan(names)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
    gone = threading.Event()  # the client went away: the writer stops at its next write

    class _Out(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            if gone.is_set():
                raise BrokenPipeError("the client went away")
            asyncio.run_coroutine_threadsafe(chunks.put(bytes(data)), loop).result()
            return len(data)

    async def produce() -> None:
        try:
            await s.images.save(selection, _Out())
        finally:
            if not gone.is_set():
                await chunks.put(None)

    task = asyncio.ensure_future(produce())
    try:
        while (chunk := await chunks.get()) is not None:
            await resp.write(chunk)
        await task
    except ConnectionError:  # the client went away (docker save | head)
        return resp
    except Exception as exc:  # headers are out: an error can only cut the archive short, as dockerd
        log.error("save %s: %s", names, exc)
        if request.transport is not None:
            request.transport.close()
        return resp
    finally:
        if not task.done():
            gone.set()
            while not task.done():
                with contextlib.suppress(asyncio.QueueEmpty):
                    chunks.get_nowait()
                await asyncio.sleep(0.01)
            task.exception()  # retrieved: the writer's BrokenPipeError is expected
    await resp.write_eof()
    return resp


async def prune(request: web.Request) -> web.Response:
    policy = prune_policy(parse_filters(request.query.get("filters"), PRUNE_FILTERS), parse_until)
    items, reclaimed = await services(request).images.prune_images(policy)
    return json_response({"ImagesDeleted": wire.delete_items(items) or None, "SpaceReclaimed": reclaimed})


async def inspect(request: web.Request) -> web.Response:
    listed = flag(request, "manifests")  # from 1.48 on, `platform` from 1.49
    if listed and request.query.get("platform"):
        raise errors.InvalidArgument("conflicting options: manifests and platform options cannot both be set")
    img = await _image(request, request.match_info["name"])
    oci = await asyncio.to_thread(services(request).images.manifests.of, img)
    if request.query.get("platform"):  # dockerd's target is then the chosen platform's manifest
        oci = dataclasses.replace(oci, descriptor=oci.own().descriptor)
    users = _users(request).get(img.id, ()) if listed else ()
    return json_response(wire.image_inspect(img, oci=oci, listed=listed, users=users))


async def tag(request: web.Request) -> web.Response:
    repo = request.query.get("repo")
    if not repo:
        raise errors.InvalidArgument("repository name is required")
    tag_name = request.query.get("tag") or "latest"
    await services(request).images.tag_image(request.match_info["name"], repo, tag_name)
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    await _platforms_match(request, [request.match_info["name"]])  # a single-platform image goes if it matches
    items = await services(request).images.remove(request.match_info["name"], force=flag(request, "force"),
                                                  prune=not flag(request, "noprune"))
    return json_response(wire.delete_items(items))


async def attestations(request: web.Request) -> web.Response:
    """API 1.55's attestations of an image: none are stored (a single-platform store keeps no attestation
    manifests), so an existing image has an empty list, as dockerd answers then."""
    await asyncio.to_thread(services(request).images.get, request.match_info["name"])
    return json_response([])


def add_routes(add: Any) -> None:
    distribution.add_routes(add)  # /auth, search, push, /distribution: before the catch-alls below
    add("POST", "/images/load", load)
    add("POST", "/images/prune", prune)
    add("GET", "/images/get", save)
    add("GET", "/images/{name:.+}/get", save)
    add("GET", "/images/{name:.+}/history", history)
    add("POST", "/images/create", create)
    add("GET", "/images/json", list_)
    add("GET", "/images/{name:.+}/json", inspect)
    add("GET", "/images/{name:.+}/attestations", attestations)
    add("POST", "/images/{name:.+}/tag", tag)
    add("DELETE", "/images/{name:.+}", remove)


