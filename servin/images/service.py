"""The image service: the one object the API and the core talk to about images (moby's
daemon/images.ImageService). It holds the three stores under one root::

    images/       configs by digest            content.py    ContentStore
    layers/ ...   layers by diff_id            layer_store.py LayerStore
    repositories.json  tags and digests        references.py ReferenceStore

and answers with domain objects (model.py). Mutations are serialized by one lock; reads take a
short state lock shared by the stores. The blocking methods run in a worker thread (the caller's
``asyncio.to_thread``); the ``async`` ones are the API's operations: they run the work off the
event loop and publish the image events (events.py) on it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import io
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from servin.errors import InvalidArgument, NotFound, ServinError
from servin.images import archives, newimage, query, save, squash, union
from servin.images import history as history_mod
from servin.images import reference as refs
from servin.images.content import ContentStore, ImageRecord, now_rfc3339, parse_config
from servin.images.deletion import ImageDeleter, UsersFn
from servin.images.durable import json_bytes
from servin.images.events import ImageEvent, ImageEventPublisher, discard, named
from servin.images.layer_store import LayerStore
from servin.images.manifests import ManifestSource, ManifestStore
from servin.images.model import BlobRef, DeleteItem, HistoryItem, Image
from servin.images.progress import ProgressSink
from servin.images.reference import Reference
from servin.images.references import ReferenceStore, new_tag, resolve, search

SaveSelection = list[tuple[str, list[Reference]]]  # (image id, the tags to record) in request order


def _no_users(image_id: str) -> list[tuple[str, bool]]:
    return []


class ImageService:
    def __init__(self, root: Path, *, events: ImageEventPublisher = discard, users: UsersFn = _no_users) -> None:
        """``events`` receives the image events (on the event loop); ``users(image id)`` lists the
        containers made from an image, ``(id, running)``, for the API's delete and prune rules."""
        self.root = Path(root)
        self.events = events
        self._users = users
        self._write = threading.RLock()
        self._state = threading.RLock()
        self.root.mkdir(parents=True, exist_ok=True)
        self.layers = LayerStore(self.root, self._state)
        self._content = ContentStore(self.root / "images", self._state)
        self._refs = ReferenceStore(self.root / "repositories.json", self._state)
        self._deleter = ImageDeleter(self._content, self._refs, self.layers, self._state, self._resolve)
        self.manifests = ManifestStore(self.root, config_raw=self._content.raw, tar_size=self.layers.tar_size)
        self.layers.open()
        self._content.open(self.layers.has)
        self.manifests.open(self._content.__contains__)
        self.layers.collect(self._content.used_layers())
        self._refs.open(lambda image_id: image_id in self._content)

    # ------------------------------------------------------------------ queries

    def _resolve(self, ref_or_id: str) -> str:
        with self._state:
            return resolve(ref_or_id, self._refs, self._content.__contains__, self._content.by_prefix)

    def _image(self, image_id: str) -> Image:
        with self._state:
            rec = self._content.record(image_id)
            tags, digests = self._refs.familiar_of(image_id)
            size = sum(self.layers.size(d) for d in rec.diff_ids)
        return rec.image(tags=tags, digests=digests, size=size)

    def get(self, ref_or_id: str) -> Image:
        return self._image(self._resolve(ref_or_id))

    def list(self) -> builtins.list[Image]:
        images = [self._image(i) for i in self._content.ids() if i in self._content]
        images.sort(key=lambda im: (im.created_unix, im.id), reverse=True)
        return images

    def exists(self, ref_or_id: str) -> bool:
        try:
            self._resolve(ref_or_id)
        except (NotFound, InvalidArgument):
            return False
        return True

    def references(self, image_id: str) -> builtins.list[Reference]:
        return self._refs.of(image_id)

    def children(self, image_id: str) -> builtins.list[Image]:
        """The images whose parent is ``image_id`` ("": those without one): the build cache's candidates."""
        with self._state:
            ids = [r.id for r in self._content.records() if r.parent == image_id]
            return [self._image(i) for i in ids]

    def config_raw(self, ref_or_id: str) -> bytes:
        """The image config exactly as stored (its sha256 is the image id)."""
        return self._content.raw(self._resolve(ref_or_id))

    def history(self, ref_or_id: str) -> builtins.list[HistoryItem]:
        """``docker history``, as dockerd's ImageHistory (newest step first)."""
        image_id = self._resolve(ref_or_id)

        def tags(i: str) -> tuple[str, ...] | None:
            return tuple(r.familiar() for r in self._refs.of(i) if r.digest is None) or None

        def record(i: str) -> ImageRecord | None:
            return self._content.record(i) if i in self._content else None

        with self._state:
            return history_mod.history(self._content.record(image_id), layer_size=self.layers.size, tags=tags,
                                       record=record)

    def save_selection(self, names: Iterable[str]) -> SaveSelection:
        """What ``docker save NAMES`` exports, as dockerd's parseNames: (image id, its tags to
        record) in request order. A bare repository saves all its tags, an ID none."""
        chosen: dict[str, builtins.list[Reference]] = {}

        def add(image_id: str, ref: Reference | None) -> None:
            tags = chosen.setdefault(image_id, [])
            if ref is not None and ref.digest is None:
                ref = ref.tag_name_only()
                if ref not in tags:
                    tags.append(ref)

        with self._state:
            for name in names:
                if refs.is_full_id(name):
                    add(self._resolve(name), None)
                    continue
                ref = refs.parse_normalized(name)
                if ref.familiar_name() == "sha256" or (ref.tag is None and ref.digest is None):
                    by_name = self._refs.named(ref.name)
                    if ref.familiar_name() != "sha256" and by_name:
                        for r in by_name:
                            add(str(self._refs.target(r)), r)
                        continue
                    add(search(name, self._content.by_prefix), None)
                    continue
                target = self._refs.target(ref)
                if target is None or target not in self._content:
                    raise NotFound("reference does not exist")
                add(target, ref)
        return [*chosen.items()]

    # ------------------------------------------------------------------ the filesystem (the core's view)

    def layer_dirs(self, ref_or_id: str) -> builtins.list[Path]:
        """The image's layer ``diff`` dirs, lowest first (reverse it for overlay's lowerdir).

        Layers are stored by content, so an image may list one twice (two empty RUN or commit
        layers): overlay refuses a lowerdir named twice (ELOOP), and the lower copy of a layer
        that is also higher up can change nothing in the union, so only the highest is kept."""
        image_id = self._resolve(ref_or_id)
        with self._state:
            diff_ids = self._content.record(image_id).diff_ids
        highest_first = [*dict.fromkeys(reversed(diff_ids))]
        return [self.layers.diff_dir(d) for d in reversed(highest_first)]

    def read_file(self, ref_or_id: str, path: str, *, limit: int = 16 << 20) -> bytes | None:
        """Read ``path`` from the image's union view (whiteouts, opaque dirs honoured, symlinks
        followed inside the image's root only: ``images.union``)."""
        found = union.resolve([*reversed(self.layer_dirs(ref_or_id))], path)
        if found is None or not stat.S_ISREG(found.st.st_mode):
            return None
        try:
            fd = os.open(found.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                return f.read(limit)
            except OSError:
                return None

    # ------------------------------------------------------------------ tags, delete, prune

    def _set_tag(self, ref: Reference, image_id: str, *, touch: bool) -> str | None:
        with self._state:
            old = self._refs.set(ref, image_id)
            if touch:
                self._content.touch(image_id)
            return old

    def tag(self, ref_or_id: str, repo: str, tag: str | None = None) -> Image:
        new_ref = refs.parse_normalized(repo)
        if new_ref.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        new_ref = (new_ref.with_tag(tag) if tag else new_ref).tag_name_only()
        with self._write:
            image_id = self._resolve(ref_or_id)
            self._set_tag(new_ref, image_id, touch=True)
            return self._image(image_id)

    def delete(self, ref_or_id: str, *, force: bool, users: UsersFn, prune: bool = True
               ) -> builtins.list[DeleteItem]:
        """``docker rmi``; ``prune=False`` (noprune) keeps untagged parents."""
        with self._write:
            return self._deleter.delete(self._resolve(ref_or_id), ref_or_id, force=force, users=users, prune=prune)

    def prune(self, *, dangling_only: bool, select: Callable[[Image], bool], users: UsersFn
              ) -> tuple[builtins.list[DeleteItem], int]:
        """``docker image prune`` of the images ``select(image)`` keeps (deletion.py)."""
        with self._write:
            return self._deleter.prune(dangling_only=dangling_only, keep=select, image=self._image, users=users)

    def prune_layers(self, keep: Iterable[str] = ()) -> builtins.list[str]:
        """Remove layers no image uses (and not listed in ``keep``); returns their diff_ids."""
        with self._write, self._state:
            used = self._content.used_layers() | set(keep) | self.layers.pinned_ids()
            removed = [d for d in self.layers.all() if d not in used]
            for d in removed:
                self.layers.remove(d)
            return removed

    # ------------------------------------------------------------------ making images

    def _register(self, raw: bytes, cfg: dict[str, Any], source: ManifestSource | None = None, parent: str = "") -> str:
        image_id, new = self._content.register(raw, cfg, parent=parent, has_layer=self.layers.has)
        if new or source is not None:  # a registry's or OCI layout's manifests (manifests.py), or none
            self.manifests.record(image_id, source, anew=new)
        return image_id

    def load_archive(self, path: Path, progress: ProgressSink | None = None) -> builtins.list[str]:
        """``docker load`` (archives.py); ``progress`` follows each new layer."""
        with self._write:
            return archives.load_archive(Path(path), self.layers, self._register,
                                         lambda ref, image_id: self._set_tag(ref, image_id, touch=False), progress)

    def import_tarball(self, path: Path, *, repo: str | None, tag: str | None, changes: builtins.list[str],
                       message: str) -> Image:
        """``docker import``: one layer from the tarball at ``path``, tagged ``repo:tag``."""
        new_ref = new_tag(repo, tag)
        run_config = newimage.import_run_config(changes)
        with self._write:
            with open(path, "rb") as f:
                diff_id = self.layers.ensure(f, None)
            cfg = newimage.imported_config(diff_id, run_config=run_config, message=message, created=now_rfc3339())
            image_id = self._register(json_bytes(cfg), cfg)
            if new_ref is not None:
                self._set_tag(new_ref, image_id, touch=True)
            return self._image(image_id)

    def commit_layer(self, parent_id: str, layer_tar: Path | None, *, config: dict[str, Any],
                     container_config: dict[str, Any], container_id: str, comment: str = "", author: str = "",
                     repo: str | None = None, tag: str | None = None) -> Image:
        """A child of ``parent_id`` whose new layer is ``layer_tar`` (None: no changes, an empty
        layer as dockerd records it), built as dockerd's NewChildImage; tagged ``repo:tag``."""
        new_ref = new_tag(repo, tag)
        with self._write:
            parent_full = self._resolve(parent_id) if parent_id else ""
            pcfg: dict[str, Any] = self._content.record(parent_full).config if parent_full else {}
            new_layer = None
            if layer_tar is not None:
                with open(layer_tar, "rb") as f:
                    new_layer = self.layers.ensure(f, None)
            cfg = newimage.child_config(pcfg, new_layer, config=config, container_config=container_config,
                                        container_id=container_id, comment=comment, author=author,
                                        created=now_rfc3339())
            image_id = self._register(json_bytes(cfg), cfg, parent=parent_full)
            if new_ref is not None:
                self._set_tag(new_ref, image_id, touch=True)
            return self._image(image_id)

    def create_child(self, cfg: dict[str, Any], parent: str) -> Image:
        """An image of layers already stored (``cfg`` a whole image config), child of ``parent``:
        the build cache restoring a step of a --cache-from image, as dockerd's restoreCachedImage."""
        with self._write:
            return self._image(self._register(json_bytes(cfg), cfg, parent=parent))

    def squash(self, image_id: str, parent_id: str) -> Image:
        """``docker build --squash``: ``image_id``'s layers above those of ``parent_id`` (its FROM
        image, "" for scratch) merged into one, in a new image without a parent (squash.py)."""
        with self._write:
            rec = self._content.record(self._resolve(image_id))
            parent = self._content.record(self._resolve(parent_id)) if parent_id else None
            pcfg = parent.config if parent is not None else {}
            kept = squash.squashed_layers(rec.config, pcfg)
            with tempfile.TemporaryFile(dir=self.root) as tar:
                squash.write_diff([self.layers.diff_dir(d) for d in rec.diff_ids], kept, tar)
                tar.seek(0)
                diff_id = self.layers.ensure(tar, None)
            cfg = squash.squashed_config(rec.config, pcfg, diff_id, image_id=rec.id,
                                         parent_id=parent.id if parent is not None else "", image_parent=rec.parent,
                                         created=now_rfc3339())
            return self._image(self._register(json_bytes(cfg), cfg))

    def set_parent(self, image_id: str, parent: str) -> None:
        """Record ``parent`` as the image's parent (a --cache-from image matched on top of it)."""
        with self._write, self._state:
            self._content.set_parent(self._resolve(image_id), self._resolve(parent))

    # ------------------------------------------------------------------ the registry's side (pull, push)

    def has_layer(self, diff_id: str) -> bool:
        return self.layers.has(diff_id)

    def pinned(self, diff_ids: Iterable[str]) -> contextlib.AbstractContextManager[None]:
        """Keep these layers while a pull counts on them (LayerStore.pinned)."""
        return self.layers.pinned(diff_ids)

    def ingest_layer(self, stream: IO[bytes], expected_diff_id: str | None) -> str:
        """Store a layer blob unless present; its diff_id (LayerStore.ingest)."""
        return self.layers.ingest(stream, expected_diff_id)

    def add_image(self, config_raw: bytes, ref: Reference | None, repo_digest: str | None = None,
                  source: ManifestSource | None = None) -> tuple[Image, str | None]:
        """Register an image whose layers are stored (Conflict if one is missing), point the tag
        ``ref`` at it and record ``repo_digest`` (``domain/path@sha256:...``) and the registry's manifests
        (``source``). Returns the image and the id ``ref`` pointed to before when that was another image."""
        cfg = parse_config(config_raw)
        if ref is not None:
            if ref.digest is not None:
                raise InvalidArgument("refusing to create a tag with a digest reference")
            ref = ref.tag_name_only()
        digest_ref = None
        if repo_digest is not None:
            digest_ref = refs.parse_normalized(repo_digest)
            if digest_ref.digest is None or digest_ref.tag is not None:
                raise InvalidArgument(f"invalid repository digest {repo_digest!r}")
        with self._write:
            image_id = self._register(config_raw, cfg, source=source)
            old = None
            if digest_ref is not None:
                self._set_tag(digest_ref, image_id, touch=False)
            if ref is not None:
                old = self._set_tag(ref, image_id, touch=False)
            return self._image(image_id), old

    def record_blob(self, diff_id: str, repository: str, digest: str, media_type: str, size: int) -> None:
        self.layers.record_blob(diff_id, repository, digest, media_type, size)

    def blobs_for(self, diff_id: str) -> builtins.list[BlobRef]:
        return self.layers.blobs_for(diff_id)

    def layer_tar(self, diff_id: str) -> IO[bytes]:
        return self.layers.tar(diff_id)

    def layer_tar_size(self, diff_id: str) -> int:
        return self.layers.tar_size(diff_id)

    # ------------------------------------------------------------------ the API's operations (events on the loop)

    async def select(self, filters: Mapping[str, Sequence[str]], *, all_: bool) -> builtins.list[Image]:
        """``GET /images/json``: the images the filters select (query.py)."""
        wanted = {k: list(v) for k, v in filters.items()}
        return await asyncio.to_thread(
            lambda: query.select_images(self.list(), wanted, all_=all_, resolve=self.get,
                                        label_matches=query.label_matches))

    def created(self, image_id: str, tagged: str = "") -> None:
        """The `create` event of an image a commit made (dockerd's CommitImage), then the `tag` of the
        reference it was given; on the loop, after the commit."""
        self.events(named("create", image_id))
        if tagged:
            self.events(named("tag", image_id, refs.familiar(tagged)))

    def shared_sizes(self) -> dict[str, int]:
        """Each image's bytes in layers another image holds too (`docker images` SharedSize, API 1.42)."""
        images = self.list()
        users: dict[str, int] = {}
        for img in images:
            for diff_id in set(img.diff_ids):
                users[diff_id] = users.get(diff_id, 0) + 1
        return {img.id: sum(self.layers.size(d) for d in set(img.diff_ids) if users[d] > 1) for img in images}

    async def tag_image(self, ref_or_id: str, repo: str, tag: str) -> Image:
        img = await asyncio.to_thread(self.tag, ref_or_id, repo, tag)
        self.events(named("tag", img.id, refs.familiar(f"{repo}:{tag}")))  # `app:1` however the client spelt it
        return img

    async def remove(self, ref_or_id: str, *, force: bool, prune: bool) -> builtins.list[DeleteItem]:
        """``docker rmi``: untag events named by the familiar reference removed, then delete events; the image
        ID the actor, removed layers make none (dockerd's containerd image store)."""
        def run() -> tuple[str, set[str], builtins.list[DeleteItem]]:
            image_id = self.get(ref_or_id).id
            ids_before = set(self._content.ids())
            return image_id, ids_before, self.delete(ref_or_id, force=force, users=self._users, prune=prune)

        image_id, ids_before, items = await asyncio.to_thread(run)
        for item in items:
            if item.untagged:
                self.events(named("untag", image_id, item.untagged))
            if item.deleted in ids_before:
                self.events(named("delete", item.deleted))
        return items

    async def prune_images(self, policy: query.PrunePolicy) -> tuple[builtins.list[DeleteItem], int]:
        """``docker image prune``: what went and the bytes reclaimed; untag, delete and prune events."""
        def run() -> tuple[builtins.list[DeleteItem], int, dict[str, str], set[str]]:
            before = self.list()
            refs_before = {r: i.id for i in before for r in (*i.repo_tags, *i.repo_digests)}
            items, reclaimed = self.prune(dangling_only=policy.dangling_only, select=policy.keeps, users=self._users)
            return items, reclaimed, refs_before, {i.id for i in before}

        items, reclaimed, refs_before, ids_before = await asyncio.to_thread(run)
        for item in items:
            if item.untagged and item.untagged in refs_before:
                self.events(named("untag", refs_before[item.untagged], item.untagged))
            if item.deleted in ids_before:
                self.events(named("delete", item.deleted))
        self.events(ImageEvent(action="prune", actor_id="", attributes={"reclaimed": str(reclaimed)}))
        return items, reclaimed

    async def load(self, path: Path, progress: ProgressSink | None = None) -> builtins.list[str]:
        """``docker load``: dockerd's lines; a load event per image loaded, its ID the actor."""
        lines = await asyncio.to_thread(self.load_archive, path, progress)
        for line in lines:
            if line.startswith("Loaded image"):
                with contextlib.suppress(ServinError):
                    self.events(named("load", self.get(line.rpartition(": ")[2]).id))
        return lines

    async def import_image(self, path: Path, *, repo: str | None, tag: str | None, changes: builtins.list[str],
                           message: str) -> Image:
        img = await asyncio.to_thread(self.import_tarball, path, repo=repo, tag=tag, changes=changes,
                                      message=message)
        self.events(named("import", img.id))
        return img

    async def save_plan(self, names: builtins.list[str]) -> SaveSelection:
        """What ``docker save`` will write; an unknown name is a 404 before any byte is sent."""
        return await asyncio.to_thread(save.selection_names, self, names)

    async def save(self, selection: SaveSelection, out: io.RawIOBase) -> None:
        """Write the docker-archive of ``selection`` to ``out`` (buffered, from a worker thread); a
        save event per image once it is all written."""
        def run() -> None:
            with io.BufferedWriter(out, 1 << 20) as buffered:
                save.write_archive(self, selection, buffered)

        await asyncio.to_thread(run)
        for image_id, _ in selection:
            self.events(named("save", image_id))
