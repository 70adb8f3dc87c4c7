/*
 * servin-shim: the per-container supervisor (one small C process per container, like conmon).
 *
 * Usage:  servin-shim <runtime-state-dir> [ready-fd]
 *   ready-fd defaults to 3: the write end of a pipe on which the shim writes "ready\n" once its
 *   socket listens (or "error <message>\n" if it cannot start).
 *
 * The process the daemon spawns forks once and exits at once; the child becomes the shim:
 * setsid, SIGHUP/SIGPIPE/SIGINT/SIGTERM ignored, cwd /, stdio on /dev/null, pid in <state>/shim.pid.
 * It listens on <state>/shim.sock (0600). Each connection first sends one text line:
 *
 *   control\n      commands, one per line, each answered with one line:
 *       start          -> "started <pid>" | "failed <exit_code> <message>"
 *       kill <signum>  -> "ok" | "error <message>"
 *       closestdin     -> "ok"
 *       state          -> "state created|running|exited <pid> <exit_code>"
 *       resize <pid> <rows> <cols>
 *                      -> "ok" | "error <message>"; TIOCSWINSZ on the pty master of the container's
 *                         init (pid 0 or its pid) or of a running exec (its pid); the kernel sends
 *                         SIGWINCH to the terminal's foreground process group.
 *       shutdown       -> "ok"; before start the shim exits; when running the container is
 *                         SIGKILLed and the shim exits after the normal exit handling.
 *     and, unsolicited, "exited <status>" once the container exited and the exit file is written.
 *   attach <stdin 0|1> <stdout 0|1> <stderr 0|1>\n
 *       a stream connection: the container's output as Docker stdcopy frames (stream byte 1|2,
 *       3 zero bytes, uint32 BE length, payload); bytes from the client go to the container's
 *       stdin. Half-close by the client closes the container's stdin when the plan says stdin_once.
 *       With a terminal all output is stream 1 (still framed: the daemon strips the frames for
 *       Tty clients), stdin goes to the pty master, and closing stdin closes only the shim's
 *       writer (the terminal stays, as with conmon).
 *   exec <path-to-exec-plan>\n
 *       run a process in the running container. The exec plan has the plan format with the
 *       process tags only (args env cwd uid gid groups caps no_new_privs terminal open_stdin
 *       consolesize); the container plan's rlimits and seccomp program apply too. The shim
 *       answers one line:
 *         "started <pid>\n"                  (the host pid of the exec'd process), or
 *         "failed <code> <message>\n"        (126/127 with Docker's wording as for start; 1 for
 *                                             setup errors and "failed 1 container not running")
 *       and after "started": the exec's output as stdcopy frames (1 stdout, 2 stderr; with a
 *       terminal everything is 1), raw client bytes go to its stdin, a half-close closes it. Once
 *       the exec exited and its output is drained (or 5 s after the exit, if something else holds
 *       the pipes) the shim sends a last frame of stream type 0xFE whose 4-byte BE payload is
 *       Docker's exit code (code or 128+signal) and closes. Exec output is not logged. Several
 *       execs may run at once; a client that goes away leaves its exec running (output dropped).
 *       How: an intermediate child writes itself into cgroup_procs, setns()es into the init's
 *       ipc/uts/net/pid/mnt/cgroup namespaces (those it does not share with the shim) and forks
 *       the process (now inside the pid namespace), reports its pid and exits; the shim is a
 *       child subreaper, so it reaps the exec'd process itself.
 *
 * TERMINALS: the pty is allocated by the child after pivot_root from the container's own devpts
 * (/dev/ptmx -> pts/ptmx, newinstance), so `tty` says /dev/pts/N inside; the master is passed to
 * the shim over a SOCK_SEQPACKET socketpair (SCM_RIGHTS), the slave becomes the controlling
 * terminal (setsid + TIOCSCTTY) on fds 0-2, and for the init it is bind-mounted on /dev/console.
 * The same channel carries "E<code> <message>" on failure and is close-on-exec: EOF = exec'd.
 *
 * THE PLAN (<state>/plan, written by servin/runtime/plan.py): a flat sequence of NUL-terminated
 * strings:  <tag> <count> <value_1> ... <value_count>, repeated until the end of the file.
 * Unknown tags are skipped (their count tells how far). Values are any bytes except NUL.
 *   version 1 "1"                     format version
 *   args N argv...                    env N "K=V"...           cwd 1 path
 *   uid 1 n   gid 1 n   groups N n... hostname 1 name          root 1 path (absolute)
 *   domainname 1 name
 *   readonly_root 1 "0|1"             overlay 1 "lowerdir=..,upperdir=..,workdir=.." (may be absent:
 *                                     then root is bind-mounted onto itself)
 *   mount 5 source target fstype flags data     (repeatable, in order; flags = decimal MS_* mask,
 *        propagation bits MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (+MS_REC) are applied by a
 *        second mount call; MS_BIND -> bind then MS_REMOUNT|MS_BIND with the other flags;
 *        MS_REMOUNT without MS_BIND -> a plain remount of an earlier mount)
 *   masked N path...  readonly_path N path...  namespaces 1 CLONE_* mask (decimal)
 *   ns_path 2 type path  (repeatable; type network|ipc|uts|pid) join this namespace (an nsfs file:
 *        <exec-root>/netns/<id>, /proc/<pid>/ns/ipc) instead of making one: the shim opens it before
 *        the clone (a bad path fails `start`); the child setns()es into it first thing, before the
 *        mounts; pid is joined by the shim around the clone (setns changes the pid namespace of the
 *        children only). Its CLONE_NEW* is ignored in the mask then.
 *   sysctl 2 key value (repeatable) written to /proc/sys/<key, dots as slashes> after pivot_root,
 *        before the masked and read-only paths
 *   oom_score_adj 1 n  written to /proc/self/oom_score_adj by the init and by every exec, first thing
 *   device 7 path type major minor mode uid gid  (repeatable) a node the child makes (c, b or p;
 *        mode decimal) after the mounts, its parent resolved inside the root; an existing one is
 *        left; a refused mknod fails the start (no bind fallback: the path is the container's)
 *   mount 6 source target fstype flags data attr   as mount 5, then `attr` "rro": the mount and every
 *        mount below it made read-only (mount_setattr AT_RECURSIVE; fails the start where impossible),
 *        or "subpath=<path>": the mount narrowed to that subdirectory of it (resolved inside it)
 *   a bind with `data`: the path `data` inside `source` (resolved in it as in the root: a volume's
 *        subpath), which must exist
 *   mount fstype "nsbind": bind path `data` of the mount namespace `source` (/proc/<pid>/ns/mnt),
 *        cloned with open_tree there and moved onto the target here (--ipc container:'s /dev/shm)
 *   cgroup_procs N file... (repeatable)        caps 1 64-bit mask (decimal)
 *   rlimit 3 resource soft hard (repeatable, decimal, 18446744073709551615 = unlimited)
 *   no_new_privs 1 "0|1"  open_stdin 1 "0|1"  stdin_once 1 "0|1"  exit_file 1 path
 *   seccomp 2 path flags  a classic BPF program (struct sock_filter[], compiled by the runtime) that
 *        the shim reads at start and installs with seccomp(SECCOMP_SET_MODE_FILTER, flags) in the
 *        init and in every exec, as runc orders it: with no_new_privs last before execve, without
 *        it just before the user switch (installing needs CAP_SYS_ADMIN then). Absent: no filter.
 *   terminal 1 "0|1"  consolesize 2 rows cols (initial pty size)   init 1 "1" (informational: the
 *        runtime already put /sbin/docker-init first in args and bound it into the container)
 *   log 1 path        json-file log; absent: log driver none, nothing is written
 *   log_max_size 1 bytes  log_max_files 1 n   Docker's json-file rotation: before an entry is
 *        written, when the file holds >= max-size bytes, x.log.(n-1) is dropped, x.log.i ->
 *        x.log.(i+1), x.log -> x.log.1 and a new x.log is started; max-file 1 truncates x.log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>

#include "inroot.h"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

#define READ_CHUNK (64 * 1024)
#define PARTIAL_MAX (16 * 1024)
#define BACKPRESSURE (256 * 1024)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PROPAGATION (MS_PRIVATE | MS_SLAVE | MS_SHARED | MS_UNBINDABLE)

/* ------------------------------------------------------------------ small utilities */

static char state_dir[PATH_MAX];

/* snprintf for a path: -1 (errno ENAMETOOLONG) rather than a shorter path when it does not fit */
__attribute__((format(printf, 3, 4))) static int pathf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static void diag(const char *fmt, ...)
{
    /* Diagnostics of the shim itself go to <state>/shim.log (stderr is /dev/null). */
    char path[PATH_MAX + 16];
    if (pathf(path, sizeof path, "%s/shim.log", state_dir) < 0)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(fd, buf, n);
    (void)w;
    close(fd);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                poll(&pf, 1, 1000);
                continue;
            }
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        diag("out of memory (%zu bytes)", n);
        _exit(1);
    }
    return q;
}

/* growable byte buffer with a consumed head */
struct buf {
    char *data;
    size_t head, len, cap; /* valid bytes are data[head .. len) */
};

static size_t buf_pending(const struct buf *b) { return b->len - b->head; }

static void buf_reserve(struct buf *b, size_t extra)
{
    if (b->head > 0 && (b->head >= b->len || b->head > b->cap / 2)) {
        memmove(b->data, b->data + b->head, b->len - b->head);
        b->len -= b->head;
        b->head = 0;
    }
    if (b->len + extra > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + extra)
            nc *= 2;
        b->data = xrealloc(b->data, nc);
        b->cap = nc;
    }
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* shrink an idle buffer so a burst does not pin memory forever */
static void buf_trim(struct buf *b)
{
    if (buf_pending(b) == 0) {
        b->head = b->len = 0;
        if (b->cap > 64 * 1024) {
            free(b->data);
            b->data = NULL;
            b->cap = 0;
        }
    }
}

/* write what can be written without blocking; -1 on a fatal error */
static int buf_flush(struct buf *b, int fd)
{
    while (buf_pending(b) > 0) {
        ssize_t w = send(fd, b->data + b->head, buf_pending(b), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        b->head += (size_t)w;
    }
    buf_trim(b);
    return 0;
}

static void rfc3339nano(const struct timespec *ts, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    char frac[16] = "";
    if (ts->tv_nsec) {
        snprintf(frac, sizeof frac, ".%09ld", ts->tv_nsec);
        size_t l = strlen(frac);
        while (l > 1 && frac[l - 1] == '0')
            frac[--l] = 0;
    }
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int write_file_atomic(const char *path, const char *data, size_t n)
{
    char tmp[PATH_MAX + 32];
    if (pathf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write_all(fd, data, n) < 0 || fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the plan */

struct mountent {
    char *source, *target, *fstype, *data;
    unsigned long flags;
    const char *attr; /* "" or "rro": made recursively read-only (mount_setattr) once mounted */
};

struct rlim {
    int resource;
    unsigned long long soft, hard;
};

struct nspath {
    const char *type, *path;
    int flag; /* CLONE_NEW* */
    int fd;   /* but pid's: opened by do_start, joined (and closed) by the child; -1 when not open */
};

struct devnode {
    const char *path;
    mode_t mode; /* S_IF* | permission bits */
    dev_t dev;
    uid_t uid;
    gid_t gid;
};

struct plan {
    char **args;
    size_t nargs;
    char **env;
    size_t nenv;
    char *cwd, *hostname, *domainname, *root, *overlay, *log, *exit_file;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
    int readonly_root, no_new_privs, open_stdin, stdin_once, terminal, init;
    char *seccomp;               /* the program's path */
    unsigned long seccomp_flags; /* SECCOMP_FILTER_FLAG_* */
    unsigned short rows, cols; /* consolesize; 0 = leave the kernel default */
    long long log_max_size;    /* bytes; 0 = no rotation */
    int log_max_files;         /* files kept in total (>= 1) */
    struct mountent *mounts;
    size_t nmounts;
    char **masked;
    size_t nmasked;
    char **ro_paths;
    size_t nro_paths;
    unsigned long namespaces;
    char **cgroup_procs;
    size_t ncgroup_procs;
    uint64_t caps;
    struct rlim *rlimits;
    size_t nrlimits;
    struct nspath *ns_paths;
    size_t nns_paths;
    char **sysctls; /* key, value, key, value ... */
    size_t nsysctls;
    int has_oom_score_adj, oom_score_adj;
    struct devnode *devices;
    size_t ndevices;
    char *data;   /* the file: every string points into it */
    char **strs;  /* the split strings */
};

static struct plan P; /* the container's plan */

static void free_plan(struct plan *pl)
{
    free(pl->groups);
    free(pl->mounts);
    free(pl->cgroup_procs);
    free(pl->rlimits);
    free(pl->ns_paths);
    free(pl->sysctls);
    free(pl->devices);
    free(pl->data);
    free(pl->strs);
    memset(pl, 0, sizeof *pl);
}

/* parse a plan file into *pl; with is_exec only the process part is required (no root) */
/* Up to n bytes from fd into buf (retrying short reads and EINTR); returns how many were read. */
static size_t read_full(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

static int parse_plan(const char *path, struct plan *pl, int is_exec, char *err, size_t errn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errn, "open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errn, "stat plan: %s", strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    pl->data = malloc(size + 1);
    if (!pl->data) {
        close(fd);
        snprintf(err, errn, "plan too large");
        return -1;
    }
    size_t got = read_full(fd, pl->data, size);
    close(fd);
    if (got != size) {
        snprintf(err, errn, "short read of plan");
        return -1;
    }
    pl->data[size] = 0;
    if (size > 0 && pl->data[size - 1] != 0) {
        snprintf(err, errn, "plan does not end with NUL");
        return -1;
    }
    /* split */
    size_t nstr = 0;
    for (size_t i = 0; i < size; i++)
        if (pl->data[i] == 0)
            nstr++;
    char **s = calloc(nstr + 1, sizeof *s);
    if (!s) {
        snprintf(err, errn, "out of memory");
        return -1;
    }
    char *data = pl->data;
    size_t k = 0;
    for (size_t i = 0; i < size; i += strlen(data + i) + 1)
        s[k++] = data + i;

    memset(pl, 0, sizeof *pl);
    pl->log_max_files = 1;
    pl->data = data;
    pl->strs = s;
    pl->uid = 0;
    pl->gid = 0;
    size_t i = 0;
    while (i < nstr) {
        if (i + 1 >= nstr) {
            snprintf(err, errn, "truncated plan at tag %s", s[i]);
            goto fail;
        }
        const char *tag = s[i];
        char *end;
        errno = 0;
        unsigned long cnt = strtoul(s[i + 1], &end, 10);
        if (*end || errno || cnt > nstr - i - 2) {
            snprintf(err, errn, "bad count for tag %s", tag);
            goto fail;
        }
        char **v = s + i + 2;
        i += 2 + cnt;
#define NEED(n)                                                                 \
    if (cnt != (n)) {                                                           \
        snprintf(err, errn, "tag %s wants %d values, has %lu", tag, (n), cnt); \
        goto fail;                                                              \
    }
        if (!strcmp(tag, "args")) {
            pl->args = v;
            pl->nargs = cnt;
        } else if (!strcmp(tag, "env")) {
            pl->env = v;
            pl->nenv = cnt;
        } else if (!strcmp(tag, "cwd")) {
            NEED(1);
            pl->cwd = v[0];
        } else if (!strcmp(tag, "uid")) {
            NEED(1);
            pl->uid = (uid_t)strtoul(v[0], NULL, 10);
        } else if (!strcmp(tag, "gid")) {
            NEED(1);
            pl->gid = (gid_t)strtoul(v[0], NULL, 10);
        } else if (!strcmp(tag, "groups")) {
            pl->groups = calloc(cnt + 1, sizeof(gid_t));
            for (size_t j = 0; j < cnt; j++)
                pl->groups[j] = (gid_t)strtoul(v[j], NULL, 10);
            pl->ngroups = cnt;
        } else if (!strcmp(tag, "hostname")) {
            NEED(1);
            pl->hostname = v[0];
        } else if (!strcmp(tag, "domainname")) {
            NEED(1);
            pl->domainname = v[0];
        } else if (!strcmp(tag, "root")) {
            NEED(1);
            pl->root = v[0];
        } else if (!strcmp(tag, "readonly_root")) {
            NEED(1);
            pl->readonly_root = atoi(v[0]);
        } else if (!strcmp(tag, "overlay")) {
            NEED(1);
            pl->overlay = v[0];
        } else if (!strcmp(tag, "mount")) {
            if (cnt != 6) {
                NEED(5);
            }
            pl->mounts = xrealloc(pl->mounts, (pl->nmounts + 1) * sizeof *pl->mounts);
            struct mountent *m = &pl->mounts[pl->nmounts++];
            m->source = v[0];
            m->target = v[1];
            m->fstype = v[2];
            m->flags = strtoul(v[3], NULL, 10);
            m->data = v[4];
            m->attr = cnt == 6 ? v[5] : "";
        } else if (!strcmp(tag, "masked")) {
            pl->masked = v;
            pl->nmasked = cnt;
        } else if (!strcmp(tag, "readonly_path")) {
            pl->ro_paths = v;
            pl->nro_paths = cnt;
        } else if (!strcmp(tag, "namespaces")) {
            NEED(1);
            pl->namespaces = strtoul(v[0], NULL, 10);
        } else if (!strcmp(tag, "ns_path")) {
            NEED(2);
            static const struct { const char *type; int flag; } kinds[] = {
                {"network", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"pid", CLONE_NEWPID}};
            int flag = 0;
            for (size_t j = 0; j < sizeof kinds / sizeof kinds[0]; j++)
                if (!strcmp(v[0], kinds[j].type))
                    flag = kinds[j].flag;
            for (size_t j = 0; j < pl->nns_paths; j++)
                if (pl->ns_paths[j].flag == flag)
                    flag = 0; /* one path per namespace type */
            if (!flag || v[1][0] != '/') {
                snprintf(err, errn, "bad ns_path %s %s", v[0], v[1]);
                goto fail;
            }
            pl->ns_paths = xrealloc(pl->ns_paths, (pl->nns_paths + 1) * sizeof *pl->ns_paths);
            pl->ns_paths[pl->nns_paths++] = (struct nspath){.type = v[0], .path = v[1], .flag = flag, .fd = -1};
        } else if (!strcmp(tag, "sysctl")) {
            NEED(2);
            if (strchr(v[0], '/') || strstr(v[0], "..") || !v[0][0]) {
                snprintf(err, errn, "bad sysctl %s", v[0]);
                goto fail;
            }
            pl->sysctls = xrealloc(pl->sysctls, (pl->nsysctls + 2) * sizeof(char *));
            pl->sysctls[pl->nsysctls++] = v[0];
            pl->sysctls[pl->nsysctls++] = v[1];
        } else if (!strcmp(tag, "oom_score_adj")) {
            NEED(1);
            pl->has_oom_score_adj = 1;
            pl->oom_score_adj = atoi(v[0]);
        } else if (!strcmp(tag, "device")) {
            NEED(7);
            mode_t kind = !strcmp(v[1], "c") ? S_IFCHR : !strcmp(v[1], "b") ? S_IFBLK : !strcmp(v[1], "p") ? S_IFIFO : 0;
            if (!kind || v[0][0] != '/') {
                snprintf(err, errn, "bad device %s %s", v[0], v[1]);
                goto fail;
            }
            pl->devices = xrealloc(pl->devices, (pl->ndevices + 1) * sizeof *pl->devices);
            pl->devices[pl->ndevices++] = (struct devnode){
                .path = v[0], .mode = kind | (mode_t)(strtoul(v[4], NULL, 10) & 07777),
                .dev = makedev(strtoul(v[2], NULL, 10), strtoul(v[3], NULL, 10)),
                .uid = (uid_t)strtoul(v[5], NULL, 10), .gid = (gid_t)strtoul(v[6], NULL, 10)};
        } else if (!strcmp(tag, "cgroup_procs")) {
            pl->cgroup_procs = xrealloc(pl->cgroup_procs, (pl->ncgroup_procs + cnt) * sizeof(char *));
            for (size_t j = 0; j < cnt; j++)
                pl->cgroup_procs[pl->ncgroup_procs++] = v[j];
        } else if (!strcmp(tag, "caps")) {
            NEED(1);
            pl->caps = strtoull(v[0], NULL, 10);
        } else if (!strcmp(tag, "rlimit")) {
            NEED(3);
            pl->rlimits = xrealloc(pl->rlimits, (pl->nrlimits + 1) * sizeof *pl->rlimits);
            struct rlim *r = &pl->rlimits[pl->nrlimits++];
            r->resource = atoi(v[0]);
            r->soft = strtoull(v[1], NULL, 10);
            r->hard = strtoull(v[2], NULL, 10);
        } else if (!strcmp(tag, "no_new_privs")) {
            NEED(1);
            pl->no_new_privs = atoi(v[0]);
        } else if (!strcmp(tag, "seccomp")) {
            NEED(2);
            pl->seccomp = v[0];
            pl->seccomp_flags = strtoul(v[1], NULL, 10);
        } else if (!strcmp(tag, "open_stdin")) {
            NEED(1);
            pl->open_stdin = atoi(v[0]);
        } else if (!strcmp(tag, "stdin_once")) {
            NEED(1);
            pl->stdin_once = atoi(v[0]);
        } else if (!strcmp(tag, "log")) {
            NEED(1);
            pl->log = v[0];
        } else if (!strcmp(tag, "exit_file")) {
            NEED(1);
            pl->exit_file = v[0];
        } else if (!strcmp(tag, "terminal")) {
            NEED(1);
            pl->terminal = atoi(v[0]);
        } else if (!strcmp(tag, "consolesize")) {
            NEED(2);
            pl->rows = (unsigned short)strtoul(v[0], NULL, 10);
            pl->cols = (unsigned short)strtoul(v[1], NULL, 10);
        } else if (!strcmp(tag, "init")) {
            NEED(1);
            pl->init = atoi(v[0]);
        } else if (!strcmp(tag, "log_max_size")) {
            NEED(1);
            pl->log_max_size = strtoll(v[0], NULL, 10);
        } else if (!strcmp(tag, "log_max_files")) {
            NEED(1);
            pl->log_max_files = atoi(v[0]);
            if (pl->log_max_files < 1)
                pl->log_max_files = 1;
        }
        /* version and unknown tags: skipped */
#undef NEED
    }
    if (pl->nargs == 0 || (!is_exec && (!pl->root || pl->root[0] != '/'))) {
        snprintf(err, errn, is_exec ? "exec plan needs args" : "plan needs args and an absolute root");
        goto fail;
    }
    /* keep `s` alive: pl->args/env/... point into it */
    return 0;
fail:
    free_plan(pl);
    return -1;
}

/* ------------------------------------------------------------------ the container child */

/* The child reports to the shim over a SOCK_SEQPACKET socketpair (close-on-exec, so EOF means the
   exec succeeded). Messages: "E<code> <message>" (failed), "P<pid>" (the exec's pid, from the
   intermediate process of an exec), "T" carrying the pty master as SCM_RIGHTS. */
static int chan_w = -1;

__attribute__((noreturn, format(printf, 2, 3))) static void child_fail(int code, const char *fmt, ...)
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "E%d ", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    ssize_t w = send(chan_w, buf, strlen(buf), MSG_NOSIGNAL);
    (void)w;
    _exit(code ? code : 1);
}

static void chan_send_fd(int fd)
{
    char tag = 'T';
    struct iovec iov = {.iov_base = &tag, .iov_len = 1};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    if (sendmsg(chan_w, &mh, MSG_NOSIGNAL) < 0)
        child_fail(1, "send the pty master to the shim: %s", strerror(errno));
}

static unsigned long statfs_locked_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    if (sv.f_flag & ST_RDONLY)
        f |= MS_RDONLY;
    return f;
}

static void bind_remount(const char *target, unsigned long flags)
{
    unsigned long fl = MS_BIND | MS_REMOUNT | (flags & ~(MS_BIND | MS_REC | PROPAGATION | MS_REMOUNT));
    if (mount(NULL, target, NULL, fl, NULL) < 0) {
        if (errno != EPERM)
            child_fail(1, "remount %s: %s", target, strerror(errno));
        /* locked flags of the source mount must be kept */
        unsigned long keep = statfs_locked_flags(target) & ~MS_RDONLY;
        if (mount(NULL, target, NULL, fl | keep, NULL) < 0)
            child_fail(1, "remount %s: %s", target, strerror(errno));
    }
}

/* The mount `fd` is the root of, and every mount below it, read-only (runc's "rro"): mount_setattr(2)
   with AT_RECURSIVE, Linux >= 5.12. Where the kernel cannot, the start fails: the engine asks for it only
   where it can, or where the user demanded it (BindOptions.ReadOnlyForceRecursive). */
static void make_recursively_readonly(int fd, const char *target)
{
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
    struct {
        uint64_t attr_set, attr_clr, propagation, userns_fd;
    } attr = {0x00000001 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
        child_fail(1, "make %s recursively read-only: %s", target, strerror(errno));
}

/* The device nodes and links of a fresh /dev tmpfs, made in the directory `devfd` holds. */
static void make_devices(int devfd)
{
    static const struct {
        const char *name;
        unsigned maj, min;
    } devs[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
    static const struct {
        const char *target, *name;
    } links[] = {{"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                 {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},      {"/proc/kcore", "core"}};
    int dir = openat(devfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        child_fail(1, "open /dev: %s", strerror(errno));
    mode_t old = umask(0);
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
        if (mknodat(dir, devs[i].name, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)) < 0 && errno != EEXIST)
            child_fail(1, "mknod /dev/%s: %s", devs[i].name, strerror(errno));
    umask(old);
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i].target, dir, links[i].name) < 0 && errno != EEXIST)
            child_fail(1, "symlink /dev/%s: %s", links[i].name, strerror(errno));
    close(dir);
}

/* `target` inside the container's root (made as `make` says), never outside it; fails the start. */
static int mount_target(int rootfd, const char *target, enum inroot_make make)
{
    int fd = inroot_resolve(rootfd, target, make);
    if (fd < 0)
        child_fail(1, "mount point %s in the container: %s", target, strerror(errno));
    return fd;
}

/* The mount on `target` narrowed to its subdirectory `sub` (resolved inside it, never out of it): the
   subdirectory is cloned (open_tree), the whole mount detached, the clone moved onto the target (an
   image mount's ImageOptions.Subpath). */
static void narrow_to_subpath(int rootfd, const char *target, const char *sub)
{
    char at[64];
    int top = mount_target(rootfd, target, INROOT_OPEN);
    int dir = inroot_resolve(top, sub, INROOT_OPEN);
    if (dir < 0)
        child_fail(1, "subpath %s of %s: %s", sub, target, strerror(errno));
    int tree = (int)syscall(SYS_open_tree, dir, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0)
        child_fail(1, "subpath %s of %s: %s", sub, target, strerror(errno));
    close(dir);
    if (umount2(inroot_fdpath(top, at, sizeof at), MNT_DETACH) < 0)
        child_fail(1, "unmount %s: %s", target, strerror(errno));
    close(top);
    int fd = mount_target(rootfd, target, INROOT_OPEN);
    if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        child_fail(1, "mount subpath %s on %s: %s", sub, target, strerror(errno));
    close(tree);
    close(fd);
}

/* A plan mount of fstype "symlink": `target` becomes a symlink to `source`, made in its parent
   directory resolved inside the root (e.g. /sys/fs/cgroup/cpu -> cpu,cpuacct). */
static void make_symlink(int rootfd, const struct mountent *m)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(m->target, '/');
    const char *name = slash ? slash + 1 : "";
    if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
        child_fail(1, "symlink %s: invalid path", m->target);
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - m->target), m->target);
    int dir = mount_target(rootfd, parent[0] ? parent : "/", INROOT_DIR);
    if (symlinkat(m->source, dir, name) < 0)
        child_fail(1, "symlink %s: %s", m->target, strerror(errno));
    close(dir);
}

/* A plan mount of fstype "nsbind": path `data` of another mount namespace (`source`, e.g. the
   /proc/<pid>/ns/mnt of the container whose IPC namespace this one joins) bound on `target`. A
   bind cannot cross mount namespaces, so the tree is cloned there (open_tree) and moved here. */
static void bind_from_namespace(int rootfd, const struct mountent *m)
{
    char at[64];
    int self = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    int other = open(m->source, O_RDONLY | O_CLOEXEC);
    if (self < 0 || other < 0)
        child_fail(1, "open mount namespace %s: %s", m->source, strerror(errno));
    if (setns(other, CLONE_NEWNS) < 0)
        child_fail(1, "enter mount namespace %s: %s", m->source, strerror(errno));
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW | (m->flags & MS_REC ? AT_RECURSIVE : 0);
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, m->data, flags);
    int e = errno;
    if (setns(self, CLONE_NEWNS) < 0)
        child_fail(1, "return to the container's mount namespace: %s", strerror(errno));
    close(self);
    close(other);
    if (tree < 0)
        child_fail(1, "bind %s of %s: %s", m->data, m->source, strerror(e));
    struct stat st;
    if (fstat(tree, &st) < 0)
        child_fail(1, "bind %s of %s: %s", m->data, m->source, strerror(errno));
    int fd = mount_target(rootfd, m->target, S_ISDIR(st.st_mode) ? INROOT_DIR : INROOT_FILE);
    if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        child_fail(1, "bind %s of %s on %s: %s", m->data, m->source, m->target, strerror(errno));
    close(tree);
    close(fd);
    if (m->flags & PROPAGATION) {
        fd = mount_target(rootfd, m->target, INROOT_OPEN);
        if (mount(NULL, inroot_fdpath(fd, at, sizeof at), NULL, m->flags & (PROPAGATION | MS_REC), NULL) < 0)
            child_fail(1, "set propagation of %s: %s", m->target, strerror(errno));
        close(fd);
    }
}

/* One plan mount. Targets are resolved inside the root (inroot.h) and mounted on through their
   fds; after the mount the target is resolved again, so the remount, the propagation change and
   the /dev nodes reach the new mount and nothing else. */
static void do_mount(int rootfd, const struct mountent *m)
{
    char at[64];
    unsigned long flags = m->flags;
    int fd;
    if (!strcmp(m->fstype, "symlink")) {
        make_symlink(rootfd, m);
        return;
    }
    if (!strcmp(m->fstype, "nsbind")) {
        bind_from_namespace(rootfd, m);
        return;
    }
    if ((flags & MS_REMOUNT) && !(flags & MS_BIND)) {
        fd = mount_target(rootfd, m->target, INROOT_OPEN);
        if (mount(m->source, inroot_fdpath(fd, at, sizeof at), m->fstype, flags, m->data[0] ? m->data : NULL) < 0)
            child_fail(1, "remount %s: %s", m->target, strerror(errno));
        close(fd);
        return;
    }
    if (flags & MS_BIND) {
        struct stat st;
        char src[64];
        const char *from = m->source;
        int srcfd = -1;
        if (m->data[0]) { /* a subpath of the source (a volume's), resolved inside it, never out of it */
            int base = open(m->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (base < 0)
                child_fail(1, "bind mount source %s: %s", m->source, strerror(errno));
            srcfd = inroot_resolve(base, m->data, INROOT_OPEN);
            if (srcfd < 0)
                child_fail(1, "subpath %s of %s: %s", m->data, m->source, strerror(errno));
            close(base);
            from = inroot_fdpath(srcfd, src, sizeof src);
        }
        if (stat(from, &st) < 0)
            child_fail(1, "bind mount source %s: %s", m->source, strerror(errno));
        fd = mount_target(rootfd, m->target, S_ISDIR(st.st_mode) ? INROOT_DIR : INROOT_FILE);
        if (mount(from, inroot_fdpath(fd, at, sizeof at), NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
            child_fail(1, "bind mount %s on %s: %s", m->source, m->target, strerror(errno));
        if (srcfd >= 0)
            close(srcfd);
    } else {
        fd = mount_target(rootfd, m->target, INROOT_DIR);
        if (mount(m->source, inroot_fdpath(fd, at, sizeof at), m->fstype, flags & ~(PROPAGATION | MS_REC),
                  m->data[0] ? m->data : NULL) < 0)
            child_fail(1, "mount %s (%s) on %s: %s", m->source, m->fstype, m->target, strerror(errno));
    }
    close(fd);
    int remount = (flags & MS_BIND) && (flags & ~(MS_BIND | MS_REC | PROPAGATION));
    int devtmpfs = !strcmp(m->target, "/dev") && !strcmp(m->fstype, "tmpfs");
    int rro = !strcmp(m->attr, "rro");
    if (!strncmp(m->attr, "subpath=", 8))
        narrow_to_subpath(rootfd, m->target, m->attr + 8);
    if (!remount && !(flags & PROPAGATION) && !devtmpfs && !rro)
        return;
    fd = mount_target(rootfd, m->target, INROOT_OPEN);
    inroot_fdpath(fd, at, sizeof at);
    if (remount)
        bind_remount(at, flags);
    if ((flags & PROPAGATION) && mount(NULL, at, NULL, flags & (PROPAGATION | MS_REC), NULL) < 0)
        child_fail(1, "set propagation of %s: %s", m->target, strerror(errno));
    if (devtmpfs)
        make_devices(fd);
    if (rro)
        make_recursively_readonly(fd, m->target);
    close(fd);
}

static const char *env_get(const struct plan *pl, const char *name)
{
    size_t l = strlen(name);
    for (size_t i = 0; i < pl->nenv; i++)
        if (!strncmp(pl->env[i], name, l) && pl->env[i][l] == '=')
            return pl->env[i] + l + 1;
    return NULL;
}

/* strerror in Go's words ("no such file or directory"): the docker CLI picks exit code 127 or 126
   by matching them in the start error */
static const char *go_strerror(int e)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

/* resolve argv[0] like Go's exec.LookPath does for runc (Docker's messages) */
static void resolve_exec(const struct plan *pl, const char *arg0, char *out, size_t n)
{
    struct stat st;
    if (strchr(arg0, '/')) {
        if (stat(arg0, &st) < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                child_fail(127, "exec: \"%s\": stat %s: %s", arg0, arg0, go_strerror(errno));
            child_fail(126, "exec: \"%s\": stat %s: %s", arg0, arg0, go_strerror(errno));
        }
        if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111))
            child_fail(126, "exec: \"%s\": permission denied", arg0);
        snprintf(out, n, "%s", arg0);
        return;
    }
    if (!arg0[0])
        child_fail(127, "exec: \"\": executable file not found in $PATH");
    const char *path = env_get(pl, "PATH");
    if (!path)
        path = DEFAULT_PATH;
    const char *p = path;
    int denied = 0;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        char cand[PATH_MAX];
        int made = dl == 0 ? pathf(cand, sizeof cand, "./%s", arg0)
                           : pathf(cand, sizeof cand, "%.*s/%s", (int)dl, p, arg0);
        if (made == 0 && stat(cand, &st) == 0) {  /* one too long for a path is not found there */
            if (!S_ISDIR(st.st_mode) && (st.st_mode & 0111)) {
                snprintf(out, n, "%s", cand);
                return;
            }
            denied = 1;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    if (denied)
        child_fail(126, "exec: \"%s\": permission denied", arg0);
    child_fail(127, "exec: \"%s\": executable file not found in $PATH", arg0);
}

static void set_rlimits(void)
{
    /* as runc: a limit the kernel refuses (above the hard limit without CAP_SYS_RESOURCE) fails the
       start, never a quietly lower limit than the one asked for */
    for (size_t i = 0; i < P.nrlimits; i++) {
        struct rlimit rl = {.rlim_cur = P.rlimits[i].soft, .rlim_max = P.rlimits[i].hard};
        if (setrlimit(P.rlimits[i].resource, &rl) < 0)
            child_fail(1, "error setting rlimit type %d: %s", P.rlimits[i].resource,
                       errno == EPERM ? "operation not permitted" : strerror(errno));
    }
}

/* The container's seccomp program, read when the shim starts (the file is on the host, and may go
   from the cache later): the init and every exec install it. */
static struct sock_fprog seccomp_prog;

static int load_seccomp(const char *path, char *err, size_t errn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errn, "open seccomp program %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    if (n == 0 || n % sizeof(struct sock_filter) || n / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        snprintf(err, errn, "seccomp program %s: bad size %zu", path, n);
        close(fd);
        return -1;
    }
    char *buf = malloc(n);
    size_t got = buf ? read_full(fd, buf, n) : 0;
    close(fd);
    if (!buf || got != n) {
        snprintf(err, errn, "read seccomp program %s", path);
        free(buf);
        return -1;
    }
    seccomp_prog.len = (unsigned short)(n / sizeof(struct sock_filter));
    seccomp_prog.filter = (struct sock_filter *)buf;
    return 0;
}

static void install_seccomp(void)
{
    if (seccomp_prog.filter && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, P.seccomp_flags, &seccomp_prog) < 0)
        child_fail(1, "install the seccomp filter: %s", strerror(errno));
}

static void set_user_and_caps(const struct plan *pl)
{
    int last = 40;
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char b[16] = {0};
        if (read(fd, b, sizeof b - 1) > 0)
            last = atoi(b);
        close(fd);
    } else {
        while (last < 63 && prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0)
            last++;
    }
    for (int c = 0; c <= last; c++) {
        if (c < 64 && (pl->caps >> c) & 1)
            continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            child_fail(1, "drop capability %d from the bounding set: %s", c, strerror(errno));
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        child_fail(1, "PR_SET_KEEPCAPS: %s", strerror(errno));
    if (setgroups(pl->ngroups, pl->groups) < 0)
        child_fail(1, "setgroups: %s", strerror(errno));
    if (setresgid(pl->gid, pl->gid, pl->gid) < 0)
        child_fail(1, "setresgid %u: %s", (unsigned)pl->gid, strerror(errno));
    if (setresuid(pl->uid, pl->uid, pl->uid) < 0)
        child_fail(1, "setresuid %u: %s", (unsigned)pl->uid, strerror(errno));
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        child_fail(1, "PR_SET_KEEPCAPS: %s", strerror(errno));
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    uint64_t mask = pl->caps;
    /* never more than we have (a privileged exec asks for all: the shim's own set is "all") */
    if (syscall(SYS_capget, &hdr, data) == 0)
        mask &= ((uint64_t)data[1].permitted << 32) | data[0].permitted;
    memset(data, 0, sizeof data);
    if (last < 63)
        mask &= (1ULL << (last + 1)) - 1;
    data[0].effective = data[0].permitted = (uint32_t)mask;
    data[1].effective = data[1].permitted = (uint32_t)(mask >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0)
        child_fail(1, "capset: %s", strerror(errno));
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        child_fail(1, "clear ambient capabilities: %s", strerror(errno));
}

/* Docker makes a missing working directory (before a read-only root is remounted read-only),
   following links inside the container only. Errors are left to the chdir that comes later. */
static void make_workdir(const char *cwd)
{
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return;
    int dir = inroot_resolve(root, cwd, INROOT_DIR);
    if (dir >= 0)
        close(dir);
    close(root);
}

/* A session keyring of the container's own ("_ses.<id>"), joined by its init and by every exec as
   runc does: without it they would share the daemon's session keyring and possess its keys. */
static void join_session_keyring(void)
{
    const char *slash = strrchr(state_dir, '/');
    char name[128]; /* "_ses." and the container id (64 hex digits); a longer name is cut short */
    snprintf(name, sizeof name, "_ses.%.*s", (int)(sizeof name - sizeof "_ses."), slash ? slash + 1 : state_dir);
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name) < 0 && errno != ENOSYS)
        child_fail(1, "join a session keyring of its own: %s", strerror(errno));
}

/* Allocate the pty in the container's devpts (so `tty` says /dev/pts/N inside), hand the master
   to the shim, make the slave the controlling terminal on fds 0-2; for the init also bind the
   slave onto /dev/console (as runc does). Runs after pivot_root, before the user switch. */
static void setup_tty(const struct plan *pl, int bind_console)
{
    int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        child_fail(1, "open /dev/ptmx: %s", strerror(errno));
    if (grantpt(m) < 0 || unlockpt(m) < 0)
        child_fail(1, "unlockpt: %s", strerror(errno));
    char name[64];
    if (ptsname_r(m, name, sizeof name) != 0)
        child_fail(1, "ptsname: %s", strerror(errno));
    if (pl->rows && pl->cols) {
        struct winsize ws = {.ws_row = pl->rows, .ws_col = pl->cols};
        ioctl(m, TIOCSWINSZ, &ws);
    }
    int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0)
        child_fail(1, "open %s: %s", name, strerror(errno));
    if (fchown(sl, pl->uid, (gid_t)-1) < 0 && errno != EPERM)
        child_fail(1, "chown %s: %s", name, strerror(errno));
    if (bind_console) {
        int fd = open("/dev/console", O_RDONLY | O_CREAT | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
                child_fail(1, "bind %s on /dev/console: %s", name, strerror(errno));
        } /* no writable /dev (no /dev mount and a read-only root): no console, as with runc */
    }
    chan_send_fd(m);
    close(m);
    if (ioctl(sl, TIOCSCTTY, 0) < 0)
        child_fail(1, "TIOCSCTTY: %s", strerror(errno));
    if (dup2(sl, 0) < 0 || dup2(sl, 1) < 0 || dup2(sl, 2) < 0)
        child_fail(1, "dup2 tty: %s", strerror(errno));
    if (sl > 2)
        close(sl);
}

__attribute__((noreturn)) static void exec_process(const struct plan *pl)
{
    char exe[PATH_MAX];
    resolve_exec(pl, pl->args[0], exe, sizeof exe);

    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = 3; fd < 1024; fd++)
            if (fd != chan_w)
                close(fd);
    }
    char **argv = calloc(pl->nargs + 1, sizeof(char *));
    char **envp = calloc(pl->nenv + 1, sizeof(char *));
    if (!argv || !envp)
        child_fail(1, "out of memory");
    memcpy(argv, pl->args, pl->nargs * sizeof(char *));
    if (pl->nenv)
        memcpy(envp, pl->env, pl->nenv * sizeof(char *));
    execve(exe, argv, envp);
    int e = errno;
    if (e == EACCES || e == EISDIR)
        child_fail(126, "exec: \"%s\": permission denied", pl->args[0]);
    if (e == ENOENT)
        child_fail(127, "exec: \"%s\": no such file or directory", pl->args[0]);
    child_fail(126, "exec %s: %s", pl->args[0], go_strerror(e));
}

static void reset_signals(void)
{
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
}

static int has_ns_path(const char *type)
{
    for (size_t i = 0; i < P.nns_paths; i++)
        if (!strcmp(P.ns_paths[i].type, type))
            return 1;
    return 0;
}

/* Through the host's /proc, before the container's is mounted; kept across execve. */
static void write_oom_score_adj(void)
{
    if (!P.has_oom_score_adj)
        return;
    char b[16];
    int n = snprintf(b, sizeof b, "%d", P.oom_score_adj);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, b, (size_t)n) != n)
        child_fail(1, "write oom_score_adj %d: %s", P.oom_score_adj, strerror(errno));
    close(fd);
}

/* After pivot_root, in the container's /proc (its own network and IPC namespaces), before
   /proc/sys is made read-only. */
static void write_sysctls(void)
{
    for (size_t i = 0; i + 1 < P.nsysctls; i += 2) {
        char path[PATH_MAX];
        if (pathf(path, sizeof path, "/proc/sys/%s", P.sysctls[i]) < 0)
            child_fail(1, "write sysctl %s: %s", P.sysctls[i], strerror(errno));
        for (char *c = path + 10; *c; c++)
            if (*c == '.')
                *c = '/';
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        const char *val = P.sysctls[i + 1];
        if (fd < 0 || write_all(fd, val, strlen(val)) < 0)
            child_fail(1, "write sysctl %s: %s", P.sysctls[i], strerror(errno));
        close(fd);
    }
}

/* The plan's devices, made after the mounts (runc's createDevices): the parent is resolved inside
   the root; a node that exists is left. */
static void make_device_nodes(int rootfd)
{
    mode_t old = umask(0);
    for (size_t i = 0; i < P.ndevices; i++) {
        const struct devnode *d = &P.devices[i];
        char parent[PATH_MAX];
        const char *slash = strrchr(d->path, '/');
        const char *name = slash + 1;
        if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
            child_fail(1, "device %s: invalid path", d->path);
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - d->path), d->path);
        int dir = mount_target(rootfd, parent[0] ? parent : "/", INROOT_DIR);
        if (mknodat(dir, name, d->mode, d->dev) == 0) {
            if (fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
                child_fail(1, "chown device %s: %s", d->path, strerror(errno));
        } else if (errno != EEXIST) {
            /* no bind of "the host's node" as runc's rootless fallback: the plan names the node by its
               container path, and the supervisor is real root, so mknod only fails for a reason to report */
            child_fail(1, "mknod device %s: %s", d->path, strerror(errno));
        }
        close(dir);
    }
    umask(old);
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        child_fail(1, "socket: %s", strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        child_fail(1, "get flags of lo: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        child_fail(1, "bring lo up: %s", strerror(errno));
    close(s);
}

/* The last steps of the container's init and of every exec, once its stdio and terminal are set, in
   runc's order: limits, the working directory, a session keyring, the seccomp filter on whichever
   side of the user switch no_new_privs puts it, then execve. The init is at "/" already (a bad cwd
   fails it with 1); an exec goes to its cwd or "/" (a bad one: 127 or 126, as moby counts them). */
__attribute__((noreturn)) static void finish_and_exec(const struct plan *pl, int is_exec)
{
    set_rlimits();
    const char *cwd = pl->cwd && pl->cwd[0] ? pl->cwd : is_exec ? "/" : NULL;
    if (cwd && chdir(cwd) < 0) /* moby counts "no such file or directory" as a command not found: 127 */
        child_fail(!is_exec ? 1 : errno == ENOENT || errno == ENOTDIR ? 127 : 126,
                   "chdir to cwd (\"%s\") set in config.json failed: %s", cwd, go_strerror(errno));
    join_session_keyring(); /* keyctl: before the filter (Docker's profile refuses it) */
    if (!pl->no_new_privs)
        install_seccomp();
    set_user_and_caps(pl);
    if (pl->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(1, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if (pl->no_new_privs)
        install_seccomp();
    exec_process(pl);
}

__attribute__((noreturn)) static void child_main(int syncfd, int in, int out, int err)
{
    /* undo the shim's signal state */
    reset_signals();
    if (getenv("SERVIN_SHIM_NO_OPENAT2"))
        inroot_use_openat2 = 0; /* tests: resolve mount targets with the walk alone */

    char c;
    ssize_t r;
    do
        r = read(syncfd, &c, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1)
        _exit(1); /* the shim gave up on us */
    close(syncfd);

    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        child_fail(1, "dup2 stdio: %s", strerror(errno));
    if (setsid() < 0)
        child_fail(1, "setsid: %s", strerror(errno));

    if ((P.namespaces & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
        child_fail(1, "unshare cgroup namespace: %s", strerror(errno));
    for (size_t i = 0; i < P.nns_paths; i++) {
        struct nspath *ns = &P.ns_paths[i];
        if (ns->flag == CLONE_NEWPID)
            continue; /* joined by the shim around the clone */
        if (setns(ns->fd, ns->flag) < 0)
            child_fail(1, "join %s namespace %s: %s", ns->type, ns->path, strerror(errno));
        close(ns->fd);
        ns->fd = -1;
    }
    write_oom_score_adj();

    if (P.namespaces & CLONE_NEWNS) {
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
            child_fail(1, "make / rslave: %s", strerror(errno));
        if (P.overlay && P.overlay[0]) {
            if (mount("overlay", P.root, "overlay", 0, P.overlay) < 0)
                child_fail(1, "mount overlay rootfs on %s: %s", P.root, strerror(errno));
        } else if (mount(P.root, P.root, NULL, MS_BIND | MS_REC, NULL) < 0) {
            child_fail(1, "bind rootfs %s: %s", P.root, strerror(errno));
        }
        int rootfd = open(P.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
            child_fail(1, "open the container's root %s: %s", P.root, strerror(errno));
        for (size_t i = 0; i < P.nmounts; i++)
            do_mount(rootfd, &P.mounts[i]);
        make_device_nodes(rootfd);
        close(rootfd);
    }
    if ((P.namespaces & CLONE_NEWNET) || has_ns_path("network"))
        loopback_up();
    if (P.hostname && (P.namespaces & CLONE_NEWUTS) && sethostname(P.hostname, strlen(P.hostname)) < 0)
        child_fail(1, "sethostname: %s", strerror(errno));
    if (P.domainname && (P.namespaces & CLONE_NEWUTS) && setdomainname(P.domainname, strlen(P.domainname)) < 0)
        child_fail(1, "setdomainname: %s", strerror(errno));

    if (chdir(P.root) < 0)
        child_fail(1, "chdir %s: %s", P.root, strerror(errno));
    if (P.namespaces & CLONE_NEWNS) {
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            child_fail(1, "pivot_root %s: %s", P.root, strerror(errno));
        if (umount2(".", MNT_DETACH) < 0)
            child_fail(1, "detach old root: %s", strerror(errno));
    } else if (chroot(".") < 0) {
        child_fail(1, "chroot %s: %s", P.root, strerror(errno));
    }
    if (chdir("/") < 0)
        child_fail(1, "chdir /: %s", strerror(errno));
    if (P.cwd && P.cwd[0])
        make_workdir(P.cwd);
    write_sysctls();

    if (P.namespaces & CLONE_NEWNS) {
        for (size_t i = 0; i < P.nmasked; i++) {
            struct stat st;
            if (stat(P.masked[i], &st) < 0)
                continue;
            if (S_ISDIR(st.st_mode)) {
                if (mount("tmpfs", P.masked[i], "tmpfs", MS_RDONLY, NULL) < 0)
                    child_fail(1, "mask %s: %s", P.masked[i], strerror(errno));
            } else if (mount("/dev/null", P.masked[i], NULL, MS_BIND, NULL) < 0) {
                child_fail(1, "mask %s: %s", P.masked[i], strerror(errno));
            }
        }
        for (size_t i = 0; i < P.nro_paths; i++) {
            struct stat st;
            if (stat(P.ro_paths[i], &st) < 0)
                continue;
            if (mount(P.ro_paths[i], P.ro_paths[i], NULL, MS_BIND | MS_REC, NULL) < 0)
                child_fail(1, "bind readonly path %s: %s", P.ro_paths[i], strerror(errno));
            bind_remount(P.ro_paths[i], MS_RDONLY | statfs_locked_flags(P.ro_paths[i]));
        }
        if (P.readonly_root)
            bind_remount("/", MS_RDONLY | statfs_locked_flags("/"));
    }
    if (P.terminal)
        setup_tty(&P, P.namespaces & CLONE_NEWNS);

    finish_and_exec(&P, 0);
}

/* The exec'd process (the grandchild: already in the container's namespaces and cgroup). */
__attribute__((noreturn)) static void exec_child_main(const struct plan *X, int in, int out, int err)
{
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        child_fail(1, "dup2 stdio: %s", strerror(errno));
    if (setsid() < 0)
        child_fail(1, "setsid: %s", strerror(errno));
    if (X->terminal)
        setup_tty(X, 0);
    finish_and_exec(X, 1);
}

/* ------------------------------------------------------------------ the supervisor */

enum ctype { C_NEW, C_CONTROL, C_ATTACH, C_EXEC };

struct proc;

struct client {
    int fd;
    enum ctype type;
    int want_in, want_out, want_err;
    int read_eof;      /* no more input from this client */
    int closing;       /* 1: close once out is flushed, 2: dead */
    struct buf in;     /* partial line (new/control) */
    struct buf out;    /* pending output */
    struct proc *proc; /* C_EXEC: the exec's process (NULL once it is finished) */
    struct client *next;
};

/* A process whose stdio the shim holds: the container's init or an exec. */
struct proc {
    pid_t pid;
    int is_init;
    int terminal;
    int fd[3];         /* [1] stdout (pipe or a dup of the pty master), [2] stderr pipe; -1 = closed */
    int in_fd;         /* stdin pipe write end, or a dup of the pty master; -1 = closed */
    int master;        /* the pty master (kept for resize), -1 without a tty */
    int stdin_closed_req; /* close stdin once stdin_buf is flushed */
    struct buf stdin_buf;
    int exited, status; /* status: Docker's exit code (code or 128+signal) */
    int64_t exit_ms;
    struct client *client; /* exec: its connection (NULL once gone) */
    struct proc *next;
};

static struct client *clients;
static struct proc init_p = {.pid = -1, .is_init = 1, .fd = {-1, -1, -1}, .in_fd = -1, .master = -1};
static struct proc *execs;
static int listen_fd = -1, sig_fd = -1;
static pid_t child_pid = -1;
static int started, exited, exit_status, exit_done;
static int shutdown_req;
static struct timespec started_ts;
static int log_fd = -1;
static long long log_size; /* bytes in the current log file, including what logbuf holds */
static struct buf logbuf;
static struct buf partial[3]; /* per stream (1 stdout, 2 stderr) */
static char *rbuf;
static char sock_path[PATH_MAX + 16];

static void client_send(struct client *c, const char *s)
{
    buf_add(&c->out, s, strlen(s));
    if (buf_flush(&c->out, c->fd) < 0)
        c->closing = 2; /* dead */
}

static void control_broadcast(const char *line)
{
    for (struct client *c = clients; c; c = c->next)
        if (c->type == C_CONTROL && c->closing != 2)
            client_send(c, line);
}

/* JSON string escaping the way Docker's json-file logger (Go) does it */
static size_t json_escape_block(struct buf *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n * 6 + 16);
    char *o = b->data + b->len;
    size_t i = 0;
    while (i < n) {
        unsigned char ch = s[i];
        if (ch < 0x80) {
            if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != '<' && ch != '>' && ch != '&') {
                *o++ = (char)ch;
            } else if (ch == '"' || ch == '\\') {
                *o++ = '\\';
                *o++ = (char)ch;
            } else if (ch == '\n') {
                *o++ = '\\';
                *o++ = 'n';
            } else if (ch == '\r') {
                *o++ = '\\';
                *o++ = 'r';
            } else if (ch == '\t') {
                *o++ = '\\';
                *o++ = 't';
            } else {
                memcpy(o, "\\u00", 4);
                o[4] = hex[ch >> 4];
                o[5] = hex[ch & 15];
                o += 6;
            }
            i++;
            continue;
        }
        /* UTF-8 validation (Go's rules: no overlongs, no surrogates, <= U+10FFFF) */
        size_t len = 0;
        uint32_t cp = 0;
        if (ch >= 0xC2 && ch <= 0xDF && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            len = 2;
        } else if (ch >= 0xE0 && ch <= 0xEF && i + 2 < n && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
            cp = ((uint32_t)(ch & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
            if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF))
                len = 3;
        } else if (ch >= 0xF0 && ch <= 0xF4 && i + 3 < n && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80 &&
                   (s[i + 3] & 0xC0) == 0x80) {
            cp = ((uint32_t)(ch & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                 ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
            if (cp >= 0x10000 && cp <= 0x10FFFF)
                len = 4;
        }
        if (len == 0) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            i++;
        } else if (len == 3 && (cp == 0x2028 || cp == 0x2029)) {
            memcpy(o, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            i += 3;
        } else {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        }
    }
    b->len = (size_t)(o - b->data);
    return i;
}

/* escape in blocks so the log buffer stays small (worst case 6 bytes out per byte in) */
static void json_escape(struct buf *b, const unsigned char *s, size_t n)
{
    while (n > 0) {
        size_t take = n > 8192 ? 8192 : n;
        /* do not split a UTF-8 sequence: extend the block to the next lead byte */
        while (take < n && take < 8192 + 4 && (s[take] & 0xC0) == 0x80)
            take++;
        size_t done = json_escape_block(b, s, take);
        s += done;
        n -= done;
    }
}

static void log_flush(void)
{
    if (log_fd >= 0 && buf_pending(&logbuf)) {
        if (write_all(log_fd, logbuf.data + logbuf.head, buf_pending(&logbuf)) < 0)
            diag("write log: %s", strerror(errno));
    }
    logbuf.head = logbuf.len = 0;
    buf_trim(&logbuf);
}

/* Docker's json-file rotation (moby loggerutils): before an entry is written, if the file holds
   max-size bytes or more, shift x.log.(n-1) -> x.log.n ... x.log -> x.log.1 (dropping the
   oldest, keeping max-file files in total) and start an empty x.log; max-file 1 truncates. */
static void log_rotate(void)
{
    log_flush();
    if (P.log_max_files >= 2) {
        char from[PATH_MAX + 16], to[PATH_MAX + 16];
        if (pathf(to, sizeof to, "%s.%d", P.log, P.log_max_files - 1) < 0 || (unlink(to) < 0 && errno != ENOENT))
            diag("remove %s.%d: %s", P.log, P.log_max_files - 1, strerror(errno));
        for (int i = P.log_max_files - 1; i > 1; i--) {
            if (pathf(to, sizeof to, "%s.%d", P.log, i) < 0 || pathf(from, sizeof from, "%s.%d", P.log, i - 1) < 0 ||
                (rename(from, to) < 0 && errno != ENOENT))
                diag("rename %s.%d: %s", P.log, i - 1, strerror(errno));
        }
        if (pathf(to, sizeof to, "%s.1", P.log) < 0 || (rename(P.log, to) < 0 && errno != ENOENT))
            diag("rename %s: %s", P.log, strerror(errno));
        int fd = open(P.log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            diag("open %s: %s", P.log, strerror(errno));
            /* keep writing to the renamed file rather than losing output */
        } else {
            close(log_fd);
            log_fd = fd;
        }
    } else if (ftruncate(log_fd, 0) < 0) {
        diag("truncate %s: %s", P.log, strerror(errno));
    }
    log_size = 0;
}

static void log_entry(int stream, const char *a, size_t an, const char *b2, size_t bn, const char *ts)
{
    static const char *names[] = {"", "stdout", "stderr"};
    if (P.log_max_size > 0 && log_size >= P.log_max_size)
        log_rotate();
    size_t before = buf_pending(&logbuf);
    buf_add(&logbuf, "{\"log\":\"", 8);
    if (an)
        json_escape(&logbuf, (const unsigned char *)a, an);
    if (bn)
        json_escape(&logbuf, (const unsigned char *)b2, bn);
    char tail[128]; /* the stream's name and an RFC 3339 time (under 64 bytes) always fit */
    int n = snprintf(tail, sizeof tail, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", names[stream], ts);
    buf_add(&logbuf, tail, n < 0 ? 0 : (size_t)n < sizeof tail ? (size_t)n : sizeof tail - 1);
    log_size += (long long)(buf_pending(&logbuf) - before);
}

static void log_data(int stream, const char *d, size_t n, const char *ts)
{
    if (log_fd < 0)
        return;
    struct buf *pb = &partial[stream];
    /* one entry per line; a line longer than 16 KiB is cut into 16 KiB entries (as Docker does) */
    while (n > 0) {
        size_t have = buf_pending(pb);
        size_t room = PARTIAL_MAX - have;
        const char *nl = memchr(d, '\n', n < room ? n : room);
        const char *held = have ? pb->data + pb->head : NULL;
        if (nl) {
            size_t l = (size_t)(nl - d) + 1;
            log_entry(stream, held, have, d, l, ts);
            pb->head = pb->len = 0;
            d += l;
            n -= l;
        } else if (n >= room) {
            log_entry(stream, held, have, d, room, ts);
            pb->head = pb->len = 0;
            d += room;
            n -= room;
        } else {
            buf_add(pb, d, n);
            n = 0;
        }
        if (buf_pending(&logbuf) > 64 * 1024)
            log_flush();
    }
    buf_trim(pb);
}

static void log_final(void)
{
    char ts[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rfc3339nano(&now, ts, sizeof ts);
    for (int s = 1; s <= 2; s++) {
        if (buf_pending(&partial[s])) {
            log_entry(s, partial[s].data + partial[s].head, buf_pending(&partial[s]), NULL, 0, ts);
            buf_free(&partial[s]);
        }
    }
    log_flush();
}

static void frame(struct client *c, int stream, const char *d, size_t n)
{
    unsigned char hdr[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    buf_add(&c->out, hdr, 8);
    buf_add(&c->out, d, n);
    if (buf_flush(&c->out, c->fd) < 0)
        c->closing = 2;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void close_fd(int *fdp)
{
    if (*fdp >= 0) {
        close(*fdp);
        *fdp = -1;
    }
}

/* read once from a process's output; returns 0 on EOF (fd closed), -1 if nothing to read, 1 otherwise.
   The init's output goes to the log and the attach clients; an exec's to its connection only. */
static int pump(struct proc *p, int stream)
{
    ssize_t r = read(p->fd[stream], rbuf, READ_CHUNK);
    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return -1;
        if (errno != EIO) /* EIO: the pty's last slave fd is closed */
            diag("read stream %d of %d: %s", stream, (int)p->pid, strerror(errno));
        r = 0;
    }
    if (r == 0) {
        close_fd(&p->fd[stream]);
        return 0;
    }
    if (!p->is_init) {
        if (p->client && p->client->closing != 2)
            frame(p->client, stream, rbuf, (size_t)r);
        return 1;
    }
    if (log_fd >= 0) {
        char ts[64];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        rfc3339nano(&now, ts, sizeof ts);
        log_data(stream, rbuf, (size_t)r, ts);
        log_flush();
    }
    for (struct client *c = clients; c; c = c->next) {
        if (c->type != C_ATTACH || c->closing == 2)
            continue;
        if ((stream == 1 && !c->want_out) || (stream == 2 && !c->want_err))
            continue;
        frame(c, stream, rbuf, (size_t)r);
    }
    return 1;
}

static void close_stdin_now(struct proc *p)
{
    close_fd(&p->in_fd);
    buf_free(&p->stdin_buf);
}

static void flush_stdin(struct proc *p)
{
    if (p->in_fd < 0)
        return;
    while (buf_pending(&p->stdin_buf)) {
        ssize_t w = write(p->in_fd, p->stdin_buf.data + p->stdin_buf.head, buf_pending(&p->stdin_buf));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            /* EPIPE/EIO: the process closed its stdin */
            close_stdin_now(p);
            return;
        }
        p->stdin_buf.head += (size_t)w;
    }
    buf_trim(&p->stdin_buf);
    if (p->stdin_closed_req)
        close_stdin_now(p); /* with a tty this closes the shim's dup only: the tty stays */
}

static void request_close_stdin(struct proc *p)
{
    p->stdin_closed_req = 1;
    if (p->pid > 0)
        flush_stdin(p);
}

static int status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

/* Read the child's reports until EOF (= exec done, the channel is close-on-exec).
   Returns 0 on success; on failure fills reply with "failed <code> <message>\n". */
static int read_channel(int chan, pid_t *pidp, int *masterp, char *reply, size_t rn)
{
    int failed = 0;
    for (;;) {
        char msg[2048];
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg - 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
        ssize_t r = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        msg[r] = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm), sizeof fd);
                if (msg[0] == 'T' && *masterp < 0)
                    *masterp = fd;
                else
                    close(fd);
            }
        }
        if (msg[0] == 'P' && pidp) {
            *pidp = (pid_t)atoi(msg + 1);
        } else if (msg[0] == 'E' && !failed) {
            failed = 1;
            char *sp = strchr(msg + 1, ' ');
            snprintf(reply, rn, "failed %d %s\n", atoi(msg + 1), sp ? sp + 1 : msg + 1);
        }
    }
    if (failed)
        close_fd(masterp);
    return failed ? -1 : 0;
}

/* stdio for a new process: pipes, or (with a terminal) /dev/null placeholders the child replaces
   with the pty slave. child[] are the ends the child gets; the shim keeps p->fd/in_fd. */
static int make_stdio(struct proc *p, int terminal, int open_stdin, int child[3], char *reply, size_t rn)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
    child[0] = child[1] = child[2] = -1;
    if (!terminal && (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) {
        snprintf(reply, rn, "failed 1 create pipes: %s\n", strerror(errno));
        goto fail;
    }
    if (!terminal && open_stdin && pipe2(inp, O_CLOEXEC) < 0) {
        snprintf(reply, rn, "failed 1 create stdin pipe: %s\n", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < 3; i++) {
        int have = i == 0 ? inp[0] : i == 1 ? outp[1] : errp[1];
        child[i] = have >= 0 ? have : open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
        if (child[i] < 0) {
            snprintf(reply, rn, "failed 1 open /dev/null: %s\n", strerror(errno));
            goto fail;
        }
    }
    if (!terminal) {
        fcntl(outp[1], F_SETPIPE_SZ, 1 << 20);
        fcntl(errp[1], F_SETPIPE_SZ, 1 << 20);
    }
    p->fd[1] = outp[0];
    p->fd[2] = errp[0];
    p->in_fd = inp[1];
    return 0;
fail:
    for (int i = 0; i < 3; i++)
        close_fd(&child[i]);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&inp[0]);
    close_fd(&inp[1]);
    return -1;
}

static void proc_close_fds(struct proc *p)
{
    close_fd(&p->fd[1]);
    close_fd(&p->fd[2]);
    close_fd(&p->in_fd);
    close_fd(&p->master);
}

/* after a successful exec: the shim's ends become non-blocking; a tty's master is dup'ed for reading
   and writing so that closing stdin or hitting EOF never invalidates the fd resize uses */
static void proc_running(struct proc *p, pid_t pid, int master, int open_stdin)
{
    p->pid = pid;
    if (master >= 0) {
        p->master = master;
        p->fd[1] = fcntl(master, F_DUPFD_CLOEXEC, 3);
        p->in_fd = open_stdin ? fcntl(master, F_DUPFD_CLOEXEC, 3) : -1;
    }
    for (int i = 1; i < 3; i++)
        if (p->fd[i] >= 0)
            set_nonblock(p->fd[i]);
    if (p->in_fd >= 0) {
        set_nonblock(p->in_fd);
        flush_stdin(p);
    }
}

static int do_start(char *reply, size_t rn)
{
    int child[3] = {-1, -1, -1}, syncp[2] = {-1, -1}, chan[2] = {-1, -1}, master = -1, pid_ns_self = -1;
    if (make_stdio(&init_p, P.terminal, P.open_stdin, child, reply, rn) < 0)
        return -1;
    if (pipe2(syncp, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0) {
        snprintf(reply, rn, "failed 1 create pipes: %s\n", strerror(errno));
        goto fail;
    }
    unsigned long cflags = P.namespaces & (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET);
    for (size_t i = 0; i < P.nns_paths; i++) {
        int fd = open(P.ns_paths[i].path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(reply, rn, "failed 1 open %s namespace %s: %s\n", P.ns_paths[i].type, P.ns_paths[i].path,
                     strerror(errno));
            goto fail;
        }
        cflags &= ~(unsigned long)P.ns_paths[i].flag;
        if (P.ns_paths[i].flag != CLONE_NEWPID) {
            P.ns_paths[i].fd = fd;
            continue;
        }
        /* the child is born in that pid namespace: ours for children, around the clone */
        pid_ns_self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        int joined = pid_ns_self >= 0 && setns(fd, CLONE_NEWPID) == 0;
        int e = errno;
        close(fd);
        if (!joined) {
            snprintf(reply, rn, "failed 1 join pid namespace %s: %s\n", P.ns_paths[i].path, strerror(e));
            goto fail;
        }
    }
    pid_t pid = (pid_t)syscall(SYS_clone, cflags | SIGCHLD, 0, 0, 0, 0);
    int clone_errno = errno;
    if (pid != 0 && pid_ns_self >= 0) {
        if (setns(pid_ns_self, CLONE_NEWPID) < 0)
            diag("return to the shim's pid namespace: %s", strerror(errno));
        close_fd(&pid_ns_self);
    }
    errno = clone_errno;
    if (pid < 0) {
        snprintf(reply, rn, "failed 1 clone: %s\n", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        chan_w = chan[1];
        close(chan[0]);
        close(syncp[1]);
        child_main(syncp[0], child[0], child[1], child[2]);
    }
    close_fd(&chan[1]);
    close_fd(&syncp[0]);
    for (size_t i = 0; i < P.nns_paths; i++)
        close_fd(&P.ns_paths[i].fd);
    for (int i = 0; i < 3; i++)
        close_fd(&child[i]);
    for (size_t i = 0; i < P.ncgroup_procs; i++) {
        int fd = open(P.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
        char pb[32];
        int n = snprintf(pb, sizeof pb, "%d\n", (int)pid);
        if (fd < 0 || write(fd, pb, (size_t)n) != n) {
            snprintf(reply, rn, "failed 1 join cgroup %s: %s\n", P.cgroup_procs[i], strerror(errno));
            if (fd >= 0)
                close(fd);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            goto fail;
        }
        close(fd);
    }
    clock_gettime(CLOCK_REALTIME, &started_ts);
    if (write(syncp[1], "g", 1) != 1) {
        snprintf(reply, rn, "failed 1 sync with the container: %s\n", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        goto fail;
    }
    close_fd(&syncp[1]);
    if (read_channel(chan[0], NULL, &master, reply, rn) < 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    close_fd(&chan[0]);
    if (P.terminal && master < 0) {
        snprintf(reply, rn, "failed 1 no pty master from the container\n");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        goto fail;
    }
    /* exec succeeded */
    child_pid = pid;
    started = 1;
    proc_running(&init_p, pid, master, P.open_stdin);
    snprintf(reply, rn, "started %d\n", (int)pid);
    return 0;
fail:
    for (size_t i = 0; i < P.nns_paths; i++)
        close_fd(&P.ns_paths[i].fd);
    if (pid_ns_self >= 0) {
        if (setns(pid_ns_self, CLONE_NEWPID) < 0)
            diag("return to the shim's pid namespace: %s", strerror(errno));
        close_fd(&pid_ns_self);
    }
    for (int i = 0; i < 3; i++)
        close_fd(&child[i]);
    close_fd(&syncp[0]);
    close_fd(&syncp[1]);
    close_fd(&chan[0]);
    close_fd(&chan[1]);
    proc_close_fds(&init_p);
    buf_free(&init_p.stdin_buf);
    return -1;
}

static const char *const NS_NAMES[] = {"ipc", "uts", "net", "pid", "mnt", "cgroup"};
#define NNS (sizeof NS_NAMES / sizeof NS_NAMES[0])

/* Start an exec in the running container: an intermediate child joins the cgroup and the init's
   namespaces, forks the process (so it is inside the pid namespace) and reports its pid. */
static struct proc *do_exec(const char *plan_path, char *reply, size_t rn)
{
    struct plan X;
    char err[512];
    int nsfd[NNS], child[3] = {-1, -1, -1}, chan[2] = {-1, -1}, master = -1;
    for (size_t i = 0; i < NNS; i++)
        nsfd[i] = -1;
    memset(&X, 0, sizeof X);
    struct proc *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(reply, rn, "failed 1 out of memory\n");
        return NULL;
    }
    p->pid = -1;
    p->fd[0] = p->fd[1] = p->fd[2] = p->in_fd = p->master = -1;
    if (parse_plan(plan_path, &X, 1, err, sizeof err) < 0) {
        snprintf(reply, rn, "failed 1 exec plan: %s\n", err);
        goto fail;
    }
    if (!started || exited) {
        snprintf(reply, rn, "failed 1 container not running\n");
        goto fail;
    }
    for (size_t i = 0; i < NNS; i++) {
        char path[64];
        struct stat mine, theirs;
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)child_pid, NS_NAMES[i]);
        nsfd[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd[i] < 0) {
            if (errno == ENOENT && i == NNS - 1 && access("/proc/self/ns/cgroup", F_OK) < 0)
                continue; /* no cgroup namespaces on this kernel */
            snprintf(reply, rn, "failed 1 container not running\n");
            goto fail;
        }
        snprintf(path, sizeof path, "/proc/self/ns/%s", NS_NAMES[i]);
        if (fstat(nsfd[i], &theirs) == 0 && stat(path, &mine) == 0 && mine.st_ino == theirs.st_ino &&
            mine.st_dev == theirs.st_dev)
            close_fd(&nsfd[i]); /* the container shares ours */
    }
    p->terminal = X.terminal;
    if (make_stdio(p, X.terminal, X.open_stdin, child, reply, rn) < 0)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0) {
        snprintf(reply, rn, "failed 1 socketpair: %s\n", strerror(errno));
        goto fail;
    }
    pid_t mid = fork();
    if (mid < 0) {
        snprintf(reply, rn, "failed 1 fork: %s\n", strerror(errno));
        goto fail;
    }
    if (mid == 0) {
        chan_w = chan[1];
        close(chan[0]);
        reset_signals();
        write_oom_score_adj(); /* the container's, as runc gives every exec */
        char pb[32];
        int n = snprintf(pb, sizeof pb, "%d\n", (int)getpid());
        for (size_t i = 0; i < P.ncgroup_procs; i++) {
            int fd = open(P.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, pb, (size_t)n) != n)
                child_fail(1, "join cgroup %s: %s", P.cgroup_procs[i], strerror(errno));
            close(fd);
        }
        for (size_t i = 0; i < NNS; i++)
            if (nsfd[i] >= 0 && setns(nsfd[i], 0) < 0)
                child_fail(1, "join the %s namespace: %s", NS_NAMES[i], strerror(errno));
        pid_t g = fork();
        if (g < 0)
            child_fail(1, "fork: %s", strerror(errno));
        if (g == 0)
            exec_child_main(&X, child[0], child[1], child[2]);
        n = snprintf(pb, sizeof pb, "P%d", (int)g);
        if (send(chan_w, pb, (size_t)n, MSG_NOSIGNAL) < 0)
            kill(g, SIGKILL);
        _exit(0);
    }
    close_fd(&chan[1]);
    for (int i = 0; i < 3; i++)
        close_fd(&child[i]);
    for (size_t i = 0; i < NNS; i++)
        close_fd(&nsfd[i]);
    pid_t gpid = -1;
    int rc = read_channel(chan[0], &gpid, &master, reply, rn);
    close_fd(&chan[0]);
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (rc < 0)
        goto fail; /* the failed process is reaped by handle_sigchld (the shim is its subreaper) */
    if (gpid <= 0 || (X.terminal && master < 0)) {
        snprintf(reply, rn, "failed 1 the exec did not start\n");
        if (gpid > 0)
            kill(gpid, SIGKILL);
        close_fd(&master);
        goto fail;
    }
    proc_running(p, gpid, master, X.open_stdin);
    free_plan(&X);
    p->next = execs;
    execs = p;
    snprintf(reply, rn, "started %d\n", (int)gpid);
    return p;
fail:
    for (size_t i = 0; i < NNS; i++)
        close_fd(&nsfd[i]);
    for (int i = 0; i < 3; i++)
        close_fd(&child[i]);
    close_fd(&chan[0]);
    close_fd(&chan[1]);
    proc_close_fds(p);
    free(p);
    free_plan(&X);
    return NULL;
}

static struct proc *find_proc(pid_t pid)
{
    if (pid == 0 || (started && pid == child_pid))
        return started && !exit_done ? &init_p : NULL;
    for (struct proc *p = execs; p; p = p->next)
        if (p->pid == pid)
            return p;
    return NULL;
}

static void client_readable(struct client *c);
static void accept_clients(void);

static void handle_control_line(struct client *c, char *line)
{
    char reply[2200];
    if (!strcmp(line, "start")) {
        /* attach connections made before "start" must see the first byte: take in every pending
           connection and its first line now (the daemon attached, then sent start) */
        accept_clients();
        for (struct client *o = clients; o; o = o->next)
            if (o->type == C_NEW && !o->closing && !o->read_eof)
                client_readable(o);
        if (started || exited)
            snprintf(reply, sizeof reply, "failed 1 container already started\n");
        else
            do_start(reply, sizeof reply);
    } else if (!strncmp(line, "kill ", 5)) {
        int sig = atoi(line + 5);
        if (!started || exited)
            snprintf(reply, sizeof reply, "error container is not running\n");
        else if (kill(child_pid, sig) < 0)
            snprintf(reply, sizeof reply, "error kill: %s\n", strerror(errno));
        else
            snprintf(reply, sizeof reply, "ok\n");
    } else if (!strcmp(line, "closestdin")) {
        request_close_stdin(&init_p);
        snprintf(reply, sizeof reply, "ok\n");
    } else if (!strcmp(line, "state")) {
        snprintf(reply, sizeof reply, "state %s %d %d\n", exited ? "exited" : started ? "running" : "created",
                 started ? (int)child_pid : 0, exited ? exit_status : 0);
    } else if (!strncmp(line, "resize ", 7)) {
        int pid, rows, cols;
        struct proc *p;
        if (sscanf(line + 7, "%d %d %d", &pid, &rows, &cols) != 3 || rows < 0 || cols < 0 || rows > 65535 ||
            cols > 65535) {
            snprintf(reply, sizeof reply, "error bad resize line\n");
        } else if (!(p = find_proc((pid_t)pid)) || p->exited) {
            snprintf(reply, sizeof reply, "error no such process\n");
        } else if (p->master < 0) {
            snprintf(reply, sizeof reply, "error the process has no terminal\n");
        } else {
            struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
            if (ioctl(p->master, TIOCSWINSZ, &ws) < 0)
                snprintf(reply, sizeof reply, "error resize: %s\n", strerror(errno));
            else
                snprintf(reply, sizeof reply, "ok\n");
        }
    } else if (!strcmp(line, "shutdown")) {
        shutdown_req = 1;
        if (started && !exited)
            kill(child_pid, SIGKILL);
        snprintf(reply, sizeof reply, "ok\n");
    } else {
        snprintf(reply, sizeof reply, "error unknown command\n");
    }
    client_send(c, reply);
}

static void handle_first_line(struct client *c, char *line)
{
    if (!strcmp(line, "control")) {
        c->type = C_CONTROL;
        if (exit_done) {
            char l[64];
            snprintf(l, sizeof l, "exited %d\n", exit_status);
            client_send(c, l);
        }
    } else if (!strncmp(line, "attach ", 7)) {
        c->type = C_ATTACH;
        if (sscanf(line + 7, "%d %d %d", &c->want_in, &c->want_out, &c->want_err) != 3) {
            client_send(c, "error bad attach line\n");
            c->closing = 1;
            return;
        }
        if (c->want_in &&
            (!P.open_stdin || (started && init_p.in_fd < 0 && !buf_pending(&init_p.stdin_buf))))
            c->want_in = 0;
        if (exit_done)
            c->closing = 1;
    } else if (!strncmp(line, "exec ", 5)) {
        char reply[2200];
        c->type = C_EXEC;
        struct proc *p = exit_done ? NULL : do_exec(line + 5, reply, sizeof reply);
        if (exit_done)
            snprintf(reply, sizeof reply, "failed 1 container not running\n");
        client_send(c, reply);
        if (!p) {
            c->closing = 1;
            return;
        }
        p->client = c;
        c->proc = p;
    } else {
        client_send(c, "error unknown connection type\n");
        c->closing = 1;
    }
}

/* raw bytes from an attach or exec client: stdin of the init or of the exec */
static void client_stdin(struct client *c, const char *d, size_t n)
{
    struct proc *p = c->type == C_EXEC ? c->proc : &init_p;
    if (!p || (c->type == C_ATTACH && !c->want_in) || p->stdin_closed_req)
        return;
    if (p->pid > 0 && p->in_fd < 0)
        return;
    buf_add(&p->stdin_buf, d, n);
    if (p->pid > 0)
        flush_stdin(p);
}

static void client_readable(struct client *c)
{
    if (c->type == C_ATTACH || c->type == C_EXEC) {
        ssize_t r = recv(c->fd, rbuf, READ_CHUNK, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                return;
            c->closing = 2;
            return;
        }
        if (r == 0) {
            c->read_eof = 1;
            if (c->type == C_EXEC && c->proc)
                request_close_stdin(c->proc);
            else if (c->type == C_ATTACH && c->want_in && P.stdin_once)
                request_close_stdin(&init_p);
            return;
        }
        client_stdin(c, rbuf, (size_t)r);
        return;
    }
    char tmp[1024];
    ssize_t r = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        c->closing = 2;
        return;
    }
    if (r == 0) {
        c->read_eof = 1;
        c->closing = 1;
        return;
    }
    buf_add(&c->in, tmp, (size_t)r);
    for (;;) {
        char *start = c->in.data + c->in.head;
        char *nl = memchr(start, '\n', buf_pending(&c->in));
        if (!nl) {
            if (buf_pending(&c->in) > 4096)
                c->closing = 2;
            break;
        }
        *nl = 0;
        c->in.head += (size_t)(nl - start) + 1;
        if (c->type == C_NEW) {
            handle_first_line(c, start);
            if ((c->type == C_ATTACH || c->type == C_EXEC) && buf_pending(&c->in)) {
                /* stdin bytes that came with the first line */
                if (!c->closing)
                    client_stdin(c, c->in.data + c->in.head, buf_pending(&c->in));
                c->in.head = c->in.len;
                break;
            }
        } else {
            handle_control_line(c, start);
        }
        if (c->type == C_ATTACH || c->type == C_EXEC || c->closing)
            break;
    }
    buf_trim(&c->in);
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        struct client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->next = clients;
        clients = c;
    }
}

static void reap_clients(void)
{
    struct client **pp = &clients;
    while (*pp) {
        struct client *c = *pp;
        int dead = c->closing == 2 || (c->closing == 1 && buf_pending(&c->out) == 0);
        if (dead) {
            if (c->want_in && !c->read_eof && P.stdin_once && c->type == C_ATTACH)
                request_close_stdin(&init_p);
            if (c->proc) {
                /* the exec's client is gone: the exec runs on, its output is dropped */
                c->proc->client = NULL;
                request_close_stdin(c->proc);
            }
            close(c->fd);
            buf_free(&c->in);
            buf_free(&c->out);
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void finish_exit(void)
{
    /* all output drained (or given up on): record the exit, then tell the clients */
    log_final();
    if (log_fd >= 0) {
        close(log_fd);
        log_fd = -1;
    }
    close_stdin_now(&init_p);
    close_fd(&init_p.master);
    char fin[64], sta[64], line[256];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rfc3339nano(&now, fin, sizeof fin);
    rfc3339nano(&started_ts, sta, sizeof sta);
    int n = snprintf(line, sizeof line, "{\"exit_code\":%d,\"finished_at\":\"%s\",\"started_at\":\"%s\",\"pid\":%d}\n",
                     exit_status, fin, sta, (int)child_pid);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/exit", state_dir);
    if (write_file_atomic(path, line, (size_t)n) < 0)
        diag("write %s: %s", path, strerror(errno));
    if (P.exit_file && P.exit_file[0] && write_file_atomic(P.exit_file, line, (size_t)n) < 0)
        diag("write %s: %s", P.exit_file, strerror(errno));
    exit_done = 1;
    snprintf(line, sizeof line, "exited %d\n", exit_status);
    control_broadcast(line);
    for (struct client *c = clients; c; c = c->next)
        if (!c->closing && !(c->type == C_EXEC && c->proc))
            c->closing = 1;
}

/* an exec that exited and whose output is drained: send the exit trailer, close, forget it */
static void finish_exec(struct proc *p)
{
    while (p->fd[1] >= 0 && pump(p, 1) > 0)
        ;
    while (p->fd[2] >= 0 && pump(p, 2) > 0)
        ;
    if (p->client && p->client->closing != 2) {
        unsigned char t[12] = {0xFE, 0, 0, 0, 0, 0, 0, 4, (unsigned char)(p->status >> 24),
                               (unsigned char)(p->status >> 16), (unsigned char)(p->status >> 8),
                               (unsigned char)p->status};
        buf_add(&p->client->out, t, sizeof t);
        if (buf_flush(&p->client->out, p->client->fd) < 0)
            p->client->closing = 2;
        else
            p->client->closing = 1;
    }
    if (p->client)
        p->client->proc = NULL;
    proc_close_fds(p);
    buf_free(&p->stdin_buf);
    for (struct proc **pp = &execs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p);
}

static void handle_sigchld(void)
{
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) > 0)
        ;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            break;
        if (pid == child_pid && started && !exited) {
            exited = 1;
            exit_status = status_code(st);
            init_p.exited = 1;
            init_p.status = exit_status;
            continue;
        }
        for (struct proc *p = execs; p; p = p->next) {
            if (p->pid == pid && !p->exited) {
                p->exited = 1;
                p->status = status_code(st);
                p->exit_ms = now_ms();
                break;
            }
        }
    }
}

static int proc_blocked(const struct proc *p)
{
    if (!p->is_init)
        return p->client && buf_pending(&p->client->out) > BACKPRESSURE;
    for (struct client *c = clients; c; c = c->next)
        if (c->type == C_ATTACH && buf_pending(&c->out) > BACKPRESSURE)
            return 1;
    return 0;
}

static int serve(void)
{
    struct pollfd *pfds = NULL;
    void **owners = NULL; /* per pollfd: the client, or the proc for its output/stdin fds */
    char *kinds = NULL;   /* 'L' listen, 'S' signal, '1'/'2' output of a proc, 'I' stdin, 'C' client */
    size_t pcap = 0;
    int64_t exit_seen_ms = 0, flush_deadline_ms = 0;
    for (;;) {
        if (exited && !exit_seen_ms)
            exit_seen_ms = now_ms();
        /* output is drained when the pipes hit EOF; give up 5 s after exit if something else holds them */
        if (exited && !exit_done &&
            ((init_p.fd[1] < 0 && init_p.fd[2] < 0) || now_ms() - exit_seen_ms > 5000)) {
            while (init_p.fd[1] >= 0 && pump(&init_p, 1) > 0)
                ;
            while (init_p.fd[2] >= 0 && pump(&init_p, 2) > 0)
                ;
            close_fd(&init_p.fd[1]);
            close_fd(&init_p.fd[2]);
            finish_exit();
            flush_deadline_ms = now_ms() + 60000;
        }
        for (struct proc *p = execs, *nx; p; p = nx) {
            nx = p->next;
            if (p->exited && ((p->fd[1] < 0 && p->fd[2] < 0) || now_ms() - p->exit_ms > 5000))
                finish_exec(p);
        }
        reap_clients();
        if (exit_done && ((!clients && !execs) || now_ms() > flush_deadline_ms))
            return 0;
        if (shutdown_req && !started)
            return 0;

        size_t nc = 0, np = 1;
        for (struct client *c = clients; c; c = c->next)
            nc++;
        for (struct proc *p = execs; p; p = p->next)
            np++;
        size_t need = nc + 3 * np + 2;
        if (need > pcap) {
            pcap = need * 2;
            pfds = xrealloc(pfds, pcap * sizeof *pfds);
            owners = xrealloc(owners, pcap * sizeof *owners);
            kinds = xrealloc(kinds, pcap);
        }
        size_t n = 0;
#define ADD(f, ev, k, o)                                        \
    do {                                                        \
        pfds[n] = (struct pollfd){.fd = (f), .events = (ev)};   \
        kinds[n] = (k);                                         \
        owners[n] = (o);                                        \
        n++;                                                    \
    } while (0)
        ADD(listen_fd, POLLIN, 'L', NULL);
        ADD(sig_fd, POLLIN, 'S', NULL);
        for (struct proc *p = &init_p; p; p = p == &init_p ? execs : p->next) {
            int blocked = proc_blocked(p);
            if (p->fd[1] >= 0 && !blocked)
                ADD(p->fd[1], POLLIN, '1', p);
            if (p->fd[2] >= 0 && !blocked)
                ADD(p->fd[2], POLLIN, '2', p);
            if (p->in_fd >= 0 && buf_pending(&p->stdin_buf))
                ADD(p->in_fd, POLLOUT, 'I', p);
        }
        for (struct client *c = clients; c; c = c->next) {
            short ev = 0;
            int stdin_full = 0;
            if (c->type == C_ATTACH)
                stdin_full = buf_pending(&init_p.stdin_buf) > BACKPRESSURE;
            else if (c->type == C_EXEC && c->proc)
                stdin_full = buf_pending(&c->proc->stdin_buf) > BACKPRESSURE;
            if (!c->read_eof && !c->closing && !stdin_full)
                ev |= POLLIN;
            if (buf_pending(&c->out))
                ev |= POLLOUT;
            ADD(c->fd, ev, 'C', c);
        }
#undef ADD
        int timeout = -1;
        if ((exited && !exit_done) || execs)
            timeout = 200;
        else if (exit_done)
            timeout = 1000;
        int r = poll(pfds, n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            diag("poll: %s", strerror(errno));
            return 1;
        }
        if (pfds[1].revents)
            handle_sigchld();
        for (size_t k = 2; k < n; k++) {
            short re = pfds[k].revents;
            if (!re)
                continue;
            if (kinds[k] == '1' || kinds[k] == '2') {
                struct proc *p = owners[k];
                int s = kinds[k] - '0';
                if (p->fd[s] == pfds[k].fd)
                    pump(p, s);
            } else if (kinds[k] == 'I') {
                flush_stdin(owners[k]);
            } else if (kinds[k] == 'C') {
                struct client *c = owners[k];
                if (re & POLLOUT) {
                    if (buf_flush(&c->out, c->fd) < 0)
                        c->closing = 2;
                }
                if ((re & (POLLIN | POLLHUP | POLLERR)) && !c->read_eof && c->closing != 2)
                    client_readable(c);
                if ((re & (POLLERR | POLLNVAL)) || ((re & POLLHUP) && c->read_eof))
                    c->closing = 2; /* the peer is gone both ways */
            }
        }
        if (pfds[0].revents & POLLIN)
            accept_clients();
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: servin-shim <state-dir> [ready-fd]\n");
        return 2;
    }
    int ready_fd = argc > 2 ? atoi(argv[2]) : 3;
    if (!realpath(argv[1], state_dir)) {
        dprintf(ready_fd, "error state dir %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    pid_t p = fork();
    if (p < 0) {
        dprintf(ready_fd, "error fork: %s\n", strerror(errno));
        return 1;
    }
    if (p > 0)
        _exit(0);

    setsid();
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (devnull > 2)
            close(devnull);
    }
    fcntl(ready_fd, F_SETFD, FD_CLOEXEC);

    char err[512];
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/plan", state_dir);
    if (parse_plan(path, &P, 0, err, sizeof err) < 0) {
        dprintf(ready_fd, "error plan: %s\n", err);
        return 1;
    }
    if (P.seccomp && load_seccomp(P.seccomp, err, sizeof err) < 0) {
        dprintf(ready_fd, "error %s\n", err);
        return 1;
    }
    rbuf = malloc(READ_CHUNK);
    if (!rbuf) {
        dprintf(ready_fd, "error out of memory\n");
        return 1;
    }
    if (P.log && P.log[0]) {
        log_fd = open(P.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (log_fd < 0) {
            dprintf(ready_fd, "error open log %s: %s\n", P.log, strerror(errno));
            return 1;
        }
        struct stat lst;
        if (fstat(log_fd, &lst) == 0)
            log_size = (long long)lst.st_size;
    }
    /* exec'd processes are grandchildren (forked inside the pid namespace): we reap them */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        diag("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) {
        dprintf(ready_fd, "error signalfd: %s\n", strerror(errno));
        return 1;
    }

    /* bind with a relative name: state paths may exceed sun_path */
    if (chdir(state_dir) < 0) {
        dprintf(ready_fd, "error chdir %s: %s\n", state_dir, strerror(errno));
        return 1;
    }
    snprintf(sock_path, sizeof sock_path, "%s/shim.sock", state_dir);
    unlink("shim.sock");
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "shim.sock");
    mode_t old = umask(0177);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(listen_fd, 64) < 0) {
        umask(old);
        dprintf(ready_fd, "error listen on %s: %s\n", sock_path, strerror(errno));
        return 1;
    }
    umask(old);
    char pidline[32];
    int pn = snprintf(pidline, sizeof pidline, "%d\n", (int)getpid());
    snprintf(path, sizeof path, "%s/shim.pid", state_dir);
    if (write_file_atomic(path, pidline, (size_t)pn) < 0) {
        dprintf(ready_fd, "error write %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (chdir("/") < 0)
        diag("chdir /: %s", strerror(errno));

    if (write_all(ready_fd, "ready\n", 6) < 0)
        diag("write ready: %s", strerror(errno));
    close(ready_fd);

    int rc = serve();
    unlink(sock_path);
    return rc;
}
