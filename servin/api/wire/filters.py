"""The `filters` query parameter: Go's map form and docker-py's list form."""

from __future__ import annotations

import json

from servin import errors


def parse_filters(raw: str | None, allowed: frozenset[str]) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise errors.InvalidArgument(f"invalid filter: {raw}") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgument(f"invalid filter: {raw}")
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        if key not in allowed:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
        if isinstance(value, dict):
            out[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, str):
            out[key] = [value]
        else:
            raise errors.InvalidArgument(f"invalid filter: {raw}")
    return out
