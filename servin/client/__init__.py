"""Python clients of the daemon's HTTP API (the `servin` command is built on `APIClient`)."""

from servin.client.api import APIClient, APIError, DaemonUnreachable
from servin.client.endpoint import DEFAULT_HOST
from servin.client.models import ApiKey, KeyPage, NewKey, Token
from servin.client.tls import TLSConfig

__all__ = ["APIClient", "APIError", "ApiKey", "DEFAULT_HOST", "DaemonUnreachable", "KeyPage", "NewKey", "TLSConfig",
           "Token"]
