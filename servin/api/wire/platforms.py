"""The `platform` query parameters of the image routes (API 1.46 to 1.52): JSON OCI platforms, decoded as
dockerd's httputils.DecodePlatforms does. Servin's store holds one platform per image, so a route serves
an image when its platform is among those asked and answers dockerd's 404 otherwise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from servin import errors
from servin.api.wire import versions
from servin.images.model import Image, host_architecture

HOST_PLATFORM = {"os": "linux", "architecture": host_architecture(), "variant": ""}


def decode(values: Sequence[str]) -> list[dict[str, str]]:
    """The platforms of the request's `platform` parameters (none: every platform)."""
    if len(values) > 1 and not versions.value("several platforms"):
        raise errors.InvalidArgument("multiple platform parameters are not supported in this API version; "
                                     "use API version 1.52 or later")
    out = []
    for text in values:
        if not text:
            continue
        try:
            p: Any = json.loads(text)
        except ValueError as exc:
            raise errors.InvalidArgument(f"failed to parse platform: {exc}") from None
        if not isinstance(p, dict) or not all(isinstance(p.get(k, ""), str) for k in ("os", "architecture",
                                                                                     "variant")):
            raise errors.InvalidArgument(f"failed to parse platform: {text}")
        if not p.get("os") or not p.get("architecture"):
            raise errors.InvalidArgument(f"invalid platform {text}: os and architecture are required")
        out.append({"os": p["os"], "architecture": p["architecture"], "variant": p.get("variant", "")})
    return out


def formatted(p: dict[str, str]) -> str:
    return "/".join(x for x in (p["os"], p["architecture"], p.get("variant", "")) if x)


def of_image(img: Image) -> dict[str, str]:
    return {"os": img.os or "linux", "architecture": img.architecture, "variant": img.variant}


def matches(img: Image, wanted: Sequence[dict[str, str]]) -> bool:
    have = of_image(img)
    return any(w["os"] == have["os"] and w["architecture"] == have["architecture"]
               and (not w["variant"] or w["variant"] == have["variant"]) for w in wanted)


def require(img: Image, name: str, wanted: Sequence[dict[str, str]]) -> None:
    """dockerd's 404 when the image's platform is not among those asked (nothing asked: any)."""
    if wanted and not matches(img, wanted):
        raise errors.NotFound(f"image with reference {name} was found but its platform ({formatted(of_image(img))}) "
                              f"does not match the specified platform ({', '.join(formatted(w) for w in wanted)})")
