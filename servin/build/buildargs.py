"""The build-arg rules of dockerd's classic builder.

- `--build-arg` values (`options`, a value of None means "declared without a value" and is unset)
  override `ARG` defaults, but only for names a Dockerfile `ARG` declares in the current stage.
- `ARG`s before the first `FROM` (meta args) are usable in `FROM` only; a stage sees one after
  re-declaring it with `ARG NAME` (and then gets the meta value as its default).
- The proxy args (HTTP_PROXY, http_proxy, HTTPS_PROXY, ..., ALL_PROXY, NO_PROXY) are predefined: passed
  to `RUN` without a declaration, never warned about, and left out of the history (the RUN cache key)
  unless the Dockerfile declares them.
- `--build-arg`s no stage declared are listed in the warning dockerd prints at the end of the build.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from servin.build.expand import env_from_list, expand_word

PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    }
)  # fmt: skip


class BuildArgs:
    """The args of one build, one copy per stage (`for_stage`): what is declared, what was consumed."""

    def __init__(self, options: Mapping[str, str | None]) -> None:
        self.options = dict(options)
        self._allowed: dict[str, str | None] = {}  # declared in the current stage
        self._meta: dict[str, str | None] = {}  # declared before the first FROM
        self._referenced: set[str] = set()  # declared anywhere so far

    def for_stage(self) -> BuildArgs:
        """A fresh scope for a new stage: meta args and what was referenced carry over, declarations not."""
        other = BuildArgs(self.options)
        other._meta = dict(self._meta)
        other._referenced = set(self._referenced)
        return other

    def merge_referenced(self, stage: BuildArgs) -> None:
        """Take back what a finished stage declared (for the unused-args warning)."""
        self._referenced |= stage._referenced

    def declare(self, name: str, default: str | None) -> None:
        """`ARG name[=default]` in a stage."""
        self._allowed[name] = default
        self._referenced.add(name)

    def declare_meta(self, name: str, default: str | None) -> None:
        """`ARG name[=default]` before the first FROM."""
        self.declare(name, default)
        self._meta[name] = default

    def _value(self, name: str, scope: Mapping[str, str | None]) -> str | None:
        if self.options.get(name) is not None:
            return self.options[name]
        default = scope.get(name)
        if default is None:
            return self._meta.get(name)
        return default

    def _all(self, scope: Mapping[str, str | None]) -> dict[str, str]:
        out = {}
        for name in [*scope, *sorted(PROXY_ARGS - scope.keys())]:
            value = self._value(name, scope)
            if value is not None:
                out[name] = value
        return out

    def allowed(self) -> dict[str, str]:
        """The args a stage's instructions may expand and RUN sees: declared ones and given proxy args."""
        return self._all(self._allowed)

    def meta(self) -> dict[str, str]:
        """The args `FROM` (its image and --platform) expands with."""
        return self._all(self._meta)

    def run_env(self, env: Sequence[str]) -> list[str]:
        """`KEY=value` of the allowed args the container env does not set already (added to RUN's env)."""
        present = env_from_list(list(env))
        return [f"{k}={v}" for k, v in self.allowed().items() if k not in present]

    def history_cmd(self, run_env: Sequence[str], cmd: Sequence[str]) -> list[str]:
        """The Cmd recorded for a RUN (and its cache key): `|N` and the build args it ran with, sorted,
        then the command; undeclared proxy args are left out. Without args the command alone."""
        if not run_env:
            return list(cmd)
        kept = sorted(e for e in run_env if self._in_history(e.partition("=")[0]))
        return [f"|{len(kept)}", *kept, *cmd]

    def _in_history(self, name: str) -> bool:
        return name in self._allowed or name not in PROXY_ARGS

    def unused(self) -> list[str]:
        """`--build-arg` names never declared by an ARG, proxy args aside, sorted."""
        return sorted(k for k in self.options if k not in self._referenced and k not in PROXY_ARGS)

    def unused_warning(self) -> str | None:
        """dockerd's line for the unused build args, or None."""
        names = self.unused()
        if not names:
            return None
        return f"[Warning] One or more build-args [{' '.join(names)}] were not consumed\n"


def declare_meta_args(args: BuildArgs, pairs: Sequence[tuple[str, str | None]], *, escape: str = "\\") -> None:
    """Process one `ARG` before the first FROM: expand its names and defaults with the args known so far,
    then declare them."""
    env = args.allowed()
    for name, default in pairs:
        name = expand_word(name, env, escape=escape)
        value = None if default is None else expand_word(default, env, escape=escape)
        args.declare_meta(name, value)
