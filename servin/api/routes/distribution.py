"""Registry endpoints: pull (POST /images/create?fromImage=), push, /auth, /distribution, search."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from servin import errors
from servin.api import streams
from servin.api.context import json_body, services
from servin.api.errors import json_response
from servin.api.wire import images as wire_images
from servin.api.wire import platforms
from servin.api.wire import progress as wire_progress
from servin.api.wire import system as wire_system
from servin.api.wire.filters import parse_filters
from servin.images import reference as refs
from servin.images.progress import ProgressEvent
from servin.registry import auth as auth_mod
from servin.registry import manifest as mf
from servin.registry import progress
from servin.registry import search as search_mod
from servin.registry.service import RegistryService

_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def registry(request: web.Request) -> RegistryService:
    return services(request).registry


class ProgressStream:
    """Progress lines into a 200 stream that opens with the first line; a client that goes away
    cancels the transfer (its temp files go with it)."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.resp: web.StreamResponse | None = None
        self._queue: list[bytes] = []
        self._wake = asyncio.Event()
        self._pump: asyncio.Future[None] | None = None
        self._closing = False
        self._owner = asyncio.current_task()

    def write(self, event: ProgressEvent) -> None:
        self._push(wire_progress.render(event))

    def fail(self, message: str) -> None:
        """The error that ends a stream already under way, as its last line."""
        self._push(wire_progress.error(message))

    def _push(self, msg: dict[str, Any]) -> None:
        self._queue.append(wire_progress.dumps(msg))
        if self._pump is None:
            self._pump = asyncio.ensure_future(self._run())
        self._wake.set()

    async def _run(self) -> None:
        try:
            self.resp = await streams.open_stream(self.request, "application/json")
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    batch = b"".join(self._queue)
                    self._queue.clear()
                    await self.resp.write(batch)
                if self._closing:
                    return
        except (ConnectionResetError, BrokenPipeError, RuntimeError):
            if self._owner is not None and not self._closing:
                self._owner.cancel()

    async def finish(self) -> web.StreamResponse:
        if self._pump is None:
            self._pump = asyncio.ensure_future(self._run())
        self._closing = True
        self._wake.set()
        await self._pump
        assert self.resp is not None
        try:
            await self.resp.write_eof()
        except (ConnectionResetError, BrokenPipeError, RuntimeError):
            pass
        return self.resp


def _creds(request: web.Request) -> auth_mod.AuthConfig:
    return auth_mod.decode_header(request.headers.get("X-Registry-Auth"))


async def pull(request: web.Request) -> web.StreamResponse:
    """POST /images/create?fromImage=NAME&tag=TAG|DIGEST&platform=…"""
    q = request.query
    image = q["fromImage"].removesuffix(":")  # `pull -a` may send "name:", as dockerd tolerates
    ref = refs.parse_normalized(image)
    tag = q.get("tag", "")
    if tag:
        ref = ref.name_only()
        if _DIGEST_RE.match(tag):
            ref = refs.parse_normalized(f"{ref.name}@{tag}")
        else:
            ref = ref.with_tag(tag)
    platform = mf.parse_platform(q.get("platform", ""))
    stream = ProgressStream(request)
    out = progress.Output(stream.write)
    try:
        await registry(request).pull(ref, _creds(request), platform, out,
                                     all_tags=ref.tag is None and ref.digest is None)
    except errors.ServinError as exc:
        if not out.started:
            raise
        stream.fail(exc.message)
    return await stream.finish()


async def push(request: web.Request) -> web.StreamResponse:
    """POST /images/{name}/push?tag=TAG (no tag: every tag of the repository)."""
    ref = refs.parse_normalized(request.match_info["name"])
    tag = request.query.get("tag", "")
    if tag:
        ref = ref.with_tag(tag)
    wanted = platforms.decode(request.query.getall("platform", []))
    if wanted:  # API 1.46: push the image of that platform, which must be this tag's
        img = await asyncio.to_thread(services(request).images.get, str(ref))
        platforms.require(img, request.match_info["name"], wanted)
    stream = ProgressStream(request)
    out = progress.Output(stream.write)
    try:
        await registry(request).push(ref, _creds(request), out)
    except errors.ServinError as exc:
        if not out.started:
            raise
        stream.fail(exc.message)
    return await stream.finish()


async def auth(request: web.Request) -> web.Response:
    creds = auth_mod.from_dict(wire_system.parse_auth(await json_body(request)))
    token = await registry(request).login(creds)
    return json_response({"Status": "Login Succeeded", "IdentityToken": token})


async def distribution_inspect(request: web.Request) -> web.Response:
    ref = refs.parse_normalized(request.match_info["name"])
    return json_response(await registry(request).inspect(ref, _creds(request)))


async def search(request: web.Request) -> web.Response:
    q = request.query
    term = q.get("term", "")
    if not term:
        raise errors.InvalidArgument("term is required")
    try:
        limit = int(q.get("limit") or 25)
    except ValueError:
        raise errors.InvalidArgument(f"invalid limit: {q.get('limit')}") from None
    if not 1 <= limit <= 100:
        raise errors.InvalidArgument("limit must be between 1 and 100")
    filters = parse_filters(q.get("filters"), search_mod.FILTERS)
    results = await registry(request).search(term, limit, _creds(request), filters)
    return json_response([wire_images.search_result(r) for r in results])


def add_routes(add: Any) -> None:
    """Registered before /images/{name}/… catch-alls (images.add_routes calls this first)."""
    add("POST", "/auth", auth)
    add("GET", "/images/search", search)
    add("GET", "/distribution/{name:.+}/json", distribution_inspect)
    add("POST", "/images/{name:.+}/push", push)


