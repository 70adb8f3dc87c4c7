"""The supervisor installs the container's seccomp program for real: Docker's default profile in
the init and in execs (Seccomp: 2; user and mount namespaces refused with EPERM), with and
without no_new_privs (before and after the user switch), a custom profile, none when unconfined."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from servin.core import seccomp
from tests.kernel.runtime_helpers import (
    DEFAULT_CAPS,
    Env,
    cgroup_parent,
    env,
    lowerdir,
    oci_config,
    drive,
    read_frames,
    requires_root,
)

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent", "env", "lowerdir"]  # fixtures

PATH = "PATH=/bin"
PROBE = ("grep Seccomp: /proc/self/status; busybox unshare -U true; echo user=$?; "
         "busybox unshare -m true; echo mount=$?; true; echo true=$?")
MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


def section(profile=None) -> dict:  # noqa: ANN001
    return seccomp.to_oci(profile or seccomp.default_profile(), caps=DEFAULT_CAPS, host=seccomp.Host.this())


async def create(env: Env, args: list[str], *, section: dict | None, nnp: bool = False, uid: int = 0):  # noqa: ANN201
    cid = uuid.uuid4().hex
    bundle = env.tmp / "bundles" / cid
    bundle.mkdir(parents=True)
    cgpath = f"{env.parent}/{cid[:12]}"
    config = oci_config(args, lowerdir=env.lowerdir, work=bundle, cgroups_path=cgpath, uid=uid, gid=uid)
    config["process"]["noNewPrivileges"] = nnp
    if section:
        config["linux"]["seccomp"] = section
    (bundle / "config.json").write_text(json.dumps(config))
    env.created.append((cid, cgpath))
    return await env.runtime.spawn(cid, bundle=bundle, log_path=None, exit_path=bundle / "exit.json")


async def run(env: Env, args: list[str], **kw) -> tuple[int, str, str]:  # noqa: ANN003
    code, out, err = await drive(await create(env, args, **kw))
    return code, out.decode(), err.decode()


@pytest.mark.parametrize("nnp, uid", [(False, 0), (True, 0), (False, 65534), (True, 65534)])
async def test_default_profile_in_the_init(env: Env, nnp: bool, uid: int) -> None:
    code, out, err = await run(env, ["sh", "-c", PROBE], section=section(), nnp=nnp, uid=uid)
    assert code == 0, err
    assert out.splitlines() == ["Seccomp:\t2", "user=1", "mount=1", "true=0"]
    assert err.count("Operation not permitted") == 2


async def test_unconfined_has_no_filter(env: Env) -> None:
    code, out, _ = await run(env, ["sh", "-c", "grep Seccomp: /proc/self/status; busybox unshare -U true; echo $?"],
                             section=None)
    assert (code, out) == (0, "Seccomp:\t0\n0\n")


async def test_custom_profile(env: Env) -> None:
    code, out, err = await run(env, ["sh", "-c", "busybox mkdir /x; echo mkdir=$?; busybox unshare -U true; echo $?"],
                               section=section(MKDIR))
    assert out == "mkdir=1\n0\n" and "Operation not permitted" in err


async def test_execs_get_the_containers_filter(env: Env) -> None:
    shim = await create(env, ["sleep", "30"], section=section())
    try:
        await shim.start()
        for kw in ({}, {"caps_privileged": True}, {"no_new_privs": True, "uid": 65534, "gid": 65534}):
            ex = await shim.exec(args=["sh", "-c", PROBE], env=[PATH], **kw)
            frames = await asyncio.wait_for(read_frames(ex.reader), 10)
            assert await ex.wait() == 0
            assert frames[1].decode().splitlines() == ["Seccomp:\t2", "user=1", "mount=1", "true=0"], kw
    finally:
        await shim.shutdown()
        await shim.close()


async def test_compiled_once_for_many_containers(env: Env) -> None:
    for _ in range(3):
        code, out, _ = await run(env, ["true"], section=section())
        assert code == 0
    assert env.runtime.seccomp_programs.compiled == 1
    assert len(list(env.runtime.seccomp_programs.root.iterdir())) == 1


def test_program_semantics_in_a_process() -> None:
    """The compiled default program itself, installed in a forked process: what it allows, what
    answers EPERM, and runc's ENOSYS for syscalls newer than the profile."""
    import ctypes
    import errno
    import os
    import platform

    from servin.runtime.seccomp import compile_bpf

    if platform.machine() != "x86_64":
        pytest.skip("syscall numbers below are x86_64's")
    prog = compile_bpf(section())
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no_new_privs, the filter, then the probes; answers on the pipe
        try:
            os.close(r)
            fprog = Fprog(len(prog) // 8, prog)
            assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
            assert libc.syscall(317, 1, 4, ctypes.byref(fprog)) == 0  # seccomp(SET_MODE_FILTER, SPEC_ALLOW)
            out = []
            for nr, args in ((39, ()), (272, (0x10000000,)), (165, (0, 0, 0, 0, 0)), (470, ()), (999, ())):
                rc = libc.syscall(nr, *args)  # getpid, unshare(CLONE_NEWUSER), mount, 470, 999
                out.append("ok" if rc >= 0 else errno.errorcode[ctypes.get_errno()])
            os.write(w, " ".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 200).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert got == "ok EPERM EPERM ENOSYS ENOSYS"
