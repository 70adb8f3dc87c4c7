"""Servin: a container engine that speaks the Docker Engine API v1.41.

The Python clients load on first use, so `import servin` stays light for the daemon and the CLI:
`servin.APIClient` (docker-py's DockerClient with an API key or token; the extra `servin[client]`),
`servin.ManagementClient` and `servin.ManagementError` (the management API, /api/v1), `servin.Page` and
`servin.TLSConfig`."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it, imported when the name is first read (PEP 562)
_CLIENTS = {
    "APIClient": "servin.client.dockerpy",
    "ManagementClient": "servin.client.management",
    "ManagementError": "servin.client.management",
    "Page": "servin.client.management",
    "TLSConfig": "servin.client.tls",
}


def __getattr__(name: str) -> Any:
    module = _CLIENTS.get(name)
    if module is None:
        raise AttributeError(f"module 'servin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_CLIENTS])
