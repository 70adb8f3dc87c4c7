"""One instruction of a stage, as dockerd's dispatchers (builder/dockerfile/dispatchers.go): the
change to the run config, the history text of the commit, and the step it becomes through the
executor (metadata commit, builder-written layer, or a RUN container)."""

from __future__ import annotations

import posixpath
import re
import signal
from servin.build import gofmt
from servin.build import instructions as ins
from servin.build.copier import SourceTree, copy_step
from servin.build.executor import Executor
from servin.build.layer import LayerWriter
from servin.build.state import StageState
from servin.errors import InvalidArgument

_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$")


def _exposed(ports: tuple[str, ...]) -> list[str]:
    """nat.ParsePortSpecs for EXPOSE: "80", "80/udp", "8000-8002/tcp"."""
    out = []
    for spec in ports:
        m = _PORT.match(spec.lower())
        if m is None:
            raise InvalidArgument(f"Invalid containerPort: {spec.split('/')[0]}")
        first = int(m.group(1))
        last = int(m.group(2) or first)
        if last < first:
            raise InvalidArgument(f"Invalid range specified for the Port: {spec}")
        out += [f"{p}/{m.group(3) or 'tcp'}" for p in range(first, last + 1)]
    return out


def _check_signal(sig: str) -> None:
    """dockerd's signal.ParseSignal: a number or a name with or without SIG."""
    if sig.isdigit():
        if int(sig) == 0:
            raise InvalidArgument(f"Invalid signal: {sig}")
        return
    name = sig.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if not hasattr(signal.Signals, name) and not re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", name):
        raise InvalidArgument(f"Invalid signal: {sig}")


def _command(state: StageState, cmd: tuple[str, ...], json: bool) -> list[str]:
    """dockerd's resolveCmdLine: the exec form as is, the shell form through SHELL."""
    return list(cmd) if json else [*state.shell, *cmd]


async def dispatch(ex: Executor, state: StageState, instr: ins.Instruction, *, trees: SourceTree,
                   escape: str) -> None:
    refusal = instr.requires_buildkit
    if refusal is not None:
        raise InvalidArgument(refusal)
    instr = ins.expand(instr, state.expansion_env(), escape=escape)
    cfg = state.run_config
    match instr:
        case ins.Env(pairs=pairs):
            for k, v in pairs:
                state.set_env(k, v)
            await ex.commit(state, state.with_comment("ENV" + "".join(f" {k}={v}" for k, v in pairs)))
        case ins.Label(pairs=pairs):
            labels = dict(cfg.get("Labels") or {})
            labels.update(pairs)
            cfg["Labels"] = labels
            await ex.commit(state, state.with_comment("LABEL" + "".join(f" {k}={v}" for k, v in pairs)))
        case ins.Maintainer(maintainer=m):
            state.maintainer = m
            await ex.commit(state, state.with_comment("MAINTAINER " + m))
        case ins.Expose(ports=ports):
            exposed = dict(cfg.get("ExposedPorts") or {})
            exposed.update({p: {} for p in _exposed(ports)})
            cfg["ExposedPorts"] = exposed
            await ex.commit(state, state.with_comment("EXPOSE " + " ".join(ports)))
        case ins.User(user=user):
            cfg["User"] = user
            await ex.commit(state, state.with_comment("USER " + user))
        case ins.Volume(paths=paths):
            if any(not p for p in paths):
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes = dict(cfg.get("Volumes") or {})
            volumes.update({p: {} for p in paths})
            cfg["Volumes"] = volumes
            await ex.commit(state, state.with_comment("VOLUME " + gofmt.plain_list(paths)))
        case ins.Stopsignal(signal=sig):
            _check_signal(sig)
            cfg["StopSignal"] = sig
            await ex.commit(state, state.with_comment("STOPSIGNAL " + sig))
        case ins.Shell(shell=shell):
            cfg["Shell"] = list(shell)
            await ex.commit(state, state.with_comment("SHELL " + gofmt.plain_list(shell)))
        case ins.Onbuild(expression=expression):
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), expression]
            await ex.commit(state, state.with_comment("ONBUILD " + expression))
        case ins.Cmd(cmd=cmd, json=json):
            cfg["Cmd"] = _command(state, cmd, json)
            state.cmd_set = bool(cmd)
            await ex.commit(state, state.with_comment("CMD " + gofmt.quote_list(cfg["Cmd"])))
        case ins.Entrypoint(cmd=cmd, json=json):
            cfg["Entrypoint"] = _command(state, cmd, json)
            if not state.cmd_set:
                cfg["Cmd"] = None
            await ex.commit(state, state.with_comment("ENTRYPOINT " + gofmt.quote_list(cfg["Entrypoint"])))
        case ins.Healthcheck():
            await _healthcheck(ex, state, instr)
        case ins.Arg(pairs=pairs):
            text = "ARG"
            for name, default in pairs:
                text += f" {name}" if default is None else f" {name}={default}"
                state.build_args.declare(name, default)
            await ex.commit(state, state.with_comment(text))
        case ins.Workdir(path=path):
            await _workdir(ex, state, path)
        case ins.Run(cmd=cmd, json=json):
            await _run(ex, state, _command(state, cmd, json))
        case ins.Copy() | ins.Add():
            await copy_step(ex, state, instr, trees)
        case _:
            raise InvalidArgument(f"unknown instruction: {instr.name}")


async def _healthcheck(ex: Executor, state: StageState, h: ins.Healthcheck) -> None:
    old = state.run_config.get("Healthcheck") or {}
    old_test = old.get("Test") or []
    if old_test and old_test[0] != "NONE":
        ex.say(f"Note: overriding previous HEALTHCHECK: [{' '.join(old_test)}]\n")
    health: dict[str, object] = {"Test": list(h.test)}
    for key, value in (("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period),
                       ("Retries", h.retries)):
        if value:
            health[key] = value
    state.run_config["Healthcheck"] = health
    await ex.commit(state, state.with_comment("HEALTHCHECK " + gofmt.healthcheck(health)))


async def _workdir(ex: Executor, state: StageState, path: str) -> None:
    if not path:
        raise InvalidArgument("cannot normalize nothing")
    current = state.run_config.get("WorkingDir") or ""
    workdir = path if path.startswith("/") else posixpath.join("/", current, path)
    workdir = posixpath.normpath(workdir) if not path.startswith("/") else path
    state.run_config["WorkingDir"] = workdir
    record = state.with_comment_string("WORKDIR " + workdir)

    def write(layer: LayerWriter) -> None:
        if not layer.is_image_dir(workdir):
            layer.directory(workdir)

    await ex.commit_layer(state, record, write, announce=True)


async def _run(ex: Executor, state: StageState, cmd: list[str]) -> None:
    args = state.build_args.run_env(state.env)
    saved = state.build_args.history_cmd(args, cmd) if args else cmd
    record = state.config_copy(Cmd=saved, Entrypoint=None)
    run_config = state.config_copy(Cmd=cmd, Env=[*state.env, *args], Entrypoint=[""])
    await ex.run(state, run_config, record)
