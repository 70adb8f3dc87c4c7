/* inroot.c: paths opened and made inside a container's root; see inroot.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#include "inroot.h"

#define INROOT_MAX_LINKS 40 /* as the kernel's MAXSYMLINKS */
#define INROOT_MAX_DEPTH 256

int inroot_use_openat2 = 1;

static void inroot_pop_all(int *stack, int *depth)
{
    while (*depth > 0)
        close(stack[(*depth)--]);
}

/* The next component of *rest (advanced past it) into comp: 1, or 0 when none is left, or -1
   (ENAMETOOLONG) for a name longer than comp holds. */
static int inroot_next(const char **rest, char *comp, size_t n)
{
    const char *p = *rest;
    while (*p == '/')
        p++;
    if (!*p)
        return 0;
    size_t len = strcspn(p, "/");
    if (len >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(comp, p, len);
    comp[len] = 0;
    *rest = p + strcspn(p, "/");
    return 1;
}

static int inroot_is_last(const char *rest)
{
    return rest[strspn(rest, "/")] == 0;
}

/* Make the missing component `name` in `dirfd` (a directory, or the final file). */
static int inroot_make_component(int dirfd, const char *name, int file)
{
    if (file) {
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
        return fd < 0 && errno != EEXIST ? -1 : 0;
    }
    return mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int inroot_walk(int rootfd, const char *path, enum inroot_make make)
{
    int stack[INROOT_MAX_DEPTH];
    int depth = 0, links = 0, made = 0, err = 0;
    char *buf = malloc(2 * PATH_MAX), *next = malloc(2 * PATH_MAX);
    char comp[NAME_MAX + 2];
    if (!buf || !next) {
        free(buf);
        free(next);
        errno = ENOMEM;
        return -1;
    }
    if (snprintf(buf, 2 * PATH_MAX, "%s", path) >= 2 * PATH_MAX) {
        free(buf);
        free(next);
        errno = ENAMETOOLONG;
        return -1;
    }
    const char *rest = buf;
    stack[0] = rootfd;
    int more;
    while ((more = inroot_next(&rest, comp, sizeof comp)) != 0) {
        if (more < 0) {
            err = errno;
            break;
        }
        if (!strcmp(comp, "."))
            continue;
        if (!strcmp(comp, "..")) {
            if (depth > 0)
                close(stack[depth--]);
            continue;
        }
        int last = inroot_is_last(rest);
        int fd = openat(stack[depth], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            /* missing: make it, then look again (a racing symlink is then read as one) */
            if (errno != ENOENT || make == INROOT_OPEN || ++made > INROOT_MAX_DEPTH ||
                inroot_make_component(stack[depth], comp, last && make == INROOT_FILE) < 0) {
                err = errno;
                break;
            }
            rest -= strlen(comp);
            continue;
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
            err = errno;
            close(fd);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t tl = readlinkat(fd, "", target, sizeof target - 1);
            close(fd);
            if (tl < 0 || ++links > INROOT_MAX_LINKS) {
                err = tl < 0 ? errno : ELOOP;
                break;
            }
            target[tl] = 0;
            if (target[0] == '/')
                inroot_pop_all(stack, &depth);
            if (snprintf(next, 2 * PATH_MAX, "%s/%s", target, rest) >= 2 * PATH_MAX) {
                err = ENAMETOOLONG;
                break;
            }
            memcpy(buf, next, 2 * PATH_MAX);
            rest = buf;
            continue;
        }
        if (!last && !S_ISDIR(st.st_mode)) {
            close(fd);
            err = ENOTDIR;
            break;
        }
        if (depth + 1 >= INROOT_MAX_DEPTH) {
            close(fd);
            err = ENAMETOOLONG;
            break;
        }
        stack[++depth] = fd;
    }
    free(buf);
    free(next);
    int result = -1;
    if (!err) {
        result = depth > 0 ? stack[depth--] : fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
        if (result < 0)
            err = errno;
    }
    inroot_pop_all(stack, &depth);
    errno = err;
    return err ? -1 : result;
}

int inroot_resolve(int rootfd, const char *path, enum inroot_make make)
{
    if (inroot_use_openat2) {
        struct open_how how = {
            .flags = O_PATH | O_CLOEXEC,
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
        if (fd >= 0)
            return fd;
        if (errno == ENOSYS || errno == EPERM)
            inroot_use_openat2 = 0; /* an old kernel, or a filter that refuses it */
    }
    return inroot_walk(rootfd, path, make);
}

const char *inroot_fdpath(int fd, char *buf, size_t n)
{
    int len = snprintf(buf, n, "/proc/self/fd/%d", fd);
    if (len < 0 || (size_t)len >= n) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return buf;
}
