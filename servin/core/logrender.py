"""`frame` under its old address (servin.core.logs has it, with the rest of the log reader's names)."""

from __future__ import annotations

from servin.core.logs import frame

__all__ = ["frame"]
