"""The options of a `local` volume checked as dockerd's local driver checks them at create
(daemon/volume/local/local_unix.go validateOpts), with its wording; the errors reach the user
wrapped as dockerd's volume store wraps them (`create NAME: ...`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from servin import errors

_VALID = ("type", "o", "device", "size")
# an option -> the options it needs (dockerd's mandatoryOpts, in its order)
_NEEDS = {"device": ("type",), "type": ("device",), "o": ("device", "type")}
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def check_local_options(name: str, opts: Mapping[str, str]) -> None:
    """Raise dockerd's 400 for options the local driver refuses; `name` is the volume's."""
    try:
        _check(opts)
    except errors.InvalidArgument as exc:
        raise errors.InvalidArgument(f"create {name}: {exc.message}") from None


def _check(opts: Mapping[str, str]) -> None:
    for key in opts:
        if key not in _VALID:
            raise errors.InvalidArgument(f'invalid option: "{key}"')
    device = opts.get("device", "")
    if opts.get("type") == "cifs" and device and _url_port(device):
        raise errors.InvalidArgument("port not allowed in CIFS device URL, include 'port' in 'o='")
    if "size" in opts and ram_in_bytes(opts["size"]) > 0:
        raise errors.InvalidArgument("quota size requested but no quota support")  # no xfs project quotas here
    for key, needs in _NEEDS.items():
        if key in opts:
            for need in needs:
                if need not in opts:
                    raise errors.InvalidArgument(f'missing required option: "{need}"')


def _url_port(device: str) -> str:
    """Go's url.URL.Port() of a CIFS device such as //host:445/share ("" when it names none)."""
    rest = device.split("://", 1)[1] if "://" in device else device
    if not rest.startswith("//") and "://" not in device:
        return ""
    host = rest.lstrip("/").split("/", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host.partition("]")[2]
    _, colon, port = host.rpartition(":")
    return port if colon and port.isdigit() else ""


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes (binary multiples), with its errors."""
    sep = max(value.rfind(ch) for ch in "0123456789. ")
    if sep == -1:
        raise errors.InvalidArgument(f"invalid size: '{value}'")
    num, sfx = (value[: sep + 1], value[sep + 1:]) if value[sep] != " " else (value[:sep], value[sep + 1:])
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", num):
        raise errors.InvalidArgument(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    size = float(num)
    if math.isinf(size):  # Go's ParseFloat: ±Inf with ErrRange
        raise errors.InvalidArgument(f'strconv.ParseFloat: parsing "{num}": value out of range')
    if size < 0:
        raise errors.InvalidArgument(f"invalid size: '{value}'")
    if not sfx:
        return _int64(size)
    low = sfx.lower()
    if len(sfx) > 3 or (low[0] == "b" and len(low) > 1) or (low[0] != "b" and low[0] not in _UNITS) \
            or (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
        raise errors.InvalidArgument(f"invalid suffix: '{low if len(sfx) <= 3 else sfx}'")
    return _int64(size) if low[0] == "b" else _int64(size * _UNITS[low[0]])


def _int64(x: float) -> int:
    """Go's int64(x) on amd64: out of range (an infinite product included) is math.MinInt64."""
    if not math.isfinite(x) or not -(1 << 63) <= x < (1 << 63):
        return -(1 << 63)
    return int(x)
