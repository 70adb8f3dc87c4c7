"""/api/v1/images: the list (one item per tag, Docker's image filters as `filter=key=value`), details with
config and history, pull through the engine's registry service with the daemon's own credentials (one pull
of a reference at a time), and removal, over the services the Docker image routes use."""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import Any

from aiohttp import web

from servin import errors
from servin.images import reference as refs
from servin.images.model import GO_ZERO_TIME_UNIX, Image, format_rfc3339_nano
from servin.images.progress import ProgressEvent
from servin.images.query import created_at
from servin.manage import envelope
from servin.manage.engine import engine
from servin.registry import progress

FILTERS = ("before", "dangling", "label", "reference", "since")  # what images/query.select_images reads
NONE = "<none>"  # the repository and tag of an untagged image, as `docker images` shows them
ZERO_TIME = "0001-01-01T00:00:00Z"
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
PULLS = web.AppKey("servin.manage.images.pulls", set)  # the references being pulled now


def add_routes(app: web.Application) -> None:
    app[PULLS] = set()
    app.router.add_get("/api/v1/images", list_images)
    app.router.add_post("/api/v1/images/pull", pull)
    app.router.add_get("/api/v1/images/{id:.+}", detail)
    app.router.add_delete("/api/v1/images/{id:.+}", remove)


def split_tag(repo_tag: str) -> tuple[str, str]:
    """`localhost:5000/app:1` → (`localhost:5000/app`, `1`): the tag is after the last colon past the last slash."""
    repo, sep, tag = repo_tag.rpartition(":")
    return (repo, tag) if sep and "/" not in tag else (repo_tag, NONE)


def names(img: Image) -> list[tuple[str, str]]:
    """(repository, tag) of each tag; a digest-only image its repository with tag <none>; else <none> twice."""
    if img.repo_tags:
        return [split_tag(t) for t in img.repo_tags]
    if img.repo_digests:
        return [(img.repo_digests[0].partition("@")[0], NONE)]
    return [(NONE, NONE)]


def item(img: Image, repository: str, tag: str) -> dict[str, Any]:
    return {"id": img.id, "repository": repository, "tag": tag, "created": format_rfc3339_nano(created_at(img)),
            "size": img.size}


def filters_of(request: web.Request) -> dict[str, list[str]]:
    """`filter=key=value`, repeated: the filters of `docker images` (FILTERS)."""
    filters: dict[str, list[str]] = {}
    for text in request.query.getall("filter", []):
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise errors.InvalidParameter(f"filter must be key=value, not {text!r}")
        if name not in FILTERS:
            raise errors.InvalidParameter(f"invalid filter {name!r}: one of {', '.join(FILTERS)}")
        filters.setdefault(name, []).append(value)
    return filters


async def list_images(request: web.Request) -> web.Response:
    filters = filters_of(request)
    try:
        images = await engine(request).images.select(filters, all_=envelope.flag(request, "all"))
    except (errors.InvalidArgument, errors.NotFound) as exc:  # a bad value, a before/since image not known
        raise errors.InvalidParameter(f"invalid filter: {exc.message}") from None
    return envelope.ok(envelope.paginate(request, [item(img, repo, tag) for img in images
                                                   for repo, tag in names(img)]))


def named(img: Image, ref: str) -> tuple[str, str]:
    """The (repository, tag) `ref` names when it is one of the image's tags, else the image's first."""
    try:
        wanted = refs.parse_tagged(ref).familiar()
    except errors.InvalidArgument:  # an ID or short ID
        wanted = ""
    return split_tag(wanted) if wanted in img.repo_tags else names(img)[0]


async def detail(request: web.Request) -> web.Response:
    e, ref = engine(request), request.match_info["id"]
    img = await asyncio.to_thread(e.images.get, ref)
    history = await asyncio.to_thread(e.images.history, img.id)
    config = img.run_config
    return envelope.ok({
        **item(img, *named(img, ref)),
        "architecture": img.architecture, "os": img.os, "author": img.author,
        "config": {"exposed_ports": dict(config.get("ExposedPorts") or {}), "env": list(img.env),
                   "cmd": None if img.cmd is None else list(img.cmd)},
        "history": [{"created": _unix_rfc3339(h.created), "created_by": h.created_by, "comment": h.comment}
                    for h in history],
    })


def _unix_rfc3339(seconds: int) -> str:
    if seconds == GO_ZERO_TIME_UNIX:
        return ZERO_TIME
    return format_rfc3339_nano(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))


async def remove(request: web.Request) -> web.Response:
    e, ref = engine(request), request.match_info["id"]
    force, prune = envelope.flag(request, "force"), not envelope.flag(request, "noprune")
    img = await asyncio.to_thread(e.images.get, ref)
    repository, tag = named(img, ref)
    items = await e.images.remove(ref, force=force, prune=prune)
    return envelope.ok({"id": img.id, "repository": repository, "tag": tag,
                        "untagged": [i.untagged for i in items if i.untagged is not None],
                        "deleted": [i.deleted for i in items if i.deleted is not None]})


def pull_reference(body: dict[str, Any]) -> refs.Reference:
    repository = envelope.optional_str(body, "repository")
    if not repository:
        raise errors.InvalidArgument("repository is required")
    tag = envelope.optional_str(body, "tag") or "latest"
    ref = refs.parse_normalized(repository)
    if ref.tag is not None or ref.digest is not None:
        raise errors.InvalidArgument(f"repository {repository!r} carries a tag or digest: give it in tag")
    if _DIGEST_RE.match(tag):
        return refs.parse_normalized(f"{ref.name}@{tag}")
    return ref.with_tag(tag)


async def pull(request: web.Request) -> web.Response:
    e = engine(request)
    ref = pull_reference(await envelope.json_object(request, allowed=("repository", "tag")))
    running: set[str] = request.app[PULLS]
    if str(ref) in running:
        raise errors.Conflict(f"a pull of {ref.familiar()} is already in progress")
    running.add(str(ref))
    try:
        await e.registry.pull(ref, e.registry_auth(ref.domain), None, progress.Output(_discard))
    except (errors.NotFound, errors.InvalidArgument):
        raise  # not in the registry (404), a bad name or certificate setting (400)
    except errors.ServinError as exc:  # the registry could not be reached, refused us, or answered an error
        raise errors.UpstreamFailed(exc.message) from None
    finally:
        running.discard(str(ref))
    img = await asyncio.to_thread(e.images.get, str(ref))
    return envelope.ok({"id": img.id, "repository": ref.familiar_name(), "tag": ref.tag or ref.digest,
                        "size": img.size})


def _discard(event: ProgressEvent) -> None:
    """Progress is not streamed: the answer comes when the image is stored."""
