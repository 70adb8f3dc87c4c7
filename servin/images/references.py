"""Tags and digests pointing at images: ``repositories.json`` in Docker's shape
(``{"Repositories": {repo: {familiar ref: id}}}``), as moby's reference store, and the
resolution of what a user typed (``busybox``, ``sha256:…``, ``3f4b``) to an image id."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from servin.errors import InvalidArgument, NotFound
from servin.images import reference as refs
from servin.images.durable import atomic_write, json_bytes
from servin.images.reference import Reference


class ReferenceStore:
    """Fully qualified references (``str(Reference)``) → image id; ``state`` guards the map."""

    def __init__(self, path: Path, state: threading.RLock) -> None:
        self._path = path
        self._state = state
        self._refs: dict[str, str] = {}

    def open(self, known: Callable[[str], bool]) -> None:
        """Read the references whose image is ``known``; skip the others and unparsable ones."""
        if not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_bytes())
        except ValueError:
            data = {}
        for by_ref in (data.get("Repositories") or {}).values():
            for ref_s, image_id in by_ref.items():
                if not known(image_id):
                    continue
                try:
                    ref = refs.parse_normalized(ref_s)
                except InvalidArgument:
                    continue
                self._refs[str(ref)] = image_id

    def _save(self) -> None:
        repos: dict[str, dict[str, str]] = {}
        for ref_s in sorted(self._refs):
            ref = refs.parse_normalized(ref_s)
            repos.setdefault(ref.familiar_name(), {})[ref.familiar()] = self._refs[ref_s]
        atomic_write(self._path, json_bytes({"Repositories": repos}))

    # ------------------------------------------------------------------ reads

    def target(self, ref: Reference) -> str | None:
        return self._refs.get(str(ref))

    def of(self, image_id: str) -> list[Reference]:
        """The references pointing at ``image_id``."""
        with self._state:
            return [refs.parse_normalized(r) for r, t in self._refs.items() if t == image_id]

    def familiar_of(self, image_id: str) -> tuple[list[str], list[str]]:
        """(tags, digests) of ``image_id``, familiar strings, unsorted."""
        tags: list[str] = []
        digests: list[str] = []
        with self._state:
            for ref_s, target in self._refs.items():
                if target == image_id:
                    ref = refs.parse_normalized(ref_s)
                    (digests if ref.digest is not None else tags).append(ref.familiar())
        return tags, digests

    def named(self, name: str) -> list[Reference]:
        """The references of repository ``name`` (fully qualified), sorted the familiar way."""
        with self._state:
            found = (r for r in (refs.parse_normalized(k) for k in self._refs) if r.name == name)
            return sorted(found, key=lambda r: r.familiar())

    # ------------------------------------------------------------------ writes

    def set(self, ref: Reference, image_id: str) -> str | None:
        """Point ``ref`` at ``image_id``; returns the id it pointed at before (if different)."""
        with self._state:
            key = str(ref)
            old = self._refs.get(key)
            self._refs[key] = image_id
            self._save()
            return old if old != image_id else None

    def remove(self, ref: Reference) -> None:
        with self._state:
            if self._refs.pop(str(ref), None) is None:
                raise NotFound(f"No such image: {ref.familiar()}")
            self._save()


def resolve(ref_or_id: str, references: ReferenceStore, exists: Callable[[str], bool],
            by_prefix: Callable[[str], list[str]]) -> str:
    """Docker's GetImage: full id, tag/digest reference, then unambiguous id prefix."""
    s = ref_or_id
    if refs.is_full_id(s):
        full = s if s.startswith("sha256:") else "sha256:" + s
        if exists(full):
            return full
        raise NotFound(f"No such image: {full}")
    ref = refs.parse_normalized(s)  # InvalidArgument, as Docker's ParseAnyReference
    target = references.target(ref.tag_name_only())
    if target is not None and exists(target):
        return target
    found = by_prefix(s.removeprefix("sha256:"))
    if len(found) == 1:
        return found[0]
    raise NotFound(f"No such image: {ref.tag_name_only().familiar()}")


def search(term: str, by_prefix: Callable[[str], list[str]]) -> str:
    """An image by (short) ID, as dockerd's image store Search."""
    found = by_prefix(term.removeprefix("sha256:"))
    if len(found) == 1:
        return found[0]
    raise NotFound(f"No such image: {term}")


def new_tag(repo: str | None, tag: str | None) -> Reference | None:
    """The reference an import, commit or tag names (`repo[:tag]`), if any; never a digest."""
    if not repo:
        return None
    ref = refs.parse_normalized(repo)
    if ref.digest is not None:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    if tag:
        ref = ref.with_tag(tag)
    return ref.tag_name_only()
