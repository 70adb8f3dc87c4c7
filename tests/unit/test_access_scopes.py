"""Which scope a request needs."""

from __future__ import annotations

import pytest

from servin.access.scopes import Scope, required

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("method, path, scope", [
    ("GET", "/_ping", Scope.READ),
    ("HEAD", "/_ping", Scope.READ),
    ("GET", "/v1.41/containers/json", Scope.READ),
    ("GET", "/events", Scope.READ),
    ("GET", "/v1.41/containers/abc/logs", Scope.READ),
    ("GET", "/v1.41/containers/abc/json", Scope.READ),
    ("HEAD", "/v1.41/containers/abc/archive", Scope.READ),  # a stat
    ("GET", "/v1.41/containers/abc/archive", Scope.WRITE),
    ("GET", "/containers/abc/export", Scope.WRITE),
    ("GET", "/v1.41/containers/abc/attach/ws", Scope.WRITE),
    ("POST", "/v1.41/containers/abc/attach", Scope.WRITE),
    ("POST", "/v1.41/containers/create", Scope.WRITE),
    ("DELETE", "/v1.41/images/busybox", Scope.WRITE),
    ("PUT", "/containers/abc/archive", Scope.WRITE),
    ("GET", "/api/v1/keys", Scope.ADMIN),
    ("POST", "/api/v1/keys", Scope.ADMIN),
    ("DELETE", "/api/v1/keys/0123456789ab", Scope.ADMIN),
    ("POST", "/api/v1/tokens", Scope.ADMIN),
    ("GET", "/api/v1/webhooks", Scope.ADMIN),  # the URLs the engine's events go to
    ("POST", "/api/v1/webhooks", Scope.ADMIN),
    ("DELETE", "/api/v1/webhooks/0123456789abcdef", Scope.ADMIN),
])
def test_required_scope(method: str, path: str, scope: Scope) -> None:
    assert required(method, path) is scope


def test_scopes_are_ordered_and_named() -> None:
    assert Scope.READ < Scope.WRITE < Scope.ADMIN
    assert [str(s) for s in Scope] == ["read", "write", "admin"]
    assert Scope.parse("write") is Scope.WRITE
    with pytest.raises(ValueError, match="invalid scope 'root'"):
        Scope.parse("root")
    with pytest.raises(ValueError):
        Scope.parse("READ")
