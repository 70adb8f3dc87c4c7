"""FROM's image pulled through the registry client, its progress into the build's output, with
the credentials the client sent in X-Registry-Config for that registry."""

from __future__ import annotations

from collections.abc import Mapping

from servin.build.steps import BuildSink, Puller
from servin.images import reference as refs
from servin.registry import manifest as mf
from servin.registry import progress
from servin.registry.auth import AuthConfig
from servin.registry.service import RegistryService

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def credentials(auth: Mapping[str, AuthConfig], domain: str) -> AuthConfig:
    keys = DOCKER_HUB_KEYS if domain == refs.DEFAULT_DOMAIN else (domain, f"https://{domain}", f"http://{domain}")
    for key in keys:
        if key in auth:
            return auth[key]
    return AuthConfig()


def registry_puller(registry: RegistryService) -> Puller:
    async def pull(ref: str, platform: str, auth: Mapping[str, AuthConfig], sink: BuildSink) -> None:
        parsed = refs.parse_normalized(ref)
        if parsed.tag is None and parsed.digest is None:
            parsed = parsed.with_tag("latest")
        await registry.pull(parsed, credentials(auth, parsed.domain), mf.parse_platform(platform) if platform else None,
                            progress.Output(sink))

    return pull
