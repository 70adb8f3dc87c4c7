"""`docker top`: the host's ps run as dockerd runs it (daemon/top_unix.go): the user's options split on
spaces, the container's processes selected with `-q PID,...` (retried without it for options that
refuse -q), and only the rows of those processes kept (thread rows, PID `-`, follow their process)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Collection

from servin.errors import SystemError_

_PID_ASSIGNMENT = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")  # `-o x=PID`: a column renamed to PID


def ps_table(ps_args: str, pids: Collection[int]) -> tuple[list[str], list[list[str]]]:
    """Titles and the rows of `pids` in the output of `ps <ps_args>` (default -ef)."""
    ps_args = ps_args or "-ef"
    for name, title in _PID_ASSIGNMENT.findall(ps_args):
        if name != "pid":
            raise SystemError_(f'specifying "{name}={title}" is not allowed')
    args = ps_args.split(" ")
    res = _ps([*args, "-q" + ",".join(str(p) for p in sorted(pids))])
    if res.returncode != 0:
        res = _ps(args)
    if res.returncode != 0:
        first = res.stderr.split("\n", 1)[0]
        raise SystemError_(f"ps: {first or f'exit status {res.returncode}'}")
    return parse(res.stdout, pids)


def _ps(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ps", *args], capture_output=True, text=True, timeout=30)


def parse(output: str, pids: Collection[int]) -> tuple[list[str], list[list[str]]]:
    """ps's table: fields split on ASCII space; the fields past the titles' count joined into the last."""
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise SystemError_("Couldn't find PID field in ps output")
    pid_index, width = titles.index("PID"), len(titles)
    rows: list[list[str]] = []
    keeping = False  # the last process row was one of ours: its thread rows (PID "-") are kept too
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        if len(fields) <= pid_index:
            raise SystemError_(f"Unexpected ps line {line!r}")
        if fields[pid_index] == "-":
            if keeping:
                rows.append(_row(fields, width))
            continue
        if not fields[pid_index].isdigit():
            raise SystemError_(f"Unexpected pid '{fields[pid_index]}': strconv.Atoi: parsing "
                               f"\"{fields[pid_index]}\": invalid syntax")
        keeping = int(fields[pid_index]) in pids
        if keeping:
            rows.append(_row(fields, width))
    return titles, rows


def _row(fields: list[str], width: int) -> list[str]:
    return [*fields[:width - 1], " ".join(fields[width - 1:])]
