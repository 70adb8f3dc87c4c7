"""Seccomp: Docker's default profile as data, its conversion to the OCI section (golden against
what dockerd 20.10.24 wrote, see data/seccomp/README.md), profile choice, checks with
dockerd's and runc's wording, the compiled-program cache and the plan tag."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from servin import errors
from servin.api.wire import seccomp as wire_seccomp
from servin.core import seccomp
from servin.runtime import plan as plan_mod
from servin.runtime.seccomp import DEFAULT_FLAGS, ProgramCache, compile_bpf, filter_flags

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "seccomp"
AMD64 = seccomp.Host.of("x86_64", "6.18.44-fc-v1300")
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE"]  # Docker's 14 defaults
SYS_ADMIN_RULE = ["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                  "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
                  "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                  "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"]
SYS_PTRACE_RULE = ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]


def load(name: str) -> object:
    return json.loads((DATA / name).read_text())


def oci(caps=CAPS, host=AMD64, profile=None):  # noqa: ANN001, ANN201
    return seccomp.to_oci(profile or seccomp.default_profile(), caps=caps, host=host)


def allowed(section: dict) -> set[str]:
    """Names allowed without any argument condition."""
    return {n for r in section["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


# ---- the data ---------------------------------------------------------------------------------

def test_default_profile_is_mobys_file_byte_for_byte():
    digest = hashlib.sha256(seccomp.DEFAULT_PATH.read_bytes()).hexdigest()
    assert digest in seccomp.__doc__.replace("\n", "")  # the provenance line names it
    assert digest == "01536f1d1df938ae611eba20d6349e0de7a99b6ecdee1549427a0b01b8301e28"


# ---- conversion: golden against dockerd 20.10.24 -----------------------------------------------

@pytest.mark.parametrize("variant, extra", [("default", []), ("sysadmin", ["CAP_SYS_ADMIN"]),
                                            ("ptrace", ["CAP_SYS_PTRACE"])])
def test_conversion_matches_dockerd_20_10(variant, extra):
    profile = wire_seccomp.decode_profile((DATA / "moby-20.10.24-default-profile.json").read_text())
    assert oci(CAPS + extra, profile=profile) == load(f"dockerd-20.10.24-{variant}.json")


def test_custom_profile_matches_dockerd_20_10():
    # a `name` rule included only with CAP_SYS_ADMIN, one excluded from kernel 4.0 on
    profile = wire_seccomp.decode_profile((DATA / "custom-profile.json").read_text())
    assert oci(profile=profile) == load("dockerd-20.10.24-custom.json")


def test_default_profile_golden():
    assert oci() == load("servin-default-amd64-6.18.json")


def test_default_blocks_what_docker_blocks():
    section = oci()
    assert section["defaultAction"] == "SCMP_ACT_ERRNO" and section["defaultErrnoRet"] == 1
    assert section["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    ok = allowed(section)
    assert {"read", "write", "execve", "fork", "arch_prctl", "ptrace"} <= ok
    for name in ("mount", "unshare", "setns", "umount2", "reboot", "init_module", "kexec_load", "bpf",
                 "perf_event_open", "open_by_handle_at", "keyctl", "add_key", "clock_settime", "io_uring_setup"):
        assert name not in ok, name
    rules = {json.dumps(r, sort_keys=True) for r in section["syscalls"]}
    # clone without namespace flags; clone3 answers ENOSYS so libcs fall back to clone
    assert json.dumps({"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}, sort_keys=True) in rules
    assert json.dumps({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}, sort_keys=True) in rules
    assert json.dumps({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}, sort_keys=True) in rules  # no AF_VSOCK


def test_capabilities_add_their_rules():
    base = oci()["syscalls"]
    admin = oci(CAPS + ["CAP_SYS_ADMIN"])["syscalls"]
    added = [r for r in admin if r not in base]
    removed = [r for r in base if r not in admin]
    assert added == [{"names": SYS_ADMIN_RULE, "action": "SCMP_ACT_ALLOW"}]
    assert [r["names"] for r in removed] == [["clone"], ["clone3"]]  # the restricted clone, clone3's ENOSYS
    ptrace = oci(CAPS + ["CAP_SYS_PTRACE"])["syscalls"]
    assert [r for r in ptrace if r not in base] == [{"names": SYS_PTRACE_RULE, "action": "SCMP_ACT_ALLOW"}]
    assert "reboot" in allowed(oci(CAPS + ["CAP_SYS_BOOT"])) and "reboot" not in allowed(oci())


def test_arches_and_kernel_conditions():
    arm64 = oci(host=seccomp.Host.of("aarch64", "6.1.0"))
    assert arm64["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in allowed(arm64) and "arm_fadvise64_64" in allowed(arm64)
    old = oci(host=seccomp.Host.of("x86_64", "4.4.0-generic"))
    assert "ptrace" not in allowed(old)  # minKernel 4.8
    assert seccomp.Host.of("x86_64", "5.10.0-rc5").kernel == (5, 10)


# ---- which profile --------------------------------------------------------------------------

CUSTOM = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}


@pytest.mark.parametrize("option, daemon, privileged, expected", [
    ("", "builtin", False, "default"),
    ("unconfined", "builtin", False, None),
    ("", "unconfined", False, None),
    ("", CUSTOM, False, "custom"),
    ("builtin", CUSTOM, False, "default"),
    ("", "builtin", True, None),  # privileged: unconfined
    (json.dumps(CUSTOM), "builtin", True, "custom"),  # unless a profile is given (dockerd 28)
    (json.dumps(CUSTOM), "unconfined", False, "custom"),
])
def test_profile_for(option, daemon, privileged, expected):
    got = seccomp.profile_for(option, daemon_profile=daemon, privileged=privileged)
    assert got == {"default": seccomp.default_profile(), "custom": CUSTOM, None: None}[expected]


def test_empty_profile_is_no_seccomp():
    assert seccomp.to_oci({}, caps=CAPS, host=AMD64) is None


# ---- checks, in dockerd's and runc's words --------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('{"defaultAction": 5}', "Decoding seccomp profile failed: json: cannot unmarshal number into Go struct "
                             "field Seccomp.LinuxSeccomp.defaultAction of type specs.LinuxSeccompAction"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read"}]}',
     "Decoding seccomp profile failed: json: cannot unmarshal string into Go struct field "
     "Syscall.syscalls.LinuxSyscall.names of type []string"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", '
     '"includes": {"minKernel": "4"}}]}',
     'Decoding seccomp profile failed: invalid kernel version: "4", expected "<kernel>.<major>"'),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", '
     '"excludes": {"minKernel": "0.0"}}]}',
     'Decoding seccomp profile failed: invalid kernel version: "0.0", expected "<kernel>.<major>": '
     "version cannot be 0.0"),
    ("builtins", "Decoding seccomp profile failed: Expecting value: line 1 column 1 (char 0)"),
    ('{"defaultAction": "SCMP_ACT_BOGUS"}', "string SCMP_ACT_BOGUS is not a valid action for seccomp"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}',
     "string SCMP_CMP_ALMOST is not a valid operator for seccomp"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
     "syscalls only have up to 6 arguments (6 given)"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}',
     "string SCMP_ARCH_Z80 is not a valid arch for seccomp"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"], '
     '"archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}',
     "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' "
     "or 'archMap'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}',
     "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_NOTIFY"}]}',
     "seccomp action SCMP_ACT_NOTIFY (a seccomp agent) is not supported"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}',
     "seccomp listenerPath (a seccomp agent) is not supported"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}',
     "seccomp flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported"),
])
def test_invalid_profiles_refused(text, message):
    with pytest.raises(errors.InvalidArgument) as e:
        wire_seccomp.option(text)
    assert e.value.message == message


def test_option_keeps_names_and_canonical_json():
    assert wire_seccomp.option("unconfined") == "unconfined"
    assert wire_seccomp.option("builtin") == "builtin"
    assert wire_seccomp.option("") == ""
    # field names match as Go matches them; the engine keeps Docker's spelling
    kept = json.loads(wire_seccomp.option('{"DEFAULTACTION": "SCMP_ACT_ALLOW", "Syscalls": '
                                          '[{"Names": ["mkdir"], "Action": "SCMP_ACT_ERRNO"}]}'))
    assert kept == CUSTOM


# ---- compilation, cache, plan -----------------------------------------------------------------

def test_program_compiles_once_per_section(tmp_path):
    cache = ProgramCache(tmp_path / "seccomp")
    first = cache.program(oci())
    assert cache.program(oci()) == first and cache.compiled == 1
    size = first.stat().st_size
    assert size % 8 == 0 and 0 < size // 8 <= 4096  # struct sock_filter[], within BPF_MAXINSNS
    second = cache.program(oci(CAPS + ["CAP_SYS_ADMIN"]))
    assert second != first and cache.compiled == 2
    assert ProgramCache(tmp_path / "seccomp").program(oci()) == first  # another daemon run reuses it
    assert sorted(p.name for p in (tmp_path / "seccomp").iterdir()) == sorted([first.name, second.name])
    assert (tmp_path / "seccomp").stat().st_mode & 0o777 == 0o700


def test_compile_follows_runc_rules():
    # a rule with the default action is left out; conditions on one argument become rules of their own
    allow = {"defaultAction": "SCMP_ACT_ALLOW"}
    same = compile_bpf({**allow, "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}]})
    empty = compile_bpf(allow)
    assert same == empty
    two = compile_bpf({**allow, "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}]})
    assert len(two) > len(empty)
    unknown = compile_bpf({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_call"],
                                                                             "action": "SCMP_ACT_ERRNO"}]})
    assert unknown == empty  # skipped, as runc skips what libseccomp does not know


def test_filter_flags():
    assert filter_flags({}) == DEFAULT_FLAGS == 4  # runc's default: SPEC_ALLOW
    assert filter_flags({"flags": []}) == 0
    assert filter_flags({"flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"]}) == 2


def test_plan_tag():
    config = {"process": {"args": ["true"]}, "root": {"path": "/r"}, "linux": {"seccomp": oci()}}
    with pytest.raises(errors.InvalidArgument):  # never dropped: a section needs its program
        plan_mod.plan_from_oci(config, bundle=Path("/b"), log_path=None, exit_path=None)
    plan = plan_mod.plan_from_oci(config, bundle=Path("/b"), log_path=None, exit_path=None,
                                  seccomp_program="/run/servin/seccomp/x.bpf")
    assert ("seccomp", [b"/run/servin/seccomp/x.bpf", b"4"]) in plan_mod.decode(plan.encode())
    config["linux"] = {}
    plain = plan_mod.plan_from_oci(config, bundle=Path("/b"), log_path=None, exit_path=None,
                                   seccomp_program="/ignored.bpf")
    assert "seccomp" not in [t for t, _ in plan_mod.decode(plain.encode())]


# ---- the daemon's --seccomp-profile and /info -----------------------------------------------

def test_daemon_flag_and_file_key(tmp_path):
    import argparse

    from servin.daemon.config import add_daemon_flags, resolve

    p = argparse.ArgumentParser()
    add_daemon_flags(p)
    cfg = tmp_path / "daemon.json"
    cfg.write_text("{}")
    assert resolve(p.parse_args(["--seccomp-profile", "unconfined", "--config-file", str(cfg)])).seccomp_profile \
        == "unconfined"
    cfg.write_text(json.dumps({"seccomp-profile": "/etc/p.json"}))
    assert resolve(p.parse_args(["--config-file", str(cfg)])).seccomp_profile == "/etc/p.json"


def test_daemon_profile_loaded_at_start(tmp_path):
    from servin.daemon.wiring import seccomp_profile

    assert seccomp_profile("") == seccomp_profile("builtin") == "builtin"
    assert seccomp_profile("unconfined") == "unconfined"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(CUSTOM))
    assert seccomp_profile(str(path)) == CUSTOM
    with pytest.raises(errors.InvalidArgument) as e:
        seccomp_profile(str(tmp_path / "missing.json"))
    assert e.value.message == (f"opening seccomp profile ({tmp_path}/missing.json) failed: "
                               f"open {tmp_path}/missing.json: no such file or directory")
    path.write_text('{"defaultAction": "SCMP_ACT_BOGUS"}')
    with pytest.raises(errors.InvalidArgument):
        seccomp_profile(str(path))


@pytest.mark.parametrize("profile, options, warnings", [
    ("default", ["name=seccomp,profile=default"], []),
    ("unconfined", ["name=seccomp,profile=unconfined"], ["WARNING: daemon is not using the default seccomp profile"]),
    ("/etc/p.json", ["name=seccomp,profile=/etc/p.json"], ["WARNING: daemon is not using the default seccomp profile"]),
])
def test_info_security_options(profile, options, warnings):
    from servin.api.wire.system import info
    from servin.core.host import HostFacts

    facts = HostFacts(id="x", hostname="h", kernel_version="6.18", operating_system="Debian", os_version="12",
                      architecture="x86_64", go_arch="amd64", ncpu=2, mem_total=1, data_root="/d", cgroup_version=1,
                      cgroup_driver="cgroupfs", debug=False, swap_limit=True, start_time_ns=0, seccomp_profile=profile)
    body = info(facts, {"running": 0, "paused": 0, "stopped": 0}, 0)
    assert [o for o in body["SecurityOptions"] if o.startswith("name=seccomp")] == options
    assert [w for w in body["Warnings"] if "seccomp" in w] == warnings


def test_enosys_stub_unless_the_default_allows():
    import struct

    enosys = struct.pack("HBBI", 0x06, 0, 0, 0x00050000 | 38)  # ret SCMP_ACT_ERRNO(ENOSYS)
    rules = [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
    stubbed = compile_bpf({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules})
    assert enosys in stubbed and stubbed[:8] == struct.pack("HBBI", 0x20, 0, 0, 4)  # ld seccomp_data.arch
    plain = compile_bpf({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": rules})
    assert len(plain) < len(stubbed)
    assert enosys not in compile_bpf({"defaultAction": "SCMP_ACT_LOG", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"}]})
