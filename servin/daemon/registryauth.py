"""The daemon's own registry credentials, for pulls the management API asks for (Docker's API gets them from
the client's X-Registry-Auth): the `auths` of the daemon user's Docker config, `$DOCKER_CONFIG/config.json`
or `~/.docker/config.json` (what `docker login` run as that user writes), read at each pull. Credential
helpers (`credsStore`, `credHelpers`) are not run: a registry only they know is pulled from anonymously,
and the daemon says so in its log."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from servin.images.reference import DEFAULT_DOMAIN
from servin.registry import auth
from servin.registry.service import DOCKER_HUB_AUTH_ADDRESS, server_hostname

log = logging.getLogger(__name__)
HUB_NAMES = {DEFAULT_DOMAIN, "index.docker.io", "registry-1.docker.io"}


def config_file() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


class DockerConfigCredentials:
    """domain → AuthConfig from a Docker config file (anonymous when it names none)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path  # None: config_file() at each call (the environment may change)

    @property
    def path(self) -> Path:
        return self._path or config_file()

    def __call__(self, domain: str) -> auth.AuthConfig:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return auth.AuthConfig()
        except (OSError, ValueError) as exc:
            log.warning("registry credentials: %s does not load (%s); pulling %s anonymously", self.path, exc, domain)
            return auth.AuthConfig()
        if not isinstance(data, dict):
            return auth.AuthConfig()
        hub = domain in HUB_NAMES
        for address, entry in (data.get("auths") or {}).items():
            host = server_hostname(address)
            if host == domain or (hub and host in HUB_NAMES):
                creds = auth.from_dict(entry)
                server = DOCKER_HUB_AUTH_ADDRESS if hub else address
                return auth.AuthConfig(username=creds.username, password=creds.password,
                                       identity_token=creds.identity_token, registry_token=creds.registry_token,
                                       server_address=server)
        if data.get("credsStore") or domain in (data.get("credHelpers") or {}):
            log.warning("registry credentials: %s names a credential helper for %s, which the daemon does not "
                        "run; pulling anonymously", self.path, domain)
        return auth.AuthConfig()
