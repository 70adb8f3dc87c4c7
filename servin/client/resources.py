"""The resource groups of `ManagementClient` (`client.containers`, `client.images`, ...): one method an
endpoint of `/api/v1`, its query and body named as the reference names them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, cast
from urllib.parse import quote

# `filters`: {"status": "exited", "label": ["a=1", "b"]} or ["status=exited", "label=a=1"]
Filters = Mapping[str, str | Sequence[str]] | Sequence[str] | None


class Caller(Protocol):
    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None) -> Any: ...

    def stream(self, method: str, path: str, *, query: Mapping[str, Any] | None = None) -> Iterator[Any]: ...


class _Group:
    def __init__(self, client: Caller) -> None:
        self._client = client

    def _object(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None) -> dict[str, Any]:
        """A call that answers one JSON object."""
        return cast(dict[str, Any], self._client.request(method, path, query=query, body=body))

    def _listing(self, path: str, page: int | None, limit: int | None, *, all: bool = False,
                 filters: Filters = None) -> Any:
        query = {"all": all or None, "filter": filter_words(filters), "page": page, "limit": limit}
        return self._client.request("GET", path, query=query)


class System(_Group):
    def info(self) -> dict[str, Any]:
        """version, docker_version, platform, cpu_count, memory_total, disk_free."""
        return self._object("GET", "/system/info")

    def status(self) -> dict[str, Any]:
        """status ("healthy" or what is wrong), services, uptime."""
        return self._object("GET", "/system/status")

    def stats(self) -> dict[str, Any]:
        """The host now: cpu, memory, disk, network and the containers by state."""
        return self._object("GET", "/system/stats")


class Containers(_Group):
    def list(self, all: bool = False, filters: Filters = None, page: int | None = None,
             limit: int | None = None) -> Any:
        """A `Page` of {id, name, image, status, created, ports}: running containers, every one with `all`."""
        return self._listing("/containers", page, limit, all=all, filters=filters)

    def get(self, id: str) -> dict[str, Any]:
        """Details by ID, short ID or name, with resource_usage."""
        return self._object("GET", f"/containers/{segment(id)}")

    def start(self, id: str) -> dict[str, Any]:
        """{id, name, status}; starting a running container succeeds."""
        return self._object("POST", f"/containers/{segment(id)}/start")

    def stop(self, id: str, timeout: int | None = None) -> dict[str, Any]:
        """`timeout`: seconds before SIGKILL (None: the container's own stop timeout, else 10)."""
        return self._object("POST", f"/containers/{segment(id)}/stop", query={"timeout": timeout})

    def restart(self, id: str, timeout: int | None = None) -> dict[str, Any]:
        return self._object("POST", f"/containers/{segment(id)}/restart", query={"timeout": timeout})

    def logs(self, id: str, tail: int | str | None = None, since: float | str | None = None,
             until: float | str | None = None, stdout: bool | None = None, stderr: bool | None = None,
             follow: bool = False) -> Any:
        """The entries {timestamp, stream, message}: a list, or with `follow` an iterator that yields each
        entry as it is written until the container stops (leave it to stop following). `tail`: a number or
        "all" (default 100); `since`/`until`: unix seconds or RFC 3339."""
        query = {"tail": tail, "since": since, "until": until, "stdout": stdout, "stderr": stderr}
        path = f"/containers/{segment(id)}/logs"
        if not follow:
            return self._client.request("GET", path, query=query)["logs"]
        return (entry for data in self._client.stream("GET", path, query={**query, "follow": True})
                for entry in data["logs"])

    def stats(self, id: str, stream: bool = False) -> Any:
        """{id, name, timestamp, cpu_stats, memory_stats, network_stats, io_stats}; with `stream` an
        iterator of them, one a second."""
        path = f"/containers/{segment(id)}/stats"
        if not stream:
            return self._client.request("GET", path)
        return self._client.stream("GET", path, query={"stream": True})


class Images(_Group):
    def list(self, all: bool = False, filters: Filters = None, page: int | None = None,
             limit: int | None = None) -> Any:
        """A `Page` of {id, repository, tag, created, size}, one item a tag."""
        return self._listing("/images", page, limit, all=all, filters=filters)

    def get(self, id: str) -> dict[str, Any]:
        """Details with architecture, os, author, config and history."""
        return self._object("GET", f"/images/{segment(id)}")

    def pull(self, repository: str, tag: str = "latest") -> dict[str, Any]:
        """Pulls through the daemon (its registry credentials) and answers {id, repository, tag, size}."""
        return self._object("POST", "/images/pull", body={"repository": repository, "tag": tag})

    def remove(self, id: str, force: bool = False, noprune: bool = False) -> dict[str, Any]:
        query = {"force": force or None, "noprune": noprune or None}
        return self._object("DELETE", f"/images/{segment(id)}", query=query)


class Webhooks(_Group):
    def add(self, url: str, events: Sequence[str], secret: str | None = None) -> dict[str, Any]:
        """A webhook for `events` (e.g. ["container.start", "container.stop"]); deliveries are signed
        with `secret` (X-Servin-Signature)."""
        body: dict[str, Any] = {"url": url, "events": list(events)}
        if secret is not None:
            body["secret"] = secret
        return self._object("POST", "/webhooks", body=body)

    def list(self, page: int | None = None, limit: int | None = None) -> Any:
        return self._listing("/webhooks", page, limit)

    def remove(self, id: str) -> Any:
        return self._client.request("DELETE", f"/webhooks/{segment(id)}")


class Keys(_Group):
    def create(self, name: str, scope: str = "read", expires: str | None = None,
               rate_limit: str | None = None) -> dict[str, Any]:
        """A new API key; the answer's "key" is its text, shown this once. `expires`: "30d"; `rate_limit`:
        "10/s"."""
        body = {"name": name, "scope": scope, "expires": expires, "rate_limit": rate_limit}
        return self._object("POST", "/keys", body=body)

    def list(self, page: int | None = None, limit: int | None = None) -> Any:
        return self._listing("/keys", page, limit)

    def revoke(self, id: str) -> Any:
        return self._client.request("DELETE", f"/keys/{segment(id)}")


class Tokens(_Group):
    def create(self, scope: str | None = None, ttl: str | None = None, subject: str | None = None) -> dict[str, Any]:
        """A bearer token of the daemon's own (HS256)."""
        body = {k: v for k, v in (("scope", scope), ("ttl", ttl), ("subject", subject)) if v is not None}
        return self._object("POST", "/tokens", body=body)


class Troubleshoot(_Group):
    def connection(self) -> dict[str, Any]:
        """{connected, issues, fixes} about this daemon's sockets, data root, cgroups and overlay."""
        return self._object("GET", "/monitoring/troubleshoot/connection")


def segment(value: str) -> str:
    """An ID or name as one path segment."""
    return quote(str(value), safe=":@")


def filter_words(filters: Filters) -> list[str] | None:
    """`filter=key=value` words, repeated."""
    if not filters:
        return None
    if isinstance(filters, Mapping):
        return [f"{k}={v}" for k, vs in filters.items() for v in ([vs] if isinstance(vs, str) else vs)]
    if isinstance(filters, str):
        return [filters]
    return [str(word) for word in filters]
