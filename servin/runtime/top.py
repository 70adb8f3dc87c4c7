"""`docker top`: the host's ps, its rows kept for the container's processes (as dockerd does)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Collection

from servin.errors import SystemError_


def ps_table(ps_args: str, pids: Collection[int]) -> tuple[list[str], list[list[str]]]:
    """Run `ps <ps_args>` and keep the rows whose PID column is one of `pids`: titles and rows."""
    res = subprocess.run(["ps", *shlex.split(ps_args)], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise SystemError_(f"Error running ps: {res.stderr.strip() or res.returncode}")
    lines = res.stdout.splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    if "PID" not in titles:
        raise SystemError_("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_index and fields[pid_index].isdigit() and int(fields[pid_index]) in pids:
            rows.append(fields)
    return titles, rows
