"""``remote=``: a build context the daemon fetches itself, as dockerd's remotecontext.Detect does:
a git URL (``https://.../repo.git#ref:subdir``, ``git://``, ``git@``, ``github.com/...``) cloned
with the host's ``git``, or an http(s) URL whose body is a (possibly compressed) tar of the context
or, when it is no archive, the Dockerfile itself."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from servin.build.context import is_archive
from servin.build.download import download
from servin.build.steps import BuildSink, StreamText
from servin.errors import InvalidArgument
from servin.images import union
from servin.images.layers import extract_layer

_GIT_SUFFIX = re.compile(r"\.git(?:#.+)?$")
GIT_TIMEOUT = 600


def is_git_url(url: str) -> bool:
    """dockerd's urlutil.IsGitURL."""
    if url.startswith(("http://", "https://")) and _GIT_SUFFIX.search(url):
        return True
    return url.startswith(("git://", "github.com/", "git@"))


async def _git(*args: str, cwd: Path) -> None:
    # no prompts; a repository may not name host paths as its submodules (buildkit's protocol.file rule)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "GIT_PROTOCOL_FROM_USER": "0"}
    proc = await asyncio.create_subprocess_exec("git", "-c", "protocol.file.allow=never", *args, cwd=cwd, env=env,
                                                stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        text = out.decode("utf-8", "replace").strip()
        raise InvalidArgument(f"error fetching: {text}: exit status {proc.returncode}")


async def clone(url: str, dest: Path) -> Path:
    """Clone ``url#ref:subdir`` into ``dest``; the context directory (the subdir, inside the clone)."""
    remote, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    if remote.startswith("github.com/"):
        remote = "https://" + remote
    if ref.startswith("-"):  # it would be read as an option of git fetch
        raise InvalidArgument(f"invalid refspec: {ref}")
    dest.mkdir(mode=0o700, parents=True)
    await _git("init", "-q", cwd=dest)
    await _git("remote", "add", "origin", remote, cwd=dest)
    try:
        await _git("fetch", "-q", "--depth", "1", "--", "origin", ref or "HEAD", cwd=dest)
    except InvalidArgument:
        await _git("fetch", "-q", "origin", cwd=dest)  # a commit a shallow fetch cannot name
    await _git("checkout", "-q", "FETCH_HEAD", cwd=dest)
    if (dest / ".gitmodules").exists():
        await _git("submodule", "update", "-q", "--init", "--recursive", "--depth", "1", cwd=dest)
    if not subdir:
        return dest
    found = union.resolve([dest], subdir)  # symlinks followed inside the clone only
    if found is None or not found.is_dir:
        raise InvalidArgument(f"error checking context: subdirectory {subdir} does not exist in {remote}")
    return Path(found.path)


async def fetch(url: str, dest: Path, sink: BuildSink) -> Path:
    """The context of ``url`` under the new directory ``dest``; its directory."""
    if is_git_url(url):
        return await clone(url, dest)
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"remote context {url} is neither a git repository nor an http(s) URL")
    sink(StreamText(f"Downloading build context from remote url: {url}\n"))
    fetched = await download(url, dest.with_name(dest.name + "-download"), sink, name="context")
    with open(fetched, "rb") as f:
        head = f.read(512)
    dest.mkdir(mode=0o700)
    if is_archive(head):
        def extract() -> None:
            with open(fetched, "rb") as f:
                extract_layer(f, dest)

        await asyncio.to_thread(extract)
    else:
        os.replace(fetched, dest / "Dockerfile")
    return dest
