"""The Dockerfile parser of the classic builder: text in, stages of typed instructions out.

    dockerfile = parse_dockerfile(text)            # InvalidArgument with dockerd's message on bad input
    stages = dockerfile.up_to(target)              # --target
    for stage in stages: print(f"Step n/{dockerfile.step_count(stages)} : {stage}") ...

Errors read as dockerd's: "failed to parse Dockerfile: ..." for text that is not a list of instructions,
"dockerfile parse error line N: ..." (20.10's words) for a bad instruction, "no build stage in current context"
for an instruction before the first FROM.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from servin.build import instructions as ins
from servin.build.bflags import FlagError, FlagKind, Flags, go_duration, go_int32
from servin.build.expand import expand_word, go_quote, go_trim
from servin.build.syntax import Heredoc, Node, SyntaxFault, parse, parse_heredoc
from servin.errors import InvalidArgument

_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.\-]*\Z")
_ONBUILD_PREFIX = re.compile(r"\A[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dockerfile:
    meta_args: tuple[ins.Arg, ...]  # the ARGs before the first FROM
    stages: tuple[ins.Stage, ...]
    escape: str  # "\\" or "`" (the escape directive)
    syntax: str | None  # the `# syntax=` directive: BuildKit frontends are not run, the builder warns
    warnings: tuple[str, ...]  # "Empty continuation line found in: ..."

    def up_to(self, target: str) -> tuple[ins.Stage, ...]:
        """The stages dockerd builds for --target (all of them without one)."""
        if not target:
            return self.stages
        for i, stage in enumerate(self.stages):
            if stage.name == target.lower():
                return self.stages[: i + 1]
        raise InvalidArgument(f"target stage {go_quote(target)} could not be found")

    def step_count(self, stages: tuple[ins.Stage, ...], extra: int = 0) -> int:
        """The N of "Step n/N": meta ARGs, FROMs and instructions (`extra`: the --label LABELs)."""
        return len(self.meta_args) + len(stages) + sum(len(s.commands) for s in stages) + extra

    def warning_lines(self) -> list[str]:
        """What dockerd prints on stderr for the parser's warnings, one line each."""
        if not self.warnings:
            return []
        trailer = "[WARNING]: Empty continuation lines will become errors in a future release.\n"
        return [f"[WARNING]: {w}\n" for w in self.warnings] + [trailer]


def parse_dockerfile(content: str | bytes, *, name: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile; `name` is the path the build was given, used in dockerd's messages."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    if not text:
        raise InvalidArgument(f"the Dockerfile ({name}) cannot be empty")
    try:
        parsed = parse(text)
    except SyntaxFault as fault:
        raise InvalidArgument(f"failed to parse {name}: {fault.message}") from None
    meta: list[ins.Arg] = []
    stages: list[tuple[ins.Stage, list[ins.Instruction]]] = []
    for node in parsed.nodes:
        typed = _typed(node)
        if isinstance(typed, ins.Stage):
            stages.append((typed, []))
        elif not stages and isinstance(typed, ins.Arg):
            meta.append(typed)
        elif not stages:
            raise InvalidArgument("no build stage in current context")
        else:
            stages[-1][1].append(typed)
    directives = dict(parsed.directives)
    return Dockerfile(
        meta_args=tuple(meta),
        stages=tuple(dataclasses.replace(stage, commands=tuple(commands)) for stage, commands in stages),
        escape=parsed.escape,
        syntax=directives.get("syntax"),
        warnings=parsed.warnings,
    )


def parse_trigger(expression: str) -> ins.Instruction:
    """An ONBUILD trigger of a base image, run when a build starts FROM it."""
    try:
        parsed = parse(expression)
    except SyntaxFault as fault:
        raise InvalidArgument(fault.message) from None
    if len(parsed.nodes) != 1:
        raise InvalidArgument("onbuild trigger should be a single expression")
    try:
        typed = _convert(parsed.nodes[0])
    except FlagError as err:
        raise InvalidArgument(str(err)) from None
    if isinstance(typed, ins.Stage):
        raise InvalidArgument("FROM isn't allowed as an ONBUILD trigger")
    return typed


def resolve_base(stage: ins.Stage, meta: Mapping[str, str], *, escape: str = "\\") -> tuple[str, str]:
    """The image (or stage) name and platform a FROM names, expanded with the meta args."""
    base = expand_word(stage.base, meta, escape=escape)
    if not base:
        raise InvalidArgument(f"base name ({stage.base}) should not be blank")
    platform = expand_word(stage.platform, meta, escape=escape) if stage.platform else ""
    return base, platform


def needed_stages(stages: Sequence[ins.Stage], meta: Mapping[str, str], *, escape: str = "\\") -> tuple[int, ...]:
    """The indices of the stages the last one needs, itself included, in order: the stages an earlier
    `FROM <stage>` or `COPY --from=<stage or index>` names, transitively (names case-insensitively; a name
    that is no earlier stage is an image). dockerd builds every stage up to the target; Servin skips
    the others."""
    if not stages:
        return ()
    needed = {len(stages) - 1}
    todo = [len(stages) - 1]
    while todo:
        i = todo.pop()
        for ref in _stage_refs(stages[i], meta, escape):
            j = _earlier_stage(stages, i, ref)
            if j is not None and j not in needed:
                needed.add(j)
                todo.append(j)
    return tuple(sorted(needed))


def _stage_refs(stage: ins.Stage, meta: Mapping[str, str], escape: str) -> list[tuple[str, bool]]:
    """(reference, may be an index) for the FROM and each COPY --from of a stage."""
    refs = []
    try:
        refs.append((expand_word(stage.base, meta, escape=escape), False))
    except InvalidArgument:
        pass  # the build reports it when it reaches the stage
    refs += [(c.from_, True) for c in stage.commands if isinstance(c, ins.Copy) and c.from_]
    return refs


def _earlier_stage(stages: Sequence[ins.Stage], current: int, ref: tuple[str, bool]) -> int | None:
    name, index_ok = ref
    for j in range(current):
        if stages[j].name and stages[j].name == name.lower():
            return j
    if index_ok and name.isdigit() and int(name) < current:
        return int(name)
    return None


def _typed(node: Node) -> ins.Instruction | ins.Stage:
    try:
        return _convert(node)
    except FlagError as err:
        raise InvalidArgument(f"dockerfile parse error line {node.line}: {err}") from None


def _convert(node: Node) -> ins.Instruction | ins.Stage:
    converter = _CONVERTERS.get(node.command.lower())
    if converter is None:
        raise FlagError(f"unknown instruction: {node.command.upper()}")  # 20.10: upper case, no suggestion
    return converter(node, go_trim(node.original))


def _flags(node: Node, spec: Mapping[str, FlagKind] | None = None) -> Flags:
    return Flags(spec=dict(spec or {})).parse(node.flags)


def _at_least_one(node: Node, command: str) -> None:
    if not node.args:
        raise FlagError(f"{command} requires at least one argument")


def _exactly_one(node: Node, command: str) -> str:
    if len(node.args) != 1:
        raise FlagError(f"{command} requires exactly one argument")
    return node.args[0]


def _shell_form(node: Node) -> tuple[str, ...]:
    """CMD, ENTRYPOINT, RUN and SHELL arguments: the argv in exec form, one string in shell form."""
    if not node.args or node.json:
        return node.args
    return (" ".join(node.args),)


def _pairs(node: Node, command: str) -> tuple[tuple[str, str], ...]:
    _at_least_one(node, command)
    args = node.args
    if len(args) % 3:
        raise FlagError(f"Bad input to {command}, too many arguments")
    if any(not args[i] for i in range(0, len(args), 3)):
        raise FlagError(f"{command} names can not be blank")
    return tuple((args[i], args[i + 1]) for i in range(0, len(args), 3))


def _from(node: Node, text: str) -> ins.Stage:
    args = node.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise FlagError(
                f"invalid name for build stage: {go_quote(args[2])}, name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise FlagError("FROM requires either one or three arguments")
    flags = _flags(node, {"platform": "string"})
    return ins.Stage(base=args[0], name=name, platform=flags.get("platform"), text=text, line=node.line)


def _run(node: Node, text: str) -> ins.Run:
    flags = _flags(node, {"mount": "strings", "network": "string", "security": "string", "device": "strings"})
    if flags.get("network", "default") not in ("default", "none", "host"):
        raise FlagError(f"invalid network mode {go_quote(flags.get('network'))}")
    if flags.get("security", "sandbox") not in ("sandbox", "insecure"):
        raise FlagError(f"security {go_quote(flags.get('security'))} is not valid")
    return ins.Run(
        text=text, line=node.line, cmd=_shell_form(node), json=node.json, flags=tuple(flags.used),
        heredocs=node.heredocs,
    )  # fmt: skip


def _cmd(node: Node, text: str) -> ins.Cmd:
    _flags(node)
    return ins.Cmd(text=text, line=node.line, cmd=_shell_form(node), json=node.json)


def _entrypoint(node: Node, text: str) -> ins.Entrypoint:
    _flags(node)
    return ins.Entrypoint(text=text, line=node.line, cmd=_shell_form(node), json=node.json)


def _shell(node: Node, text: str) -> ins.Shell:
    _flags(node)
    shell = _shell_form(node)
    if not shell:
        raise FlagError("SHELL requires at least one argument")
    if not node.json:
        raise FlagError("SHELL requires the arguments to be in JSON form")
    return ins.Shell(text=text, line=node.line, shell=shell)


def _env(node: Node, text: str) -> ins.Env:
    _flags(node)
    return ins.Env(text=text, line=node.line, pairs=_pairs(node, "ENV"))


def _label(node: Node, text: str) -> ins.Label:
    _flags(node)
    return ins.Label(text=text, line=node.line, pairs=_pairs(node, "LABEL"))


def _maintainer(node: Node, text: str) -> ins.Maintainer:
    maintainer = _exactly_one(node, "MAINTAINER")
    _flags(node)
    return ins.Maintainer(text=text, line=node.line, maintainer=maintainer)


def _expose(node: Node, text: str) -> ins.Expose:
    _at_least_one(node, "EXPOSE")
    _flags(node)
    return ins.Expose(text=text, line=node.line, ports=tuple(sorted(node.args)))


def _need_destination(node: Node, command: str) -> None:
    if len(node.args) < 2:
        raise FlagError(
            f"{command} requires at least two arguments, but only one was provided. Destination could not be determined"
        )


def _sources_and_dest(node: Node, command: str) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    """Sources, destination and heredocs; a source written as a heredoc (`<<EOF`) is one (and is refused)."""
    *sources, dest = node.args
    if _heredoc(dest) is not None:
        raise FlagError(f"{command} cannot accept a heredoc as a destination")
    inline = [doc for doc in map(_heredoc, sources) if doc is not None]
    paths = tuple(s for s in sources if _heredoc(s) is None)
    return paths, dest, node.heredocs or tuple(inline)


def _heredoc(word: str) -> Heredoc | None:
    try:
        return parse_heredoc(word)
    except InvalidArgument:
        return None


_ADD_FLAGS: dict[str, FlagKind] = {
    "chown": "string", "chmod": "string", "link": "bool", "keep-git-dir": "bool", "checksum": "string",
    "unpack": "bool", "exclude": "strings",
}  # fmt: skip
_COPY_FLAGS: dict[str, FlagKind] = {
    "chown": "string", "from": "string", "chmod": "string", "link": "bool", "exclude": "strings", "parents": "bool",
}  # fmt: skip


def _add(node: Node, text: str) -> ins.Add:
    _need_destination(node, "ADD")
    flags = _flags(node, _ADD_FLAGS)
    sources, dest, heredocs = _sources_and_dest(node, "ADD")
    return ins.Add(
        text=text, line=node.line, sources=sources, dest=dest, chown=flags.get("chown"), flags=tuple(flags.used),
        heredocs=heredocs,
    )  # fmt: skip


def _copy(node: Node, text: str) -> ins.Copy:
    _need_destination(node, "COPY")
    flags = _flags(node, _COPY_FLAGS)
    sources, dest, heredocs = _sources_and_dest(node, "COPY")
    return ins.Copy(
        text=text, line=node.line, sources=sources, dest=dest, chown=flags.get("chown"), from_=flags.get("from"),
        flags=tuple(flags.used), heredocs=heredocs,
    )  # fmt: skip


def _volume(node: Node, text: str) -> ins.Volume:
    _at_least_one(node, "VOLUME")
    _flags(node)
    paths = tuple(go_trim(p) for p in node.args)
    if not all(paths):
        raise FlagError("VOLUME specified can not be an empty string")
    return ins.Volume(text=text, line=node.line, paths=paths)


def _user(node: Node, text: str) -> ins.User:
    user = _exactly_one(node, "USER")
    _flags(node)
    return ins.User(text=text, line=node.line, user=user)


def _workdir(node: Node, text: str) -> ins.Workdir:
    path = _exactly_one(node, "WORKDIR")
    _flags(node)
    return ins.Workdir(text=text, line=node.line, path=path)


def _stopsignal(node: Node, text: str) -> ins.Stopsignal:
    signal = _exactly_one(node, "STOPSIGNAL")
    _flags(node)  # dockerd ignores flags here; Servin refuses them
    return ins.Stopsignal(text=text, line=node.line, signal=signal)


def _arg(node: Node, text: str) -> ins.Arg:
    _at_least_one(node, "ARG")
    _flags(node)  # dockerd ignores flags here; Servin refuses them
    pairs: list[tuple[str, str | None]] = []
    for arg in node.args:
        key, has_value, value = arg.partition("=")
        if has_value and not key:
            raise FlagError("ARG names can not be blank")
        pairs.append((key, value if has_value else None))
    return ins.Arg(text=text, line=node.line, pairs=tuple(pairs))


def _onbuild(node: Node, text: str) -> ins.Onbuild:
    _at_least_one(node, "ONBUILD")
    _flags(node)
    trigger = go_trim(node.args[0]).upper()
    if trigger == "ONBUILD":
        raise FlagError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise FlagError(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", node.original, count=1)
    for doc in node.heredocs:
        expression += "\n" + doc.content + doc.name
    return ins.Onbuild(text=text, line=node.line, expression=expression, trigger=trigger, heredocs=node.heredocs)


def _interval(flags: Flags, name: str) -> int:
    value = flags.get(name)
    if not value:
        return 0
    duration = go_duration(value)
    if duration == 0:
        return 0
    if duration < 1_000_000:
        raise FlagError(f"Interval {go_quote(name)} cannot be less than 1ms")
    return duration


def _healthcheck(node: Node, text: str) -> ins.Healthcheck:
    _at_least_one(node, "HEALTHCHECK")
    kind, args = node.args[0].upper(), node.args[1:]
    if kind == "NONE":
        if args or node.flags:  # dockerd ignores flags here; Servin refuses them
            raise FlagError("HEALTHCHECK NONE takes no arguments")
        return ins.Healthcheck(text=text, line=node.line, test=("NONE",))
    flags = _flags(node, dict.fromkeys(("interval", "timeout", "start-period", "start-interval", "retries"), "string"))
    if kind != "CMD":
        raise FlagError(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    cmd = args if node.json else ((" ".join(args),) if args else ())
    if not cmd:
        raise FlagError("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *cmd) if node.json else ("CMD-SHELL", *cmd)
    retries = 0
    if flags.get("retries"):
        retries = go_int32(flags.get("retries"))
        if retries < 0:
            raise FlagError(f"--retries cannot be negative ({retries})")
    return ins.Healthcheck(
        text=text, line=node.line, test=test, interval=_interval(flags, "interval"),
        timeout=_interval(flags, "timeout"), start_period=_interval(flags, "start-period"),
        start_interval=_interval(flags, "start-interval"), retries=retries,
    )  # fmt: skip


_CONVERTERS: dict[str, Callable[[Node, str], ins.Instruction | ins.Stage]] = {
    "add": _add, "arg": _arg, "cmd": _cmd, "copy": _copy, "entrypoint": _entrypoint, "env": _env,
    "expose": _expose, "from": _from, "healthcheck": _healthcheck, "label": _label, "maintainer": _maintainer,
    "onbuild": _onbuild, "run": _run, "shell": _shell, "stopsignal": _stopsignal, "user": _user,
    "volume": _volume, "workdir": _workdir,
}  # fmt: skip
