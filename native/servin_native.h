/*
 * servin_native.h: what the cffi extension servin._native exports (native/_native_build.py holds
 * the matching cdef). Every syscall wrapper returns 0 or -errno; servin/kernel/mounts.py turns that
 * into OSError.
 *
 *   syscalls.c        thin syscall wrappers, and inroot_resolve for the cp/export helper
 *   logrender.c       json-file lines -> the bytes of `docker logs`
 *   devfilter.c       the cgroup v2 device filter (an eBPF program)
 *   seccomp_export.c  a seccomp profile compiled with libseccomp to classic BPF
 */
#ifndef SERVIN_NATIVE_H
#define SERVIN_NATIVE_H

#include <stddef.h>
#include <stdint.h>
#include <seccomp.h>

int servin_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
                 const char *data);
int servin_umount2(const char *target, int flags);
int servin_pivot_root(const char *new_root, const char *put_old);
int servin_unshare(int flags);
int servin_setns(int fd, int nstype);
int servin_sethostname(const char *name, size_t len);
int servin_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor);
/* An O_PATH fd of `path` inside the root `rootfd` (made first as `make`, an enum inroot_make, says). */
int servin_inroot_resolve(int rootfd, const char *path, int make);

/* docker logs: json-file lines {"log":"...","stream":"...","time":"..."} (keys in any order, as the
   shim and Docker write them) -> stdcopy frames (or bare payloads for a Tty container), the payload
   prefixed by "<time> " with timestamps. flags: 1 stdout, 2 stderr, 4 tty, 8 timestamps.
   Consumes whole lines only; returns the bytes consumed. *stopped: 0 all complete lines done (or
   out of room), 1 the next line is not in that simple shape (the caller parses it with json),
   2 the input holds no complete line. A line whose \u escapes do not make bytes back (a lone
   surrogate outside U+DC80..U+DCFF) is skipped, as the Python reader skips it. */
size_t servin_render_log(const char *in, size_t n, char *out, size_t cap, size_t *outlen, int flags,
                         int *stopped);

/* cgroup v2 has no devices controller: device access is an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
   attached to the container's cgroup. rules: nrules x 5 ints (allow, type 0=any 'b' 'c', major or -1,
   minor or -1, access bits mknod 1 | read 2 | write 4), in order, the last matching rule deciding
   (as the v1 devices list does); no match: denied. Returns 0 or -errno (the verifier's log in `log`). */
int servin_device_filter(int cgroup_fd, const int *rules, size_t nrules, char *log, size_t logsz);

/* seccomp: a filter built with libseccomp from the runtime's rules and exported as classic BPF
   (struct sock_filter[]) to `fd`; the supervisor installs those bytes. A rule names its syscall (on
   the native architecture; one libseccomp does not know is skipped, as runc skips it), its action
   (SCMP_ACT_*; one equal to the default action is not added) and up to 6 argument comparisons.
   With `enosys`, runc's ENOSYS stub comes first. Returns 0 or -errno, `err` saying which step
   failed. */
struct servin_seccomp_rule {
    const char *name;
    uint32_t action;
    unsigned int ncmp;
    struct scmp_arg_cmp cmp[6];
};

uint32_t servin_scmp_act_errno(uint32_t e);
uint32_t servin_scmp_act_trace(uint32_t e);
int servin_seccomp_export(uint32_t def_action, const char *const *arches, size_t narches,
                          const struct servin_seccomp_rule *rules, size_t nrules, int enosys, int fd,
                          char *err, size_t errn);

#endif
