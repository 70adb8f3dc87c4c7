"""Assertions the API tests share."""

from __future__ import annotations

JSON = "application/json"


async def error(r, status: int) -> str:  # noqa: ANN001 - an aiohttp ClientResponse
    """The message of a Docker error answer: the status, Content-Type exactly JSON, only `message`."""
    assert r.status == status, await r.text()
    assert r.headers["Content-Type"] == JSON
    body = await r.json()
    assert list(body) == ["message"]
    return body["message"]
