"""Assertions the API tests share."""

from __future__ import annotations

JSON = "application/json"


async def error(r, status: int) -> str:  # noqa: ANN001 - an aiohttp ClientResponse
    """The message of a Docker error answer: the status, Content-Type exactly JSON, Docker's `message`
    and the reference's `code` (and `details` when there is something to add), nothing else."""
    assert r.status == status, await r.text()
    assert r.headers["Content-Type"] == JSON
    body = await r.json()
    assert list(body)[:2] == ["message", "code"] and set(body) <= {"message", "code", "details"}
    assert isinstance(body["code"], str) and body["code"].isupper()
    return body["message"]
