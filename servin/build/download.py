"""ADD <url>: the file downloaded by the daemon (dockerd's downloadSource), streamed to the build's
work directory with its progress: mode 0600, the mtime of its Last-Modified, never extracted. The
name is the URL path's last element."""

from __future__ import annotations

import asyncio
import email.utils
import os
import posixpath
import urllib.parse
from pathlib import Path

import aiohttp

from servin.build.steps import BuildSink
from servin.errors import InvalidArgument
from servin.images.progress import LayerProgress

TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def filename_of(url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    name = posixpath.basename(path.rstrip("/")) if path else ""
    if not name or name in (".", ".."):
        raise InvalidArgument(f"cannot determine filename from url: {url}")
    return name


async def download(url: str, into: Path, sink: BuildSink, *, name: str = "") -> Path:
    """``url`` into the directory ``into`` (made here) as ``name`` (default: the URL's); its path."""
    name = name or filename_of(url)
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = into / name
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(url) as resp:
            if resp.status >= 400:
                raise InvalidArgument(f"failed to GET {url} with status {resp.status} {resp.reason}: "
                                      f"{(await resp.text(errors='replace'))[:200]}")
            total = resp.content_length or 0
            done = 0
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    await asyncio.to_thread(f.write, chunk) if len(chunk) > (1 << 19) else f.write(chunk)
                    done += len(chunk)
                    sink(LayerProgress(id="", action="Downloading", current=done, total=total))
            modified = resp.headers.get("Last-Modified")
    except aiohttp.ClientError as exc:
        raise InvalidArgument(f"failed to GET {url}: {exc}") from None
    if modified:
        when = email.utils.parsedate_to_datetime(modified) if _parses(modified) else None
        if when is not None:
            os.utime(target, (when.timestamp(), when.timestamp()))
    return target


def _parses(text: str) -> bool:
    try:
        email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return False
    return True
