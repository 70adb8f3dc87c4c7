"""Docker seccomp profiles → the OCI runtime spec's `linux.seccomp` section (pure).

The default profile, `seccomp_default.json`, is moby's byte for byte: moby/moby tag v28.5.2
(commit 89c5e8fd66634b6128fc4c0e6f1236e2540e46e0), `vendor/github.com/moby/profiles/seccomp/default.json`
(module github.com/moby/profiles/seccomp v0.1.0), sha256
01536f1d1df938ae611eba20d6349e0de7a99b6ecdee1549427a0b01b8301e28 (tests/unit/test_seccomp.py checks it).
Against dockerd 20.10.24's copy it adds the syscalls of newer kernels (fchmodat2, futex_wait,
pkey_*, ...), drops io_uring and refuses AF_VSOCK sockets.

`to_oci` follows moby's setupSeccomp (profiles/seccomp/seccomp_linux.go): a rule is kept when
every `includes` condition holds and no `excludes` one does (`caps` against the container's
bounding set, `arches` against the host's architecture in moby's native names, `minKernel`
against the running kernel's major.minor); `archMap` contributes the host's architecture and its
sub-architectures. `profile_for` is dockerd's WithSeccomp (daemon/seccomp_linux.go, v28).
`check` refuses at create what runc would refuse at start, in runc's words
(libcontainer/seccomp/config.go, libseccomp-golang's MakeCondition).

Profiles are dicts keyed as Docker spells them (api/wire/seccomp decodes a client's JSON into that).
"""

from __future__ import annotations

import functools
import json
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument
from servin.runtime.seccomp import FILTER_FLAGS, OPERATORS

UNCONFINED = "unconfined"
BUILTIN = "builtin"  # seccomp=builtin: the default profile whatever the daemon's (dockerd 28)
DEFAULT_PATH = Path(__file__).with_name("seccomp_default.json")

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")
ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
          "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
          "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_LOONGARCH64")  # runc's list
FLAGS = tuple(FILTER_FLAGS)  # the runtime-spec's filter flags the runtime applies

# uname -m → (moby's native name for `arches`, the archMap entry): GOARCH through moby's
# goToNative and nativeToSeccomp tables (profiles/seccomp/seccomp_linux.go)
MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "i386": ("x86", "SCMP_ARCH_X86"),
    "i686": ("x86", "SCMP_ARCH_X86"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "armv6l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "ppc64": ("ppc64", "SCMP_ARCH_PPC64"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"), "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}


@dataclass(frozen=True, slots=True)
class Host:
    """What a profile's conditions are evaluated against."""

    arch: str  # moby's native name: amd64, arm64, x86, ...
    oci_arch: str  # SCMP_ARCH_X86_64, ... ("" when moby knows no mapping)
    kernel: tuple[int, int]  # major, minor of the running kernel

    @classmethod
    def of(cls, machine: str, release: str) -> Host:
        arch, oci = MACHINES.get(machine, (machine, ""))
        m = re.match(r"(\d+)\.(\d+)", release)
        return cls(arch, oci, (int(m.group(1)), int(m.group(2))) if m else (0, 0))

    @classmethod
    def this(cls) -> Host:
        return cls.of(platform.machine(), platform.release())


@functools.cache
def _default_text() -> str:
    return DEFAULT_PATH.read_text()


def default_profile() -> dict[str, Any]:
    """A fresh copy of Docker's default profile."""
    return json.loads(_default_text())


def check(profile: Mapping[str, Any]) -> None:
    """Refuse a profile runc could not load (or that needs a seccomp agent), in runc's words."""
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("both 'architectures' and 'archMap' are specified in the seccomp profile, "
                              "use either 'architectures' or 'archMap'")
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return  # moby: no default action and no rules is no seccomp at all
    if profile.get("listenerPath"):
        raise InvalidArgument("seccomp listenerPath (a seccomp agent) is not supported")
    _check_action(profile.get("defaultAction", ""))
    if profile.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise InvalidArgument("SCMP_ACT_NOTIFY cannot be used as default action")
    for arch in list(profile.get("architectures") or ()) + [
            a for m in profile.get("archMap") or () for a in [m.get("architecture", "")] + list(
                m.get("subArchitectures") or ())]:
        if arch not in ARCHES:
            raise InvalidArgument(f"string {arch} is not a valid arch for seccomp")
    for flag in profile.get("flags") or ():
        if flag not in FLAGS:
            raise InvalidArgument(f"seccomp flag {flag} is not supported")
    for rule in profile.get("syscalls") or ():
        if rule is None:
            raise InvalidArgument("encountered nil syscall while initializing Seccomp")
        if rule.get("name") and rule.get("names"):
            raise InvalidArgument("both 'name' and 'names' are specified in the seccomp profile, "
                                  "use either 'name' or 'names'")
        _check_action(rule.get("action", ""))
        if rule.get("action") == "SCMP_ACT_NOTIFY":
            raise InvalidArgument("seccomp action SCMP_ACT_NOTIFY (a seccomp agent) is not supported")
        for arg in rule.get("args") or ():
            if arg.get("op", "") not in OPERATORS:
                raise InvalidArgument(f"string {arg.get('op', '')} is not a valid operator for seccomp")
            if arg.get("index", 0) > 5:
                raise InvalidArgument(f"syscalls only have up to 6 arguments ({arg['index']} given)")


def _check_action(action: str) -> None:
    if action not in ACTIONS:
        raise InvalidArgument(f"string {action} is not a valid action for seccomp")


def profile_for(option: str, *, daemon_profile: str | Mapping[str, Any], privileged: bool) -> dict[str, Any] | None:
    """The Docker profile a container runs under, None for none (dockerd 28's WithSeccomp).
    option: the container's `seccomp=` ("" none given, "unconfined", "builtin" or a profile as JSON);
    daemon_profile: the daemon's --seccomp-profile ("builtin", "unconfined" or a profile)."""
    if option == UNCONFINED:
        return None
    if option == BUILTIN:  # also when privileged (dockerd 28 fails to decode "builtin" there)
        return default_profile()
    if option:
        return json.loads(option)
    if privileged:
        return None
    if isinstance(daemon_profile, Mapping):
        return dict(daemon_profile)
    return None if daemon_profile == UNCONFINED else default_profile()


def to_oci(profile: Mapping[str, Any], *, caps: Sequence[str], host: Host) -> dict[str, Any] | None:
    """The OCI `linux.seccomp` section of a (checked) Docker profile for a container whose bounding
    capabilities are `caps`, on `host`. None when the profile has no default action and no rules."""
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "")}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or ())
    for entry in profile.get("archMap") or ():
        if host.oci_arch and entry.get("architecture") == host.oci_arch:
            arches += [entry["architecture"], *(entry.get("subArchitectures") or ())]
            break
    if arches:
        out["architectures"] = arches
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    held = set(caps)
    rules = []
    for rule in profile.get("syscalls") or ():
        if _applies(rule, held, host):
            names = [rule["name"]] if rule.get("name") else list(rule.get("names") or ())
            syscall: dict[str, Any] = {"names": names, "action": rule.get("action", "")}
            if rule.get("errnoRet") is not None:
                syscall["errnoRet"] = rule["errnoRet"]
            if rule.get("args"):
                syscall["args"] = [_arg(a) for a in rule["args"]]
            rules.append(syscall)
    if rules:
        out["syscalls"] = rules
    return out


def _applies(rule: Mapping[str, Any], caps: set[str], host: Host) -> bool:
    exc = rule.get("excludes") or {}
    if host.arch in (exc.get("arches") or ()):
        return False
    if any(c in caps for c in exc.get("caps") or ()):
        return False
    if exc.get("minKernel") and host.kernel >= kernel_version(exc["minKernel"]):
        return False
    inc = rule.get("includes") or {}
    if inc.get("arches") and host.arch not in inc["arches"]:
        return False
    if not all(c in caps for c in inc.get("caps") or ()):
        return False
    return not (inc.get("minKernel") and host.kernel < kernel_version(inc["minKernel"]))


def _arg(a: Mapping[str, Any]) -> dict[str, Any]:
    out = {"index": a.get("index", 0), "value": a.get("value", 0)}
    if a.get("valueTwo"):
        out["valueTwo"] = a["valueTwo"]
    out["op"] = a.get("op", "")
    return out


def kernel_version(text: str) -> tuple[int, int]:
    """"4.8" → (4, 8) (checked by the decoder: moby's KernelVersion)."""
    major, minor = text.split(".")
    return int(major), int(minor)
