"""``docker rmi`` and ``docker image prune`` with dockerd's conflict rules (daemon/images/
image_delete.go and image_prune.go): what may be untagged, what must be forced, what cannot be,
and which layers go with an image."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from servin.errors import Conflict, NotFound
from servin.images import reference as refs
from servin.images.content import ContentStore
from servin.images.layer_store import LayerStore, chain_ids
from servin.images.model import DeleteItem, Image
from servin.images.reference import Reference, truncate_id
from servin.images.references import ReferenceStore

UsersFn = Callable[[str], list[tuple[str, bool]]]  # image id -> [(container id, running)]


class DeleteConflict(Conflict):
    def __init__(self, short_id: str, hard: bool, used: bool, message: str) -> None:
        force_msg = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id} ({force_msg}) - {message}")
        self.hard = hard
        self.used = used


def _is_id_prefix(image_id: str, candidate: str) -> bool:
    return image_id.startswith(candidate) or image_id.split(":", 1)[-1].startswith(candidate)


def _is_single_reference(repo_refs: list[Reference]) -> bool:
    if len(repo_refs) <= 1:
        return len(repo_refs) == 1
    single: Reference | None = None
    canonical_names: set[str] = set()
    for r in repo_refs:
        if r.digest is not None:
            canonical_names.add(r.name)
        elif single is None:
            single = r
        else:
            return False
    if single is None:
        single = repo_refs[0]
    return len(canonical_names) == 1 and single.name in canonical_names


class ImageDeleter:
    """Deletes images from the three stores; the caller holds the store's write lock."""

    def __init__(self, content: ContentStore, references: ReferenceStore, layers: LayerStore,
                 state: threading.RLock, resolve: Callable[[str], str]) -> None:
        self._content, self._refs, self._layers, self._state = content, references, layers, state
        self._resolve = resolve

    def delete(self, image_id: str, ref_or_id: str, *, force: bool, users: UsersFn, prune: bool
               ) -> list[DeleteItem]:
        """``docker rmi ref_or_id`` (which resolved to ``image_id``); ``prune=False`` (noprune)
        keeps untagged parents."""
        records: list[DeleteItem] = []
        repo_refs = self._refs.of(image_id)

        if not _is_id_prefix(image_id, ref_or_id):
            if not force and _is_single_reference(repo_refs):
                using = users(image_id)
                if using:
                    raise Conflict(
                        f"conflict: unable to remove repository reference "
                        f"{json.dumps(ref_or_id)} (must force) - container "
                        f"{truncate_id(using[0][0])} is using its referenced image "
                        f"{truncate_id(image_id)}"
                    )
            parsed = refs.parse_normalized(ref_or_id).tag_name_only()
            self._refs.remove(parsed)
            records.append(DeleteItem(untagged=parsed.familiar()))
            repo_refs = self._refs.of(image_id)
            if parsed.digest is None:
                same_repo_tag = any(r.digest is None and r.name == parsed.name for r in repo_refs)
                if not same_repo_tag:
                    remaining: list[Reference] = []
                    for r in repo_refs:
                        if r.digest is not None and r.name == parsed.name:
                            self._refs.remove(r)
                            records.append(DeleteItem(untagged=r.familiar()))
                        else:
                            remaining.append(r)
                    repo_refs = remaining
            if repo_refs:
                return records
            self._delete_helper(image_id, records, force=force, users=users, quiet=True, prune=prune)
            return records

        if _is_single_reference(repo_refs):
            conflict = self._conflict(image_id, users, running=True, children=True, stopped=not force, refs_=False)
            if conflict is not None:
                raise conflict
            for r in sorted(repo_refs, key=lambda r: r.familiar()):
                self._refs.remove(r)
                records.append(DeleteItem(untagged=r.familiar()))
        self._delete_helper(image_id, records, force=force, users=users, quiet=False, prune=prune)
        return records

    def _conflict(self, image_id: str, users: UsersFn, *, running: bool, children: bool, stopped: bool,
                  refs_: bool) -> DeleteConflict | None:
        short = truncate_id(image_id)
        if children and self._content.has_children(image_id):
            return DeleteConflict(short, True, False, "image has dependent child images")
        using = users(image_id) if (running or stopped) else []
        if running:
            for cid, is_running in using:
                if is_running:
                    return DeleteConflict(
                        short, True, True, f"image is being used by running container {truncate_id(cid)}"
                    )
        if refs_ and self._refs.of(image_id):
            return DeleteConflict(short, False, False, "image is referenced in multiple repositories")
        if stopped:
            for cid, is_running in using:
                if not is_running:
                    return DeleteConflict(
                        short, False, True, f"image is being used by stopped container {truncate_id(cid)}"
                    )
        return None

    def _delete_helper(self, image_id: str, records: list[DeleteItem], *, force: bool, users: UsersFn,
                       quiet: bool, prune: bool = False) -> None:
        conflict = self._conflict(image_id, users, running=True, children=True, stopped=not force, refs_=not force)
        if conflict is not None:
            if quiet and (not self.is_dangling(image_id) or conflict.used):
                return
            raise conflict
        for r in sorted(self._refs.of(image_id), key=lambda r: r.familiar()):
            self._refs.remove(r)
            records.append(DeleteItem(untagged=r.familiar()))

        in_use_by_containers = bool(users(image_id))
        with self._state:
            rec = self._content.record(image_id)
            still_used = self._content.used_layers(besides=image_id)
            if in_use_by_containers:  # a (forced) container still has these layers mounted: keep them
                self._layers.retain(d for d in rec.diff_ids if d not in still_used)
            self._content.remove(image_id)
            records.append(DeleteItem(deleted=image_id))
            if not in_use_by_containers:
                diff_ids = rec.diff_ids
                for diff_id, chain in reversed([*zip(diff_ids, chain_ids(diff_ids), strict=True)]):
                    if diff_id in still_used or not self._layers.has(diff_id) or self._layers.is_pinned(diff_id):
                        continue
                    self._layers.remove(diff_id)
                    still_used.add(diff_id)  # the same diff twice in one image: remove once
                    records.append(DeleteItem(deleted=chain))
        # as dockerd: an untagged parent goes too, quietly, unless something still needs it
        if prune and rec.parent and rec.parent in self._content:
            self._delete_helper(rec.parent, records, force=False, users=users, quiet=True, prune=True)

    def is_dangling(self, image_id: str) -> bool:
        """No reference and no child (dockerd's imageIsDangling)."""
        return not self._refs.of(image_id) and not self._content.has_children(image_id)

    def prune(self, *, dangling_only: bool, keep: Callable[[Image], bool], image: Callable[[str], Image],
              users: UsersFn) -> tuple[list[DeleteItem], int]:
        """``docker image prune``, as dockerd's ImagesPrune: images without children (all images
        without ``dangling_only``) that ``keep`` accepts, untagged intermediates skipped, images
        in use skipped quietly. Returns what was deleted and the bytes of the removed layers."""
        with self._state:
            candidates = [i for i in self._content.ids() if not (dangling_only and self._content.has_children(i))]
            sizes = {
                chain: self._layers.size(d)
                for r in self._content.records()
                for d, chain in zip(r.diff_ids, chain_ids(r.diff_ids), strict=True)
            }
        chosen = []
        for image_id in candidates:
            if not self._refs.of(image_id) and self._content.has_children(image_id):
                continue
            if keep(image(image_id)):
                chosen.append(image_id)
        items: list[DeleteItem] = []
        for image_id in chosen:
            if image_id not in self._content:
                continue  # went as the parent of another
            repo_refs = self._refs.of(image_id)
            try:
                if not repo_refs:
                    items.extend(self.delete(image_id, image_id[7:], force=False, users=users, prune=True))
                elif not dangling_only or all(r.digest is not None for r in repo_refs):
                    for r in repo_refs:
                        try:
                            items.extend(self.delete(self._resolve(str(r)), str(r), force=False, users=users,
                                                     prune=True))
                        except (Conflict, NotFound):
                            continue
            except (Conflict, NotFound):
                continue
        reclaimed = sum(sizes.get(i.deleted, 0) for i in items if i.deleted)  # layers' chain ids
        return items, reclaimed
