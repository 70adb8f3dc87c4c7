"""A Docker seccomp profile (the JSON `--security-opt seccomp=<file>` sends, or the daemon's
--seccomp-profile file) → the profile dict core/seccomp works on, with dockerd's errors:
moby's LoadProfile says "Decoding seccomp profile failed: " before Go's json error
(github.com/moby/profiles/seccomp v0.1.0, seccomp.go and seccomp_linux.go, for the types)."""

from __future__ import annotations

import json
from typing import Any

from servin import errors
from servin.api.wire.gojson import ANY, STRING, UINT, UINT64, decode, named, ptr, slice_of, struct
from servin.core import seccomp

PREFIX = "Decoding seccomp profile failed: "

_ARCH = named("specs.Arch", STRING)
_ACTION = named("specs.LinuxSeccompAction", STRING)
_ARG = struct("specs.LinuxSeccompArg", {
    "index": UINT, "value": UINT64, "valueTwo": UINT64, "op": named("specs.LinuxSeccompOperator", STRING),
})
_FILTER = struct("seccomp.Filter", {"caps": slice_of(STRING), "arches": slice_of(STRING), "minKernel": ANY})
_SYSCALL = struct("seccomp.Syscall", {"name": STRING, "comment": STRING, "includes": ptr(_FILTER),
                                      "excludes": ptr(_FILTER)},
                  embed=(("LinuxSyscall", struct("specs.LinuxSyscall", {
                      "names": slice_of(STRING), "action": _ACTION, "errnoRet": ptr(UINT),
                      "args": slice_of(_ARG)})),))
_LINUX_SECCOMP = struct("specs.LinuxSeccomp", {
    "defaultAction": _ACTION, "defaultErrnoRet": ptr(UINT), "architectures": slice_of(_ARCH),
    "flags": slice_of(named("specs.LinuxSeccompFlag", STRING)), "listenerPath": STRING,
    "listenerMetadata": STRING,
})
SECCOMP = struct("seccomp.Seccomp", {
    "archMap": slice_of(struct("seccomp.Architecture", {"architecture": _ARCH, "subArchitectures": slice_of(_ARCH)})),
    "syscalls": slice_of(ptr(_SYSCALL)),
}, embed=(("LinuxSeccomp", _LINUX_SECCOMP),))


def option(value: str) -> str:
    """The value of `--security-opt seccomp=<value>` as the engine keeps it: "" (none given),
    "unconfined", "builtin", or the profile's canonical JSON (refused here when invalid)."""
    if value in ("", seccomp.UNCONFINED, seccomp.BUILTIN):
        return value
    return canonical(decode_profile(value))


def decode_profile(text: str) -> dict[str, Any]:
    """The profile in `text`, type-checked as Go decodes it and checked as runc would load it."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidArgument(f"{PREFIX}{exc}") from None
    profile = decode(raw, SECCOMP, prefix=PREFIX)
    if not isinstance(profile, dict):  # a JSON null: Go leaves the zero profile (no seccomp)
        profile = {}
    for rule in profile.get("syscalls") or ():
        for key in ("includes", "excludes"):
            if rule and rule.get(key) and "minKernel" in rule[key]:
                version = _kernel_version(rule[key]["minKernel"])
                if version:
                    rule[key]["minKernel"] = version
                else:
                    del rule[key]["minKernel"]
    seccomp.check(profile)
    return profile


def canonical(profile: dict[str, Any]) -> str:
    """The one text of a decoded profile the engine keeps (and hashes)."""
    return json.dumps(profile, separators=(",", ":"))


def _kernel_version(value: Any) -> str:
    """moby's KernelVersion.UnmarshalJSON: "<kernel>.<major>", each a uint8, not 0.0 ("" = none)."""
    raw = json.dumps(value)
    expected = f'invalid kernel version: {raw}, expected "<kernel>.<major>"'
    if value is None:
        return ""
    if not isinstance(value, str):
        kind = "number" if isinstance(value, int | float) and not isinstance(value, bool) else (
            "bool" if isinstance(value, bool) else "array" if isinstance(value, list) else "object")
        raise errors.InvalidArgument(f"{PREFIX}{expected}: json: cannot unmarshal {kind} into Go value of type string")
    if value == "":
        return ""
    parts = value.split(".", 2)
    if len(parts) != 2:
        raise errors.InvalidArgument(PREFIX + expected)
    numbers = []
    for p in parts:
        if not p.isascii() or not p.isdigit():
            raise errors.InvalidArgument(f'{PREFIX}{expected}: strconv.ParseUint: parsing "{p}": invalid syntax')
        if int(p) > 255:
            raise errors.InvalidArgument(f'{PREFIX}{expected}: strconv.ParseUint: parsing "{p}": value out of range')
        numbers.append(int(p))
    if numbers == [0, 0]:
        raise errors.InvalidArgument(f"{PREFIX}{expected}: version cannot be 0.0")
    return f"{numbers[0]}.{numbers[1]}"
