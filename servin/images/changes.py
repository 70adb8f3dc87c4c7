"""``docker import --change`` / ``docker commit --change``: Dockerfile lines applied to an image config.

Only the instructions Docker accepts there: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
USER, VOLUME, WORKDIR. The config is Docker's container.Config shape (``Cmd``, ``Env``, ...).
"""

from __future__ import annotations

import json
import posixpath
import shlex
from typing import Any

from servin.errors import InvalidArgument

VALID_CHANGE_COMMANDS = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def empty_container_config() -> dict[str, Any]:
    """The JSON Docker writes for an empty ``container.Config`` (field order as Docker's)."""
    return {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    }


def _json_or_shell(rest: str) -> list[str]:
    stripped = rest.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", stripped]


def _words(rest: str) -> list[str]:
    try:
        return shlex.split(rest, posix=True)
    except ValueError as e:
        raise InvalidArgument(f"failed to process {rest!r}: {e}") from e


def _key_values(instr: str, rest: str) -> list[tuple[str, str]]:
    words = _words(rest)
    if not words:
        raise InvalidArgument(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        # Legacy form: ``ENV KEY value with spaces``.
        key, _, value = rest.strip().partition(" ")
        if not value.strip() and instr == "ENV":
            raise InvalidArgument(f"{instr} must have two arguments")
        return [(key, value.strip())]
    pairs = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise InvalidArgument(
                f"{instr} names can not be blank"
                if not key
                else f"Syntax error - can't find = in {w!r}. Must be of the form: name=value"
            )
        pairs.append((key, value))
    return pairs


def _expand_ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    lo, dash, hi = port.partition("-")
    try:
        start = int(lo)
        end = int(hi) if dash else start
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {port}") from None
    if not (0 < start <= end <= 65535):
        raise InvalidArgument(f"invalid containerPort: {port}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]


def instructions(changes: list[str]) -> list[str]:
    """The changes read as one Dockerfile, as dockerd's BuildFromConfig does: a value may hold several
    lines (``CMD ["sh"]\\nEXPOSE 80``), a line ending in a backslash continues on the next."""
    out: list[str] = []
    pending = ""
    for line in "\n".join(changes).split("\n"):
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1]
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with every Dockerfile line in ``changes`` applied."""
    cfg = json.loads(json.dumps(config))
    cmd_set = False
    for raw in instructions(changes):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        if "\t" in instr:
            instr, _, more = instr.partition("\t")
            rest = more + " " + rest
        instr = instr.upper()
        rest = rest.strip()
        if instr not in VALID_CHANGE_COMMANDS:
            raise InvalidArgument(f"{instr.lower()} is not a valid change command")
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(rest)
            cmd_set = True
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest) if rest else None
            if not cmd_set:
                cfg["Cmd"] = None
        elif instr == "ENV":
            env = list(cfg.get("Env") or [])
            for key, value in _key_values("ENV", rest):
                entry = f"{key}={value}"
                for i, existing in enumerate(env):
                    if existing.split("=", 1)[0] == key:
                        env[i] = entry
                        break
                else:
                    env.append(entry)
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            for key, value in _key_values("LABEL", rest):
                labels[key] = value
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for spec in _words(rest):
                for p in _expand_ports(spec):
                    ports[p] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            stripped = rest.strip()
            paths = json.loads(stripped) if stripped.startswith("[") else _words(stripped)
            for v in paths:
                if not isinstance(v, str) or not v.strip():
                    raise InvalidArgument("VOLUME specified can not be an empty string")
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr == "WORKDIR":
            if not rest:
                raise InvalidArgument("WORKDIR requires exactly one argument")
            current = cfg.get("WorkingDir") or "/"
            cfg["WorkingDir"] = posixpath.normpath(posixpath.join(current, rest))
        elif instr == "USER":
            if not rest:
                raise InvalidArgument("USER requires exactly one argument")
            cfg["User"] = rest
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = rest
        elif instr == "ONBUILD":
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
        elif instr == "HEALTHCHECK":
            words = rest.split(None, 1)
            if words and words[0].upper() == "NONE":
                cfg["Healthcheck"] = {"Test": ["NONE"]}
            elif words and words[0].upper() == "CMD" and len(words) == 2:
                arg = words[1].strip()
                test = _json_or_shell(arg)
                if test[:2] == ["/bin/sh", "-c"] and not arg.startswith("["):
                    cfg["Healthcheck"] = {"Test": ["CMD-SHELL", arg]}
                else:
                    cfg["Healthcheck"] = {"Test": ["CMD", *test]}
            else:
                raise InvalidArgument("HEALTHCHECK options are not supported in --change")
    return cfg
