"""docker top's ps parsing, as dockerd's parsePSOutput."""

from __future__ import annotations

import pytest

from servin.errors import SystemError_
from servin.runtime.top import parse, ps_table


def test_extra_fields_join_the_last_column_and_thread_rows_follow_their_process() -> None:
    out = "PID   COMMAND USER\n7 sleep 30 root\n-  -  root\n9 other x\n- - x\n"
    titles, rows = parse(out, {7})
    assert titles == ["PID", "COMMAND", "USER"]
    assert rows == [["7", "sleep", "30 root"], ["-", "-", "root"]]


def test_no_pid_column_and_a_pid_assignment_are_refused() -> None:
    with pytest.raises(SystemError_, match="Couldn't find PID field in ps output"):
        parse("COMMAND\nsleep\n", {1})
    with pytest.raises(SystemError_, match='specifying "user=PID" is not allowed'):
        ps_table("-o pid,comm user=PID", {1})
