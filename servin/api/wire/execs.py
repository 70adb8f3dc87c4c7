"""Docker JSON for exec create and inspect."""

from __future__ import annotations

from typing import Any

from servin import errors
from servin.api.wire import request_body
from servin.api.wire.schemas import EXEC_OPTIONS, EXEC_START_OPTIONS
from servin.core.execs import ExecConfig, ExecRecord
from servin.core.model import Container


@request_body(EXEC_OPTIONS)
def parse_exec_create(body: Any) -> ExecConfig:
    """POST /containers/{id}/exec (container.ExecOptions; an empty body is an empty config, as
    dockerd's ReadJSON leaves it)."""
    body = body or {}
    cmd = body.get("Cmd")
    if not cmd:
        raise errors.InvalidArgument("No exec command specified")
    size = body.get("ConsoleSize")
    return ExecConfig(
        cmd=tuple(cmd), env=tuple(body.get("Env") or ()), user=body.get("User") or "",
        working_dir=body.get("WorkingDir") or "", tty=bool(body.get("Tty")),
        privileged=bool(body.get("Privileged")), attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")), attach_stderr=bool(body.get("AttachStderr")),
        detach_keys=body.get("DetachKeys") or "",
        console_size=(size[0], size[1]) if size and size[0] else None,
    )


@request_body(EXEC_START_OPTIONS)
def parse_exec_start(body: Any) -> tuple[bool, bool | None, tuple[int, int] | None]:
    """POST /exec/{id}/start (container.ExecStartOptions): (Detach, Tty, ConsoleSize), Tty None when not
    given, ConsoleSize None when not given or without Tty (dockerd drops it then; API < 1.42 too)."""
    body = body or {}
    size = body.get("ConsoleSize")
    return bool(body.get("Detach")), body.get("Tty"), (size[0], size[1]) if size and size[0] and body.get("Tty") \
        else None


def exec_inspect(rec: ExecRecord, c: Container) -> dict[str, Any]:
    cfg = rec.config
    return {
        "CanRemove": False,
        "ContainerID": c.id,
        "DetachKeys": cfg.detach_keys,
        "ExitCode": rec.exit_code,
        "ID": rec.id,
        "OpenStderr": cfg.attach_stderr,
        "OpenStdin": cfg.attach_stdin,
        "OpenStdout": cfg.attach_stdout,
        "ProcessConfig": {"arguments": list(cfg.cmd[1:]), "entrypoint": cfg.cmd[0], "privileged": cfg.privileged,
                          "tty": cfg.tty, "user": cfg.user},
        "Running": rec.running,
        "Pid": rec.pid,
    }
