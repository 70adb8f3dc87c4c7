"""cffi (API mode, out-of-line) build of servin._native: thin syscall wrappers.

Every wrapper returns 0 or -errno; servin/kernel/mounts.py turns that into OSError.
"""

from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    int servin_mount(const char *source, const char *target, const char *fstype,
                     unsigned long flags, const char *data);
    int servin_umount2(const char *target, int flags);
    int servin_pivot_root(const char *new_root, const char *put_old);
    int servin_unshare(int flags);
    int servin_setns(int fd, int nstype);
    int servin_sethostname(const char *name, size_t len);
    int servin_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor);
    """
)

ffibuilder.set_source(
    "servin._native",
    r"""
    #define _GNU_SOURCE
    #include <errno.h>
    #include <sched.h>
    #include <unistd.h>
    #include <sys/mount.h>
    #include <sys/stat.h>
    #include <sys/syscall.h>
    #include <sys/sysmacros.h>

    #define RET(x) return (x) < 0 ? -errno : 0

    static int servin_mount(const char *source, const char *target, const char *fstype,
                            unsigned long flags, const char *data)
    { RET(mount(source, target, fstype, flags, data)); }
    static int servin_umount2(const char *target, int flags) { RET(umount2(target, flags)); }
    static int servin_pivot_root(const char *new_root, const char *put_old)
    { RET(syscall(SYS_pivot_root, new_root, put_old)); }
    static int servin_unshare(int flags) { RET(unshare(flags)); }
    static int servin_setns(int fd, int nstype) { RET(setns(fd, nstype)); }
    static int servin_sethostname(const char *name, size_t len) { RET(sethostname(name, len)); }
    static int servin_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor)
    { RET(mknod(path, mode, makedev(major, minor))); }
    """,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
