"""Container logs as the core serves them. The json-file log is the supervisor's, so its reader is
the runtime's (servin/runtime/logfile.py); these are the names the core and the API use of it."""

from __future__ import annotations

from servin.runtime.logfile import LogLine, LogQuery, frame, parse_time_ns, read_log, render_log, renders_natively

__all__ = ["LogLine", "LogQuery", "frame", "parse_time_ns", "read_log", "render_log", "renders_natively"]
