"""The typed Dockerfile instructions of the classic builder (buildkit's dockerfile/instructions).

Each instruction keeps `text`, the instruction as written with continuation lines joined (dockerd
prints `Step 2/5 : <text>`), and `line`, where it starts. Arguments are kept unexpanded: `expand`
substitutes variables in the instructions dockerd expands (ENV, LABEL, ADD, COPY, WORKDIR, USER,
VOLUME, STOPSIGNAL, ARG, EXPOSE), at dispatch, with the environment of that moment.

Options only BuildKit has are parsed (so their errors read as dockerd's) but `requires_buildkit` names
them: the builder refuses the step with that message, as dockerd does for `RUN --mount` or `COPY --chmod`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from servin.build.expand import expand_word, expand_words
from servin.build.syntax import Heredoc

BUILDKIT_HELP = "Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"
HEREDOC_REFUSAL = f"heredocs require BuildKit. {BUILDKIT_HELP}"


def option_refusal(flag: str) -> str:
    """dockerd's refusal of a flag the classic builder does not have."""
    return f"the --{flag} option requires BuildKit. {BUILDKIT_HELP}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    text: str  # as written, continuation lines joined and trimmed
    line: int  # where it starts, 1-based

    @property
    def name(self) -> str:
        """The instruction's keyword, upper case."""
        return type(self).__name__.upper()

    @property
    def requires_buildkit(self) -> str | None:
        """The message the builder refuses this step with, or None when the classic builder can run it."""
        return None

    def __str__(self) -> str:
        return self.text


def _refusal(flags: tuple[str, ...], honoured: frozenset[str], heredocs: tuple[Heredoc, ...]) -> str | None:
    for flag in flags:
        if flag not in honoured:
            return option_refusal(flag)
    return HEREDOC_REFUSAL if heredocs else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run(Instruction):
    cmd: tuple[str, ...]  # shell form: one string, run through SHELL; exec form (json): the argv
    json: bool
    flags: tuple[str, ...] = ()  # --mount, --network, --security, --device: names used, in order
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def requires_buildkit(self) -> str | None:
        return _refusal(self.flags, frozenset(), self.heredocs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cmd(Instruction):
    cmd: tuple[str, ...]
    json: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Entrypoint(Instruction):
    cmd: tuple[str, ...]
    json: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Env(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]
    expand: bool = True  # False for the labels of --label, which dockerd does not expand


def label_option(key: str, value: str) -> Label:
    """The LABEL dockerd appends to the last stage for each `--label` of the build (sorted by key)."""
    return Label(text=f"LABEL {key}={value}", line=0, pairs=((key, value),), expand=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintainer(Instruction):
    maintainer: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Expose(Instruction):
    ports: tuple[str, ...]  # sorted as written, before expansion (as dockerd does)


@dataclass(frozen=True, slots=True, kw_only=True)
class Add(Instruction):
    sources: tuple[str, ...]
    dest: str
    chown: str = ""
    flags: tuple[str, ...] = ()  # every flag used, in order
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def requires_buildkit(self) -> str | None:
        return _refusal(self.flags, frozenset({"chown"}), self.heredocs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(Instruction):
    sources: tuple[str, ...]
    dest: str
    chown: str = ""
    from_: str = ""  # a stage name or index, or an image
    flags: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def requires_buildkit(self) -> str | None:
        return _refusal(self.flags, frozenset({"chown", "from"}), self.heredocs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume(Instruction):
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class User(Instruction):
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Stopsignal(Instruction):
    signal: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Arg(Instruction):
    pairs: tuple[tuple[str, str | None], ...]  # name and default (None: declared without one)


@dataclass(frozen=True, slots=True, kw_only=True)
class Onbuild(Instruction):
    expression: str  # the trigger as stored in the image's OnBuild ("RUN echo hi")
    trigger: str  # its instruction keyword, upper case
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def requires_buildkit(self) -> str | None:
        return HEREDOC_REFUSAL if self.heredocs else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck(Instruction):
    test: tuple[str, ...]  # ("NONE",), ("CMD", argv...) or ("CMD-SHELL", command)
    interval: int = 0  # nanoseconds, 0: the default
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """One `FROM` and the instructions up to the next one."""

    base: str  # the image or earlier stage, unexpanded (FROM expands it with the meta args only)
    name: str  # the `AS` name, lower case, or ""
    platform: str  # --platform, unexpanded, or ""
    text: str
    line: int
    commands: tuple[Instruction, ...] = ()

    def __str__(self) -> str:
        return self.text


def _expand_pairs(pairs: tuple[tuple[str, str], ...], word: _Word) -> tuple[tuple[str, str], ...]:
    return tuple((word(k), word(v)) for k, v in pairs)


class _Word:
    def __init__(self, env: Mapping[str, str], escape: str) -> None:
        self.env = env
        self.escape = escape

    def __call__(self, text: str) -> str:
        return expand_word(text, self.env, escape=self.escape)


def expand(instruction: Instruction, env: Mapping[str, str], *, escape: str = "\\") -> Instruction:
    """The instruction with its variables substituted, for the instructions dockerd expands; the
    others come back unchanged. Raises InvalidArgument ("failed to process ...") on a bad word."""
    word = _Word(env, escape)
    replace = dataclasses.replace
    match instruction:
        case Env(pairs=pairs):
            return replace(instruction, pairs=_expand_pairs(pairs, word))
        case Label(pairs=pairs, expand=True):
            return replace(instruction, pairs=_expand_pairs(pairs, word))
        case Add(sources=sources, dest=dest, chown=chown) | Copy(sources=sources, dest=dest, chown=chown):
            return replace(instruction, sources=tuple(map(word, sources)), dest=word(dest), chown=word(chown))
        case Workdir(path=path):
            return replace(instruction, path=word(path))
        case User(user=user):
            return replace(instruction, user=word(user))
        case Volume(paths=paths):
            return replace(instruction, paths=tuple(map(word, paths)))
        case Stopsignal(signal=signal):
            return replace(instruction, signal=word(signal))
        case Arg(pairs=args):
            return replace(instruction, pairs=tuple((word(k), None if v is None else word(v)) for k, v in args))
        case Expose(ports=ports):
            words = (expand_words(port, env, escape=escape) for port in ports)
            return replace(instruction, ports=tuple(p for split in words for p in split))
    return instruction
