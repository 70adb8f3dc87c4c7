"""/images/... handlers: load, import, list, inspect, tag, remove."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from servin import errors
from servin.api import streams
from servin.api.errors import json_response
from servin.api.context import flag, services
from servin.api.wire import images as wire
from servin.api.wire.filters import parse_filters
from servin.core.query import label_matches

LIST_FILTERS = frozenset({"dangling", "label", "before", "since", "reference"})


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
    try:
        lines = await asyncio.to_thread(services(request).images.load_archive, path)
        error = None
    except errors.ServinError as exc:  # dockerd reports a bad archive inside the 200 stream
        lines, error = [], exc.message
    finally:
        path.unlink(missing_ok=True)
    resp = await streams.open_stream(request, "application/json")
    for line in lines:
        await streams.write_json_line(resp, {"stream": line + "\n"})
        loaded = line.rpartition(": ")[2]
        if line.startswith("Loaded image"):
            services(request).events.publish(_image_event("load", loaded, name=loaded))
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
    imgs = await asyncio.to_thread(store.list)
    if "label" in filters:
        imgs = [i for i in imgs if label_matches(i.labels, filters["label"])]
    if "dangling" in filters:
        want = filters["dangling"][0].lower() in ("true", "1")
        imgs = [i for i in imgs if (not i.repo_tags) == want]
    if "reference" in filters:
        import fnmatch

        def matches(img: Any) -> bool:
            for tag in img.repo_tags:
                repo = tag.rsplit(":", 1)[0]
                if any(fnmatch.fnmatch(tag, p) or fnmatch.fnmatch(repo, p) for p in filters["reference"]):
                    return True
            return False

        imgs = [i for i in imgs if matches(i)]
    imgs.sort(key=lambda i: i.created, reverse=True)
    return json_response([wire.image_summary(i) for i in imgs])


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

    def users(image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in s.containers.list() if c.image_id == image_id]

    name = request.match_info["name"]
    image_id = (await asyncio.to_thread(s.images.get, name)).id
    items = await asyncio.to_thread(s.images.delete, name, force=flag(request, "force"), users=users)
    # as dockerd: the image ID is the actor of untag and delete; removed layers make no events
    for item in items:
        if getattr(item, "untagged", None):
            s.events.publish(_image_event("untag", image_id))
        if getattr(item, "deleted", None) == image_id:
            s.events.publish(_image_event("delete", image_id))
    return json_response(wire.delete_items(items))


def _image_event(action: str, image_id: str, name: str = "") -> Any:
    from servin.core.events import Event

    return Event(type="image", action=action, actor_id=image_id, attributes={"name": name or image_id})


def add_routes(add: Any) -> None:
    from servin.api.routes import distribution

    distribution.add_routes(add)  # /auth, search, push, /distribution: before the catch-alls below
    add("POST", "/images/load", load)
    add("POST", "/images/create", create)
    add("GET", "/images/json", list_)
    add("GET", "/images/{name:.+}/json", inspect)
    add("POST", "/images/{name:.+}/tag", tag)
    add("DELETE", "/images/{name:.+}", remove)


