"""cffi (API mode, out-of-line) build of servin._native: thin syscall wrappers, the json-file
log renderer behind `docker logs`, the v2 device filter and the seccomp compiler (libseccomp).

The C is in native/*.c (native/servin_native.h declares it); the cdef below is what Python sees
of it. Every syscall wrapper returns 0 or -errno; servin/kernel/mounts.py turns that into OSError.
"""

import os
from pathlib import Path

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
    int servin_inroot_resolve(int rootfd, const char *path, int make);
    size_t servin_render_log(const char *in, size_t n, char *out, size_t cap, size_t *outlen, int flags,
                             int *stopped);
    int servin_device_filter(int cgroup_fd, const int *rules, size_t nrules, char *log, size_t logsz);

    enum scmp_compare { SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT,
                        SCMP_CMP_MASKED_EQ, ... };
    struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; uint64_t datum_a; uint64_t datum_b; };
    struct servin_seccomp_rule { const char *name; uint32_t action; unsigned int ncmp; struct scmp_arg_cmp cmp[6]; };
    #define SCMP_ACT_KILL_PROCESS ...
    #define SCMP_ACT_KILL_THREAD ...
    #define SCMP_ACT_TRAP ...
    #define SCMP_ACT_LOG ...
    #define SCMP_ACT_ALLOW ...
    uint32_t servin_scmp_act_errno(uint32_t e);
    uint32_t servin_scmp_act_trace(uint32_t e);
    int servin_seccomp_export(uint32_t def_action, const char *const *arches, size_t narches,
                              const struct servin_seccomp_rule *rules, size_t nrules, int enosys, int fd,
                              char *err, size_t errn);
    """
)

NATIVE = Path(__file__).resolve().parent
# the C of servin._native, each file compiled (and warned about) on its own; servin_native.h says
# what each exports
SOURCES = ("syscalls.c", "inroot.c", "logrender.c", "devfilter.c", "seccomp_export.c")
HEADERS = ("servin_native.h", "inroot.h")
CFLAGS = ["-Wall", "-Wextra", "-Werror"]

ffibuilder.set_source(
    "servin._native",
    '#include "servin_native.h"',
    sources=[os.path.relpath(NATIVE / name) for name in SOURCES],  # setuptools wants them relative
    include_dirs=[str(NATIVE)],
    libraries=["seccomp"],
    extra_compile_args=CFLAGS,
    depends=[os.path.relpath(NATIVE / name) for name in HEADERS],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
