"""The state of one stage while it is dispatched (dockerd's dispatchState): the image so far and the
run config its next commit records, in Docker's container.Config shape."""

from __future__ import annotations

import copy
import posixpath
from dataclasses import dataclass, field
from typing import Any

from servin.build.buildargs import BuildArgs
from servin.build.expand import env_from_list

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(slots=True, kw_only=True)
class StageState:
    image_id: str  # "" for scratch, until the first commit
    run_config: dict[str, Any]
    build_args: BuildArgs
    name: str = ""
    maintainer: str = ""
    cmd_set: bool = False  # a CMD in this stage (an ENTRYPOINT then keeps it)
    from_scratch: bool = False
    triggers: list[str] = field(default_factory=list)  # the base image's ONBUILD, to run now

    @classmethod
    def begin(cls, image_id: str, image_config: dict[str, Any] | None, build_args: BuildArgs, *,
              name: str) -> StageState:
        """dockerd's beginStage: the base image's config, stdin off, a PATH when it has none."""
        cfg = copy.deepcopy(image_config) if image_config else {}
        cfg["OpenStdin"] = False
        cfg["StdinOnce"] = False
        env = list(cfg.get("Env") or [])
        if not any(e.startswith("PATH=") for e in env):
            env.append(DEFAULT_PATH)
        cfg["Env"] = env
        triggers = list(cfg.get("OnBuild") or [])
        cfg["OnBuild"] = None
        cfg["Image"] = image_id
        return cls(image_id=image_id, run_config=cfg, build_args=build_args, name=name,
                   from_scratch=not image_id, triggers=triggers)

    @property
    def shell(self) -> list[str]:
        return list(self.run_config.get("Shell") or DEFAULT_SHELL)

    @property
    def env(self) -> list[str]:
        return list(self.run_config.get("Env") or [])

    def expansion_env(self) -> dict[str, str]:
        """What instructions expand with: the build args a stage declared, the env over them."""
        return {**self.build_args.allowed(), **env_from_list(self.env)}

    def set_env(self, key: str, value: str) -> None:
        env = self.env
        for i, e in enumerate(env):
            if e.partition("=")[0] == key:
                env[i] = f"{key}={value}"
                break
        else:
            env.append(f"{key}={value}")
        self.run_config["Env"] = env

    def config_copy(self, **changes: Any) -> dict[str, Any]:
        cfg = copy.deepcopy(self.run_config)
        cfg.update(changes)
        return cfg

    def with_comment(self, comment: str) -> dict[str, Any]:
        """dockerd's withCmdComment: ``[shell..., "#(nop) ", comment]`` (history: "#(nop)  ENV ...")."""
        return self.config_copy(Cmd=[*self.shell, "#(nop) ", comment])

    def with_comment_string(self, comment: str) -> dict[str, Any]:
        """dockerd's withCmdCommentString: ``[shell..., "#(nop) " + comment]`` (COPY, ADD, WORKDIR)."""
        return self.config_copy(Cmd=[*self.shell, "#(nop) " + comment])

    def workdir_path(self, path: str) -> str:
        """A WORKDIR or destination made absolute against the current working directory."""
        base = self.run_config.get("WorkingDir") or "/"
        return posixpath.normpath(posixpath.join("/", base, path))

    def updated(self, image_id: str) -> None:
        """After a step: the image so far (dockerd's updateRunConfig)."""
        self.image_id = image_id
        self.run_config["Image"] = image_id
