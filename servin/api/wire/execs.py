"""Docker JSON for exec create and inspect."""

from __future__ import annotations

from typing import Any

from servin import errors
from servin.api.wire import request_body
from servin.core.execs import ExecConfig, ExecRecord
from servin.core.model import Container


_EXEC_FIELDS = ("Cmd", "Env", "User", "WorkingDir", "Tty", "Privileged", "AttachStdin", "AttachStdout",
                "AttachStderr", "DetachKeys", "ConsoleSize")


def _go_keys(body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Go's JSON decoding matches field names case-insensitively (docker-py sends "detachKeys")."""
    canonical = {f.lower(): f for f in fields}
    return {canonical.get(k.lower(), k): v for k, v in body.items()}


@request_body("the exec config")
def parse_exec_create(body: Any) -> ExecConfig:
    if not isinstance(body, dict):
        raise errors.InvalidArgument("exec config cannot be empty")
    body = _go_keys(body, _EXEC_FIELDS)
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd or not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
        raise errors.InvalidArgument("No exec command specified")
    env = body.get("Env") or []
    if not isinstance(env, list):
        raise errors.InvalidArgument("invalid Env: must be a list of strings")
    size = body.get("ConsoleSize")
    return ExecConfig(
        cmd=tuple(cmd), env=tuple(str(e) for e in env), user=body.get("User") or "",
        working_dir=body.get("WorkingDir") or "", tty=bool(body.get("Tty")),
        privileged=bool(body.get("Privileged")), attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")), attach_stderr=bool(body.get("AttachStderr")),
        detach_keys=body.get("DetachKeys") or "",
        console_size=(int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 and size[0] else None,
    )


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
