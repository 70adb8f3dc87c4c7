/* syscalls.c: the thin syscall wrappers of servin._native (see servin_native.h), each 0 or -errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "inroot.h"
#include "servin_native.h"

#define RET(x) return (x) < 0 ? -errno : 0

int servin_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
                 const char *data)
{
    RET(mount(source, target, fstype, flags, data));
}

int servin_umount2(const char *target, int flags) { RET(umount2(target, flags)); }

int servin_pivot_root(const char *new_root, const char *put_old) { RET(syscall(SYS_pivot_root, new_root, put_old)); }

int servin_unshare(int flags) { RET(unshare(flags)); }

int servin_setns(int fd, int nstype) { RET(setns(fd, nstype)); }

int servin_sethostname(const char *name, size_t len) { RET(sethostname(name, len)); }

int servin_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor)
{
    RET(mknod(path, mode, makedev(major, minor)));
}

/* the supervisor's own resolution inside a root, for the cp/export helper */
int servin_inroot_resolve(int rootfd, const char *path, int make)
{
    int fd = inroot_resolve(rootfd, path, (enum inroot_make)make);
    return fd < 0 ? -errno : fd;
}
