"""`servin.APIClient`: docker-py's `DockerClient` that sends an API key (X-API-Key) or a bearer token
(Authorization: Bearer) on every call, the API version probe included, so docker-py's whole surface
(`client.containers.create(...)`, `container.logs(follow=True)`, ...) works against a daemon that requires
a credential. docker-py is the optional extra `servin[client]`; `import servin` does not load it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from servin.client.api import header_safe
from servin.client.endpoint import DEFAULT_HOST
from servin.client.tls import TLSConfig
from servin.errors import InvalidArgument

try:
    import docker
    import docker.tls
    import docker.utils
except ImportError as exc:  # the extra is not installed
    raise ImportError("servin.APIClient is built on docker-py, which is not installed: "
                      "pip install 'servin[client]'") from exc


class APIClient(docker.DockerClient):
    """`base_url`: unix:///path, tcp://host:port, http(s)://host:port (default $SERVIN_HOST, $DOCKER_HOST,
    else the daemon's socket unix:///run/servin/servin.sock). `api_key` or `token`: the credential sent on
    every call. `tls`: True, a `servin.TLSConfig` or a `docker.tls.TLSConfig`. `version`: the API version
    (None asks the daemon). Other keywords go to docker-py's `DockerClient` (`max_pool_size`, ...)."""

    def __init__(self, base_url: str | None = None, *, api_key: str | None = None, token: str | None = None,
                 tls: bool | TLSConfig | Any = False, version: str | None = None,
                 timeout: float = docker.constants.DEFAULT_TIMEOUT_SECONDS, **kwargs: Any) -> None:
        base_url = base_url or os.environ.get("SERVIN_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        # docker-py's DockerClient only builds its low-level client (self.api): this one carries the credential
        self.api = CredentialedAPIClient(credentials(api_key, token), base_url=base_url, version=version,
                                         timeout=timeout, tls=docker_tls(tls), **kwargs)

    @classmethod
    def from_env(cls, *, api_key: str | None = None, token: str | None = None,
                 environment: Mapping[str, str] | None = None, **kwargs: Any) -> APIClient:
        """As `docker.from_env()` (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), SERVIN_HOST first, and
        the credential from SERVIN_API_KEY or SERVIN_TOKEN unless one is given."""
        env = os.environ if environment is None else environment
        params = docker.utils.kwargs_from_env(environment=env)
        if env.get("SERVIN_HOST"):
            params["base_url"] = env["SERVIN_HOST"]
        if api_key is None and token is None:
            api_key, token = env.get("SERVIN_API_KEY") or None, env.get("SERVIN_TOKEN") or None
        return cls(api_key=api_key, token=token, **params, **kwargs)


class CredentialedAPIClient(docker.APIClient):
    """docker-py's low-level client with the credential's headers on its session, and the CA of its TLS
    configuration used even where the environment names another bundle."""

    def __init__(self, headers: Mapping[str, str], **kwargs: Any) -> None:
        self._credential_headers = dict(headers)  # read by the version probe inside super().__init__
        super().__init__(**kwargs)
        self.headers.update(self._credential_headers)

    def _retrieve_server_version(self) -> Any:
        self.headers.update(self._credential_headers)
        return super()._retrieve_server_version()

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace the CA of the session: the CA given in
        `tls` wins here."""
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


def credentials(api_key: str | None, token: str | None) -> dict[str, str]:
    if api_key and token:
        raise InvalidArgument("give an API key or a bearer token, not both")
    if api_key:
        return {"X-API-Key": header_safe(api_key, "API key")}
    if token:
        return {"Authorization": "Bearer " + header_safe(token, "token")}
    return {}


def docker_tls(tls: bool | TLSConfig | Any) -> Any:
    """docker-py's form of `tls`: a `servin.TLSConfig` becomes a `docker.tls.TLSConfig`."""
    if not isinstance(tls, TLSConfig):
        return tls
    cert = (str(tls.client_cert[0]), str(tls.client_cert[1])) if tls.client_cert else None
    ca = str(tls.ca_cert) if tls.verify and tls.ca_cert else None
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=tls.verify)
