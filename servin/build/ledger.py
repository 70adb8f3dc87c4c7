"""The builder's ledger of the images it made (the classic build cache): when each step's image was
made, when a build last used it and how often, and which images were builds' results. It lives in
``<data-root>/buildcache.json``, beside the builder's work directories; core/buildcache.py reads it to show
and prune the build cache. Images the store no longer has are dropped as they are found gone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin import atomicfile

LEDGER_NAME = "buildcache.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepUse:
    created: float  # unix seconds: when a build made it
    last_used: float  # when a build last made or reused it
    usage: int  # how many builds made or reused it


class BuildLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._steps: dict[str, StepUse] = {}
        self._results: set[str] = set()
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            data: Any = atomicfile.read_json(self.path)
        except (OSError, ValueError):
            return
        if not isinstance(data, dict):
            return
        for image_id, use in (data.get("steps") or {}).items():
            try:
                self._steps[image_id] = StepUse(created=float(use["created"]), last_used=float(use["last_used"]),
                                                usage=int(use["usage"]))
            except (KeyError, TypeError, ValueError):
                continue
        self._results = {r for r in data.get("results") or [] if isinstance(r, str)}

    def _save(self) -> None:
        steps = {i: {"created": u.created, "last_used": u.last_used, "usage": u.usage} for i, u in self._steps.items()}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomicfile.write_json(self.path, {"steps": steps, "results": sorted(self._results)})

    def record(self, steps: Iterable[str], result: str = "") -> None:
        """One build's step images, in order (made or reused from the cache), and its result."""
        now = time.time()
        with self._lock:
            self._load()
            for image_id in dict.fromkeys(steps):
                use = self._steps.get(image_id)
                self._steps[image_id] = StepUse(created=now, last_used=now, usage=1) if use is None else \
                    StepUse(created=use.created, last_used=now, usage=use.usage + 1)
            if result:
                self._results.add(result)
            self._save()

    def snapshot(self) -> tuple[dict[str, StepUse], frozenset[str]]:
        with self._lock:
            self._load()
            return dict(self._steps), frozenset(self._results)

    def forget(self, image_ids: Iterable[str]) -> None:
        """Images that are gone from the store."""
        gone = set(image_ids)
        with self._lock:
            self._load()
            if gone & (self._steps.keys() | self._results):
                self._steps = {i: u for i, u in self._steps.items() if i not in gone}
                self._results -= gone
                self._save()
