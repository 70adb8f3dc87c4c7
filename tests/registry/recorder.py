"""A progress sink that keeps every event as the JSON line the API would send."""

from __future__ import annotations

from typing import Any

from servin.api.wire import progress as wire_progress
from servin.images.progress import ProgressEvent
from servin.registry.progress import Output


class Recorder(Output):
    def __init__(self) -> None:
        super().__init__(self._record)
        self.lines: list[dict[str, Any]] = []

    def _record(self, event: ProgressEvent) -> None:
        self._write(wire_progress.render(event))

    def _write(self, msg: dict[str, Any]) -> None:
        self.lines.append(msg)
