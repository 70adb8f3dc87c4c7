"""/images/... handlers: load, save, import, list, inspect, history, tag, remove, prune."""

from __future__ import annotations

import asyncio
import contextlib
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
from servin.api.context import flag, services
from servin.api.wire import images as wire
from servin.api.wire.filters import parse_filters
from servin.core.query import parse_until
from servin.core.events import Event
from servin.core.query import label_matches
from servin.images import save as save_images
from servin.images.query import created_at, select_images

LIST_FILTERS = frozenset({"dangling", "label", "before", "since", "reference"})
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
    path = await _spool(request)
    s = services(request)
    quiet = flag(request, "quiet")
    resp = await streams.open_stream(request, "application/json")
    loop = asyncio.get_running_loop()
    progress: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def report(short_id: str, current: int, total: int) -> None:
        loop.call_soon_threadsafe(progress.put_nowait, wire.load_progress(short_id, current, total))

    async def run() -> list[str]:
        try:
            return await asyncio.to_thread(s.images.load_archive, path, None if quiet else report)
        finally:
            loop.call_soon_threadsafe(progress.put_nowait, None)

    task = asyncio.ensure_future(run())
    try:
        while (msg := await progress.get()) is not None:
            await streams.write_json_line(resp, msg)
        lines, error = await task, None
    except errors.ServinError as exc:  # dockerd reports a bad archive inside the 200 stream
        lines, error = [], exc.message
    finally:
        if not task.done():
            await asyncio.wait([task])
        path.unlink(missing_ok=True)
    for line in lines:
        await streams.write_json_line(resp, {"stream": line + "\n"})
        if line.startswith("Loaded image"):  # as dockerd: the image ID is the actor (and the name)
            with contextlib.suppress(errors.ServinError):
                s.events.publish(_image_event("load", s.images.get(line.rpartition(": ")[2]).id))
    if error is not None:
        await streams.write_json_line(resp, {"errorDetail": {"message": error}, "error": error})
    await resp.write_eof()
    return resp


async def create(request: web.Request) -> web.StreamResponse:
    q = request.query
    if q.get("fromSrc") == "-":
        path = await _spool(request)
        repo = q.get("repo") or None
        tag = q.get("tag") or None
        try:
            img = await asyncio.to_thread(
                services(request).images.import_tarball, path, repo=repo, tag=tag,
                changes=list(q.getall("changes", [])), message=q.get("message", ""))
        finally:
            path.unlink(missing_ok=True)
        services(request).events.publish(_image_event("import", img.id))
        resp = await streams.open_stream(request, "application/json")
        await streams.write_json_line(resp, {"status": img.id})
        await resp.write_eof()
        return resp
    if q.get("fromSrc"):
        raise errors.NotImplementedYet("importing from a URL is not implemented in Servin yet")
    if q.get("fromImage"):
        from servin.api.routes import distribution

        return await distribution.pull(request)
    raise errors.InvalidArgument("fromImage or fromSrc is required")


async def list_(request: web.Request) -> web.Response:
    store = services(request).images
    filters = parse_filters(request.query.get("filters"), LIST_FILTERS)

    def select() -> list[Any]:
        return select_images(store.list(), filters, all_=flag(request, "all"), resolve=store.get,
                             label_matches=label_matches)

    imgs = await asyncio.to_thread(select)
    return json_response([wire.image_summary(i) for i in imgs])


async def history(request: web.Request) -> web.Response:
    items = await asyncio.to_thread(services(request).images.history, request.match_info["name"])
    return json_response(wire.history(items))


async def save(request: web.Request) -> web.StreamResponse:
    """GET /images/get?names=... and /images/{name}/get: a docker-archive, streamed."""
    s = services(request)
    names = [request.match_info["name"]] if "name" in request.match_info else list(request.query.getall("names", []))
    if not names:
        raise errors.InvalidArgument("no images to save: names is required")
    selection = await asyncio.to_thread(save_images.selection_names, s.images, names)
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

    def produce() -> None:
        try:
            with io.BufferedWriter(_Out(), 1 << 20) as out:
                save_images.write_archive(s.images, selection, out)
        finally:
            if not gone.is_set():
                asyncio.run_coroutine_threadsafe(chunks.put(None), loop).result()

    task = asyncio.ensure_future(asyncio.to_thread(produce))
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
    for image_id, _ in selection:
        s.events.publish(_image_event("save", image_id))
    await resp.write_eof()
    return resp


async def prune(request: web.Request) -> web.Response:
    s = services(request)
    filters = parse_filters(request.query.get("filters"), PRUNE_FILTERS)
    dangling_only = True
    if "dangling" in filters:
        values = set(filters["dangling"])
        if values & {"false", "0"}:
            dangling_only = False
        elif not values & {"true", "1"}:
            raise errors.InvalidArgument(f"Invalid filter 'dangling=[{' '.join(filters['dangling'])}]'")
    until = None
    if filters.get("until"):
        until = parse_until(filters["until"][0]) / 1e9

    def select(img: Any) -> bool:
        if until is not None and created_at(img).timestamp() > until:
            return False
        if "label" in filters and not label_matches(img.labels, filters["label"]):
            return False
        return not ("label!" in filters and label_matches(img.labels, filters["label!"]))

    def run() -> tuple[list[Any], int, dict[str, str], set[str]]:
        refs_before = {r: i.id for i in s.images.list() for r in (*i.repo_tags, *i.repo_digests)}
        ids_before = {i.id for i in s.images.list()}
        items, reclaimed = s.images.prune(dangling_only=dangling_only, select=select, users=_users(s))
        return items, reclaimed, refs_before, ids_before

    items, reclaimed, refs_before, ids_before = await asyncio.to_thread(run)
    for item in items:
        if item.untagged and item.untagged in refs_before:
            s.events.publish(_image_event("untag", refs_before[item.untagged]))
        if item.deleted in ids_before:
            s.events.publish(_image_event("delete", item.deleted))
    s.events.publish(Event(type="image", action="prune", actor_id="", attributes={"reclaimed": str(reclaimed)}))
    return json_response({"ImagesDeleted": wire.delete_items(items) or None, "SpaceReclaimed": reclaimed})


def _users(s: Any) -> Any:
    def users(image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in s.containers.list() if c.image_id == image_id]

    return users


async def inspect(request: web.Request) -> web.Response:
    img = await asyncio.to_thread(services(request).images.get, request.match_info["name"])
    return json_response(wire.image_inspect(img))


async def tag(request: web.Request) -> web.Response:
    repo = request.query.get("repo")
    if not repo:
        raise errors.InvalidArgument("repository name is required")
    tag_name = request.query.get("tag") or "latest"
    img = await asyncio.to_thread(services(request).images.tag, request.match_info["name"], repo, tag_name)
    services(request).events.publish(_image_event("tag", img.id, name=f"{repo}:{tag_name}"))
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    s = services(request)
    name = request.match_info["name"]
    image_id = (await asyncio.to_thread(s.images.get, name)).id
    ids_before = {i.id for i in await asyncio.to_thread(s.images.list)}
    items = await asyncio.to_thread(s.images.delete, name, force=flag(request, "force"), users=_users(s),
                                    prune=not flag(request, "noprune"))
    # as dockerd: the image ID is the actor of untag and delete; removed layers make no events
    for item in items:
        if getattr(item, "untagged", None):
            s.events.publish(_image_event("untag", image_id))
        if getattr(item, "deleted", None) in ids_before:
            s.events.publish(_image_event("delete", item.deleted))
    return json_response(wire.delete_items(items))


def _image_event(action: str, image_id: str, name: str = "") -> Any:
    return Event(type="image", action=action, actor_id=image_id, attributes={"name": name or image_id})


def add_routes(add: Any) -> None:
    from servin.api.routes import distribution

    distribution.add_routes(add)  # /auth, search, push, /distribution: before the catch-alls below
    add("POST", "/images/load", load)
    add("POST", "/images/prune", prune)
    add("GET", "/images/get", save)
    add("GET", "/images/{name:.+}/get", save)
    add("GET", "/images/{name:.+}/history", history)
    add("POST", "/images/create", create)
    add("GET", "/images/json", list_)
    add("GET", "/images/{name:.+}/json", inspect)
    add("POST", "/images/{name:.+}/tag", tag)
    add("DELETE", "/images/{name:.+}", remove)


