"""The daemon's configuration as `servin daemon` resolves it: its flags parsed, then a daemon.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from servin.daemon.config import DaemonConfig, add_daemon_flags, resolve


def parse(argv: list[str], config: Path | None) -> argparse.Namespace:
    """`servin daemon`'s flags of `argv`, with `--config-file config` when one is given."""
    p = argparse.ArgumentParser()
    add_daemon_flags(p)
    return p.parse_args(argv + (["--config-file", str(config)] if config else []))


def cfg_of(tmp_path: Path, argv: list[str], file: dict[str, Any] | None = None) -> DaemonConfig:
    """The configuration of the flags `argv` and a daemon.json of `file` (empty by default)."""
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps(file or {}))
    return resolve(parse(list(argv), p))
