/*
 * inroot.h: open and create paths inside a container's root without ever leaving it.
 *
 * Every path the supervisor creates or mounts before pivot_root goes through inroot_resolve, with
 * the semantics of runc's securejoin: symlinks are followed *inside* the root (an absolute target
 * starts again at the root, ".." never climbs above it, dangling links are created where they point
 * inside the root), so no symlink in an image, and none a container planted before a restart, can
 * send a mkdir, a create or a mount to a host path.
 *
 * An existing path is opened in one step with openat2(RESOLVE_IN_ROOT) where the kernel has it. The
 * walk in inroot.c does the rest (and everything on kernels without openat2): it holds a directory fd per
 * component, opens each next component with O_NOFOLLOW relative to it, reads symlinks itself, and
 * makes missing components with mkdirat / openat(O_CREAT|O_EXCL|O_NOFOLLOW) on the fd it holds, so
 * a concurrent rename or symlink swap cannot redirect it either.
 *
 * Results are O_PATH fds; mount(2) takes them as "/proc/self/fd/N" (inroot_fdpath), as runc does.
 */
#ifndef SERVIN_INROOT_H
#define SERVIN_INROOT_H

#include <stddef.h>

enum inroot_make {
    INROOT_OPEN, /* the path must exist */
    INROOT_DIR,  /* make it, and every missing parent, a directory (0755) */
    INROOT_FILE, /* make it an empty file (0644), its missing parents directories */
};

/* 0 after SERVIN_SHIM_NO_OPENAT2=1: tests of the walk */
extern int inroot_use_openat2;

/* An O_PATH fd of `path` inside the root directory `rootfd` (made first as `make` says), or -1
   with errno. The root itself is never left, whatever the path or the links on the way say. */
int inroot_resolve(int rootfd, const char *path, enum inroot_make make);

/* The name through which a path-taking call (mount, statvfs) reaches what an O_PATH fd refers to,
   written to buf; NULL (errno ENAMETOOLONG) when buf is too small for it. */
const char *inroot_fdpath(int fd, char *buf, size_t n);

#endif
