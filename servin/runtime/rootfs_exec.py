"""The helper process that reads and writes a container's filesystem: ``docker cp`` and ``export``.

    python3 -m servin.runtime.rootfs_exec '<json request>'

The daemon never enters a namespace itself (ARCHITECTURE.md, decision 4); it starts this short-lived,
single-threaded process instead, which

* for a running container joins the mount namespace of its init (``/proc/<pid>/ns/mnt``), so the
  container's own root, volumes and bind mounts are what it sees; with ``bare`` it then takes a
  private copy of that namespace and detaches every mount but the root (``docker export`` wants
  the container's filesystem, not the /proc or /dev mounted on it);
* for a created or stopped container unshares a private mount namespace, makes ``/`` rprivate and
  mounts the container's overlay (image layers, upper and work dirs) on the bundle's ``rootfs/``:
  the mount exists only in this process's namespace and dies with it, nothing is left on the host;

and then ``chroot``s into that root, so every path, ``..`` and symlink in a request or in the
container is resolved by the kernel inside the container's root and can never reach the host.
Everything the helper needs is imported before it enters (a container's files must never be
imported or loaded as code), ``sys.path`` is emptied after, and no user or group name is looked
up (NSS could load the container's libraries), as Docker learned from CVE-2019-14271.

Protocol on stdout: one JSON line, ``{"ok": true, ...}`` or ``{"error": kind, "message": ...}``
with kind ``notfound``, ``invalid`` or ``system``; for ``get`` and ``export`` the tar stream
follows. For ``put`` the daemon sends the tar on stdin after the first line, and a second JSON
line reports how the extraction went. The semantics are those of moby's daemon/archive.go and
pkg/archive (stat, archive, extract-to-dir with ``noOverwriteDirNonDir``), in container paths.
"""

from __future__ import annotations

import codecs
import ctypes
import errno
import json
import os
import posixpath
import stat
import sys
import tarfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from servin import archive, safefs
from servin.kernel import mounts
from servin.runtime.linux import CAP_BITS

CLONE_NEWNS = 0x00020000
_OVERLAY_DATA_MAX = 4000  # mount(2) data must fit in a page


class Failure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# ---------------------------------------------------------------------------- Docker's path rules


def go_base(path: str) -> str:
    """filepath.Base: the last element, trailing slashes ignored; "/" for the root."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return stripped.rsplit("/", 1)[-1]


def go_split(path: str) -> tuple[str, str]:
    """filepath.Split: the dir with its trailing slash, and the last element."""
    i = path.rfind("/")
    return path[: i + 1], path[i + 1 :]


def go_clean(path: str) -> str:
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def absolute(path: str) -> str:
    """The request path as an absolute container path, keeping a trailing "/" or "/." as
    Docker's PreserveTrailingDotOrSeparator does (they change what gets copied)."""
    cleaned = go_clean("/" + path)
    if go_base(cleaned) != "." and go_base(path) == ".":
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and path.endswith("/"):
        cleaned += "/"
    return cleaned


def resolve_in_root(path: str) -> str:
    """Every symlink of the cleaned path followed; missing components are kept (chrooted, so
    absolute links and ".." stay inside the container's root)."""
    return os.path.realpath(go_clean(path))


def resolve_parent(abs_path: str) -> str:
    """Docker's ResolvePath: the directory part resolved, the last element kept as it is."""
    dir_part, base = go_split(abs_path)
    resolved_dir = resolve_in_root(dir_part or "/")
    return (resolved_dir.rstrip("/") or "") + "/" + base if resolved_dir != "/" else "/" + base


def _stat_error(exc: OSError, shown: str) -> Failure:
    if exc.errno == errno.ENOENT:
        return Failure("notfound", exc.strerror or "no such file or directory")
    return Failure("system", f"lstat {shown}: {(exc.strerror or str(exc)).lower()}")


def stat_path(path: str) -> tuple[dict[str, Any], str, os.stat_result]:
    """(the stat record, the resolved path, its lstat) for a request path."""
    abs_path = absolute(path)
    resolved = resolve_parent(abs_path)
    try:
        st = os.lstat(resolved)
    except OSError as exc:
        raise _stat_error(exc, abs_path) from None
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        link_target = resolve_in_root(abs_path)
    record = {"name": go_base(abs_path), "size": st.st_size, "mode": st.st_mode,
              "mtime_ns": st.st_mtime_ns, "link_target": link_target}
    return record, resolved, st


# ---------------------------------------------------------------------------- writing tars


def _walk(writer: archive.TreeWriter, dir_fd: int, prefix: str) -> None:
    """Every entry below ``dir_fd`` in filepath.Walk order, named ``prefix + name``. Iterative, so
    a container's tree of any depth cannot exhaust the stack (only the fds: one per level held)."""
    stack: list[tuple[int, str, Iterator[tuple[str, os.stat_result]]]] = [
        (dir_fd, prefix, iter(archive.scan_sorted(dir_fd)))]
    try:
        while stack:
            fd, pre, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                if fd != dir_fd:
                    os.close(fd)
                continue
            name, st = entry
            writer.add(pre + name, name, st, dir_fd=fd)
            if stat.S_ISDIR(st.st_mode):
                try:
                    sub = archive.open_dir(name, fd)
                except OSError as exc:
                    if exc.errno == errno.EMFILE:
                        raise Failure("system", f"directory tree too deep at {pre + name}") from None
                    continue  # gone or replaced while we walked
                stack.append((sub, pre + name + "/", iter(archive.scan_sorted(sub))))
    finally:
        for fd, _, _ in stack:
            if fd != dir_fd:
                os.close(fd)


def write_path(out: BinaryIO, resolved: str, abs_path: str, st: os.stat_result) -> None:
    """Docker's containerArchivePath: a directory with its contents, or one entry, renamed to
    the last element of the request path ("/" → names from the root, "." → "./...")."""
    resolved = go_clean(resolved)
    rebase = go_base(abs_path)
    writer = archive.TreeWriter(out)
    if stat.S_ISDIR(st.st_mode):
        top = "" if rebase == "/" else rebase
        fd = os.open(resolved, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            writer.add(top or "/", ".", os.fstat(fd), dir_fd=fd)
            _walk(writer, fd, top + "/")
        finally:
            os.close(fd)
    else:
        parent, base = go_split(resolved)
        pfd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            writer.add(rebase, base, os.stat(base, dir_fd=pfd, follow_symlinks=False), dir_fd=pfd)
        finally:
            os.close(pfd)
    writer.close()


def write_root(out: BinaryIO) -> None:
    """docker export: everything under the root, names relative ("bin/sh")."""
    writer = archive.TreeWriter(out)
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _walk(writer, fd, "")
    finally:
        os.close(fd)
    writer.close()


# ---------------------------------------------------------------------------- extracting


def _breakout(message: str) -> Failure:
    return Failure("system", message)


def _set_xattrs(target: str | int, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        try:
            os.setxattr(target, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=isinstance(target, int))
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


def _owner(member: tarfile.TarInfo, chown: tuple[int, int] | None) -> tuple[int, int]:
    return chown if chown is not None else (member.uid, member.gid)


def _finish_fd(fd: int, member: tarfile.TarInfo, chown: tuple[int, int] | None, *, times: bool) -> None:
    """Owner, xattrs, mode and times set on the entry we created and hold open: a name swapped by
    the running container in the meantime cannot redirect them."""
    os.chown(fd, *_owner(member, chown))
    _set_xattrs(fd, member)
    os.chmod(fd, member.mode & 0o7777)
    if times:
        os.utime(fd, (member.mtime, member.mtime))


def _create(path: str, dest: str, member: tarfile.TarInfo, src: tarfile.TarFile,
            chown: tuple[int, int] | None) -> None:
    mode = member.mode & 0o7777
    if member.isdir():
        if not os.path.isdir(path) or os.path.islink(path):
            os.mkdir(path, 0o700)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _finish_fd(fd, member, chown, times=False)
        finally:
            os.close(fd)
        return
    if member.isreg():
        # O_EXCL: a new regular file, never a device node or link put there since we removed the name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            data = src.extractfile(member)
            assert data is not None
            while chunk := data.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            _finish_fd(fd, member, chown, times=True)
        finally:
            os.close(fd)
        return
    if member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, kind | mode, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, mode)
    elif member.islnk():
        target = posixpath.join(dest, member.linkname.lstrip("/"))
        target = go_clean(target)
        if not (target + "/").startswith(dest.rstrip("/") + "/"):
            raise _breakout(f'invalid hardlink "{member.linkname}" -> "{target}"')
        os.link(target, path, follow_symlinks=False)
    elif member.issym():
        target = go_clean(posixpath.join(posixpath.dirname(path), member.linkname))
        if not (target + "/").startswith(dest.rstrip("/") + "/") and not member.linkname.startswith("/"):
            raise _breakout(f'invalid symlink "{path}" -> "{member.linkname}"')
        os.symlink(member.linkname, path)
    else:
        raise Failure("system", f"unhandled tar header type {member.type!r}")
    os.lchown(path, *_owner(member, chown))
    _set_xattrs(path, member)
    if not member.issym() and not member.islnk():
        os.chmod(path, mode)  # a node or fifo we just made; inside the container's root in any case
    os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def extract(stream: BinaryIO, dest: str, *, no_overwrite_dir_non_dir: bool,
            chown: tuple[int, int] | None) -> None:
    """Docker's Unpack into the existing directory ``dest`` (a container path, chrooted)."""
    dest = go_clean(dest)
    dirs: list[tuple[str, float]] = []
    try:
        tf = tarfile.open(fileobj=stream, mode="r|*")
    except (tarfile.TarError, EOFError) as exc:
        raise Failure("invalid", f"invalid tar stream: {exc}") from None
    try:
        for member in tf:
            name = go_clean(member.name)
            if name != "/" and not name.endswith("/"):
                parent = go_clean(posixpath.join(dest, posixpath.dirname(name).lstrip("/")))
                if not os.path.lexists(parent):
                    os.makedirs(parent, 0o777, exist_ok=True)
            path = go_clean(posixpath.join(dest, name.lstrip("/")))
            rel = posixpath.relpath(path, dest)
            if rel == ".." or rel.startswith("../"):
                raise _breakout(f'"{member.name}" is outside of "{dest}"')
            try:
                existing = os.lstat(path)
            except FileNotFoundError:
                existing = None
            if existing is not None:
                is_dir = stat.S_ISDIR(existing.st_mode)
                if no_overwrite_dir_non_dir and is_dir and not member.isdir():
                    raise Failure("system", f'cannot overwrite directory "{path}" with non-directory "{dest}"')
                if no_overwrite_dir_non_dir and not is_dir and member.isdir():
                    raise Failure("system", f'cannot overwrite non-directory "{path}" with directory "{dest}"')
                if is_dir and name == ".":
                    continue
                if not (is_dir and member.isdir()):
                    safefs.remove_tree(path)  # any depth, never through a link
            _create(path, dest, member, tf, chown)
            if member.isdir():
                dirs.append((path, member.mtime))
    except tarfile.TarError as exc:
        raise Failure("invalid", f"invalid tar stream: {exc}") from None
    finally:
        tf.close()
    for path, mtime in dirs:
        os.utime(path, (mtime, mtime), follow_symlinks=False)


# ---------------------------------------------------------------------------- entering the root


def _detach_all_but_root(mount_points: list[str]) -> None:
    for mp in sorted(set(mount_points) - {"/"}, key=lambda p: p.count("/"), reverse=True):
        try:
            mounts.umount(mp, mounts.MNT_DETACH)
        except OSError:
            pass  # already gone with a parent


def _container_mnt_ns(pid: int, upperdir: str) -> int:
    """An fd of the mount namespace of ``pid``, checked to be the container's: its root must be
    the overlay with our upper dir (a pid reused by a host process must never be entered)."""
    try:
        fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise Failure("gone", f"process {pid} has exited") from None
    try:
        with open(f"/proc/{pid}/mountinfo", "rb") as f:
            roots = [line for line in f if line.split()[4] == b"/"]
        root = roots[-1] if roots else b""  # the last mount on "/" is the one seen
        fields = root.split(b" - ", 1)[-1].split()
        options = fields[-1].decode(errors="replace").split(",") if len(fields) >= 3 else []
        if upperdir and f"upperdir={upperdir}" not in options:
            raise Failure("gone", f"process {pid} is not the container's")
        if os.stat(f"/proc/{pid}/ns/mnt").st_ino != os.fstat(fd).st_ino:
            raise Failure("gone", f"process {pid} has exited")
    except OSError:
        os.close(fd)
        raise Failure("gone", f"process {pid} has exited") from None
    except Failure:
        os.close(fd)
        raise
    return fd


def _mount_points(pid: int) -> list[str]:
    with open(f"/proc/{pid}/mountinfo", "rb") as f:
        return [line.split()[4].decode("unicode_escape") for line in f]


def _bind_in_root(root_fd: int, source: str, dest: str, read_only: bool, subpath: str = "") -> None:
    """Bind `source` (its `subpath`, resolved inside it) on `dest` resolved inside the container's
    root: a link in the image, the volume or one the container planted cannot send the mount
    point, or the mount, to the host."""
    src_fd = -1
    if subpath:
        base = os.open(source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            src_fd = mounts.open_in_root(base, subpath)
        finally:
            os.close(base)
        source = mounts.fd_path(src_fd)
    try:
        make = mounts.IN_ROOT_DIR if os.path.isdir(source) else mounts.IN_ROOT_FILE
        fd = mounts.open_in_root(root_fd, dest, make)
        try:
            mounts.mount(source, mounts.fd_path(fd), None, mounts.MS_BIND | mounts.MS_REC)
        finally:
            os.close(fd)
    finally:
        if src_fd >= 0:
            os.close(src_fd)
    if read_only:
        fd = mounts.open_in_root(root_fd, dest)  # now the bind's own root
        try:
            mounts.mount(None, mounts.fd_path(fd), None, mounts.MS_REMOUNT | mounts.MS_BIND | mounts.MS_RDONLY)
        finally:
            os.close(fd)


def enter(req: dict[str, Any]) -> None:
    pid = int(req.get("pid") or 0)
    if pid:
        fd = _container_mnt_ns(pid, req.get("upperdir") or "")
        points = _mount_points(pid) if req.get("bare") else []
        try:
            mounts.setns(fd, CLONE_NEWNS)
        finally:
            os.close(fd)
        if req.get("bare"):
            mounts.unshare(CLONE_NEWNS)
            mounts.mount(None, "/", None, mounts.MS_REC | mounts.MS_PRIVATE)
            _detach_all_but_root(points)
        os.chdir("/")
        os.chroot("/")
    else:
        mounts.unshare(CLONE_NEWNS)
        mounts.mount(None, "/", None, mounts.MS_REC | mounts.MS_PRIVATE)
        lowers = list(req["lowerdirs"])
        upper, work, target = req["upperdir"], req["workdir"], req["mountpoint"]
        data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
        if len(data) > _OVERLAY_DATA_MAX:  # relative paths from a common parent, as dockerd does
            base = os.path.commonpath(lowers + [upper, work])
            os.chdir(base)
            rel = [os.path.relpath(p, base) for p in lowers]
            data = (f"lowerdir={':'.join(rel)},upperdir={os.path.relpath(upper, base)},"
                    f"workdir={os.path.relpath(work, base)}")
        mounts.mount("overlay", target, "overlay", 0, data)
        root_fd = os.open(target, os.O_PATH | os.O_DIRECTORY)
        for source, dest, read_only, *subpath in req.get("binds", ()):  # as the container would see them
            _bind_in_root(root_fd, source, dest, read_only, *subpath)
        os.close(root_fd)
        os.chdir(target)
        os.chroot(".")
        os.chdir("/")


# ---------------------------------------------------------------------------- main


def _say(out: BinaryIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj).encode() + b"\n")
    out.flush()


# What the helper may still do once inside: read and write any file, set owners, modes (setuid
# too), times, device nodes and file capabilities. No mount, chroot, ptrace, module, raw I/O...
_KEEP_CAPS = tuple(CAP_BITS[c] for c in ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
                                         "CAP_FSETID", "CAP_MKNOD", "CAP_SETFCAP"))
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _CLEAR_ALL = 24, 38, 47, 4


def _seal() -> None:
    """Before entering the container: everything the helper runs is already loaded, so from now on
    no import, codec lookup, warning or traceback may read code from a path, which inside the root
    would be the container's (CVE-2019-14271's class; a traceback's source lookup honours a coding
    cookie and imports the codec)."""
    import bz2  # noqa: F401 - tarfile's "r|*" imports its decompressors on demand
    import gzip  # noqa: F401
    import importlib.machinery
    import lzma  # noqa: F401
    import warnings

    mounts._lib()  # the cffi extension, loaded from the host
    for codec in ("unicode_escape", "ascii", "latin-1", "utf-8"):  # a codec is imported at first use
        codecs.lookup(codec)
    warnings.simplefilter("ignore")
    sys.excepthook = lambda *_: None
    sys.unraisablehook = lambda *_: None
    sys.dont_write_bytecode = True
    sys.meta_path[:] = [importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter]
    sys.path_hooks.clear()
    sys.path_importer_cache.clear()
    sys.path[:] = []


def _drop_privileges(last_cap: int) -> None:
    """Inside the root: only the capabilities of _KEEP_CAPS, in every set, and no_new_privs."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(last_cap + 1):
        if cap not in _KEEP_CAPS and libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"drop capability {cap}")
    keep = sum(1 << c for c in _KEEP_CAPS)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)(keep, keep, 0, 0, 0, 0)  # effective, permitted, inheritable (x2)
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    libc.prctl(_PR_CAP_AMBIENT, _CLEAR_ALL, 0, 0, 0)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "no_new_privs")


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def run(req: dict[str, Any], stdin: BinaryIO, out: BinaryIO) -> int:
    op = req["op"]
    last_cap = _last_cap()
    _seal()
    try:
        enter(req)
        _drop_privileges(last_cap)
    except Failure as exc:
        _say(out, {"error": exc.kind, "message": exc.message})
        return 1
    except OSError as exc:
        _say(out, {"error": "system", "message": f"cannot enter the container's filesystem: {exc}"})
        return 1
    try:
        if op == "stat":
            record, _, _ = stat_path(req["path"])
            _say(out, {"ok": True, "stat": record})
        elif op == "get":
            record, resolved, st = stat_path(req["path"])
            _say(out, {"ok": True, "stat": record})
            write_path(out, resolved, absolute(req["path"]), st)
        elif op == "export":
            _say(out, {"ok": True})
            write_root(out)
        elif op == "put":
            dest = resolve_in_root(absolute(req["path"]))
            try:
                st = os.lstat(dest)
            except OSError as exc:
                raise _stat_error(exc, dest) from None
            if not stat.S_ISDIR(st.st_mode):
                raise Failure("invalid", "extraction point is not a directory")
            _say(out, {"ok": True})
            chown = tuple(req["chown"]) if req.get("chown") else None
            try:
                extract(stdin, dest, no_overwrite_dir_non_dir=bool(req.get("no_overwrite_dir_non_dir")),
                        chown=chown)
            except Failure as exc:
                _say(out, {"error": exc.kind, "message": exc.message})
                return 1
            except OSError as exc:
                _say(out, {"error": "system", "message": str(exc)})
                return 1
            _say(out, {"ok": True})
        else:
            _say(out, {"error": "invalid", "message": f"unknown operation {op!r}"})
            return 2
    except Failure as exc:
        _say(out, {"error": exc.kind, "message": exc.message})
        return 1
    except BrokenPipeError:
        return 1
    return 0


def main(argv: list[str]) -> int:
    req = json.loads(argv[1])
    out = sys.stdout.buffer
    try:
        code = run(req, sys.stdin.buffer, out)
    except BaseException as exc:  # noqa: BLE001 - never a traceback: printing one reads the container's files
        try:
            _say(out, {"error": "system", "message": f"{type(exc).__name__} in the container's filesystem"})
        except BaseException:  # noqa: BLE001
            pass
        code = 1
    try:
        out.flush()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(code)  # no interpreter shutdown (atexit, finalizers) inside the container


if __name__ == "__main__":
    main(sys.argv)
