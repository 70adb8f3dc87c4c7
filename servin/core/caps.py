"""Capability sets as dockerd computes them (moby oci/caps): names normalised, ALL, privileged.

"All capabilities" is always the daemon's own bounding set (`available`): a capability the host
does not have can be neither added nor granted to a privileged container.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from servin import errors
from servin.runtime.plan import CAPABILITIES

ALL = "ALL"

DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip


def names_of(mask: int) -> tuple[str, ...]:
    """The capabilities of a mask (CapBnd of /proc/<pid>/status), in bit order."""
    return tuple(name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1)


def normalize(caps: Iterable[str], field: str) -> list[str]:
    """NormalizeLegacyCapabilities: upper case, CAP_ prefixed, ALL kept; unknown names refused."""
    out = []
    for c in caps:
        c = c.upper()
        if c != ALL and not c.startswith("CAP_"):
            c = "CAP_" + c
        if c != ALL and c not in CAPABILITIES:
            raise errors.InvalidArgument(f'invalid {field}: unknown capability: "{c}"')
        out.append(c)
    return out


def check_available(cap_add: Iterable[str], available: Sequence[str]) -> None:
    """A capability the daemon does not hold cannot be added (moby v23+ wording)."""
    for c in normalize(cap_add, "CapAdd"):
        if c != ALL and c not in available:
            raise errors.InvalidArgument("invalid CapAdd: capability not supported by your kernel or not available "
                                         f'in the current environment: "{c}"')


def tweak(cap_add: Iterable[str], cap_drop: Iterable[str], *, privileged: bool,
          available: Sequence[str]) -> list[str]:
    """TweakCapabilities over Docker's 14 defaults."""
    if privileged:
        return list(available)
    add, drop = normalize(cap_add, "CapAdd"), normalize(cap_drop, "CapDrop")
    if not add and not drop:
        return list(DEFAULT_CAPS)
    if ALL in add:
        return [c for c in available if c not in drop]
    if ALL in drop:
        return list(dict.fromkeys(add))
    return list(dict.fromkeys([c for c in DEFAULT_CAPS if c not in drop] + add))
