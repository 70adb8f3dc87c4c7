"""cffi (API mode, out-of-line) build of servin._native: thin syscall wrappers, the json-file
log renderer behind `docker logs`, the v2 device filter and the seccomp compiler (libseccomp).

Every syscall wrapper returns 0 or -errno; servin/kernel/mounts.py turns that into OSError.
"""

from pathlib import Path

from cffi import FFI

ffibuilder = FFI()

# docker logs: json-file lines {"log":"...","stream":"...","time":"..."} (keys in any order, as the
# shim and Docker write them) -> stdcopy frames (or bare payloads for a Tty container), the payload
# prefixed by "<time> " with timestamps. flags: 1 stdout, 2 stderr, 4 tty, 8 timestamps.
# Consumes whole lines only; returns the bytes consumed. *stopped: 0 all complete lines done (or
# out of room), 1 the next line is not in that simple shape (the caller parses it with json),
# 2 the input holds no complete line. A line whose \u escapes do not make bytes back (a lone
# surrogate outside U+DC80..U+DCFF) is skipped, as the Python reader skips it.
# cgroup v2 has no devices controller: device access is an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
# attached to the container's cgroup. rules: nrules x 5 ints (allow, type 0=any 'b' 'c', major or -1,
# minor or -1, access bits mknod 1 | read 2 | write 4), in order, the last matching rule deciding
# (as the v1 devices list does); no match: denied. Returns 0 or -errno (the verifier's log in `log`).
DEVICE_FILTER = r"""
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <sys/syscall.h>

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int servin_device_filter(int cgroup_fd, const int *rules, size_t nrules, char *log, size_t logsz)
{
    struct bpf_insn *p = calloc(8 + nrules * 8 + 2, sizeof *p);
    if (!p) return -ENOMEM;
    int n = 0;
    /* r2 = access_type; r3 = type (low 16 bits); r4 = access (high 16); r5 = major; r6 = minor */
    p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0);
    p[n++] = INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
    p[n++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_3, 0, 0, 0xFFFF);
    p[n++] = INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
    p[n++] = INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_4, 0, 0, 16);
    p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 4, 0);
    p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_6, BPF_REG_1, 8, 0);
    int falls_through = 1;
    for (size_t k = nrules; k-- > 0;) {  /* the last rule first: the first match decides */
        const int *r = rules + 5 * k;
        int jumps[4], nj = 0;  /* the checks that skip to the next rule: patched once its start is known */
        if (r[1]) {
            jumps[nj++] = n;
            p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_3, 0, 0,
                          r[1] == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
        }
        if ((r[4] & 7) != 7) {  /* every access asked for must be in the rule's */
            p[n++] = INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_7, BPF_REG_4, 0, 0);
            p[n++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_7, 0, 0, ~r[4] & 7);
            jumps[nj++] = n;
            p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_7, 0, 0, 0);
        }
        if (r[2] >= 0) { jumps[nj++] = n; p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, r[2]); }
        if (r[3] >= 0) { jumps[nj++] = n; p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_6, 0, 0, r[3]); }
        p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r[0] ? 1 : 0);
        p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
        for (int j = 0; j < nj; j++)
            p[jumps[j]].off = (short)(n - jumps[j] - 1);
        if (nj == 0) {  /* a rule for every device: nothing after it is reached (the verifier refuses that) */
            falls_through = 0;
            break;
        }
    }
    if (falls_through) {  /* no rule matched: denied */
        p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
        p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }

    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insn_cnt = (unsigned)n;
    a.insns = (unsigned long)p;
    a.license = (unsigned long)"Apache";
    if (log && logsz) { a.log_level = 1; a.log_size = (unsigned)logsz; a.log_buf = (unsigned long)log; }
    int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
    int err = prog < 0 ? -errno : 0;
    free(p);
    if (prog < 0) return err;
    memset(&a, 0, sizeof a);
    a.target_fd = (unsigned)cgroup_fd;
    a.attach_bpf_fd = (unsigned)prog;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    int rc = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a);
    err = rc < 0 ? -errno : 0;
    close(prog);  /* the attachment holds the program */
    return err;
}
"""

# seccomp: a filter built with libseccomp from the runtime's rules and exported as classic BPF
# (struct sock_filter[]) to `fd`; the supervisor installs those bytes. A rule names its syscall (on
# the native architecture; one libseccomp does not know is skipped, as runc skips it), its action
# (SCMP_ACT_*; one equal to the default action is not added) and up to 6 argument comparisons.
# With `enosys`, runc's ENOSYS stub comes first (see enosys_stub). Returns 0 or -errno, `err`
# saying which step failed.
SECCOMP_EXPORT = r"""
#include <seccomp.h>
#include <stdio.h>
#include <linux/filter.h>

struct servin_seccomp_rule {
    const char *name;
    uint32_t action;
    unsigned int ncmp;
    struct scmp_arg_cmp cmp[6];
};

static uint32_t servin_scmp_act_errno(uint32_t e) { return SCMP_ACT_ERRNO(e); }
static uint32_t servin_scmp_act_trace(uint32_t e) { return SCMP_ACT_TRACE(e); }

#define X32_BIT 0x40000000U
#define STUB_MAX 64

/* What runc's patchbpf does (libcontainer/seccomp/patchbpf), laid out forwards: a syscall numbered
   above every syscall the profile names, for its architecture (x32 apart), is newer than the
   profile, so it answers ENOSYS (callers fall back as on an older kernel) rather than the default
   action. Jumps to the filter proper ("main", right after the stub) are `ja`; the rest are short. */
static size_t enosys_stub(const uint32_t *arches, size_t narches, const struct servin_seccomp_rule *rules,
                          size_t nrules, struct sock_filter *p)
{
    uint32_t audit[8], max64[8], max32[8], maxn[8];
    size_t ng = 0;
    for (size_t a = 0; a < narches; a++) {
        uint32_t top = 0;
        for (size_t i = 0; i < nrules; i++) {
            int nr = seccomp_syscall_resolve_name_arch(arches[a], rules[i].name);
            if (nr > 0 && (uint32_t)nr > top)
                top = (uint32_t)nr;
        }
        if (!top)
            continue;
        int x32 = arches[a] == SCMP_ARCH_X32;
        uint32_t au = x32 ? SCMP_ARCH_X86_64 : arches[a];
        size_t g = 0;
        while (g < ng && audit[g] != au)
            g++;
        if (g == ng) {
            if (ng == 8) continue;
            audit[g] = au; max64[g] = max32[g] = maxn[g] = 0; ng++;
        }
        if (au != SCMP_ARCH_X86_64) maxn[g] = top;
        else if (x32) max32[g] = top;
        else max64[g] = top;
    }
    if (!ng)
        return 0;
    size_t n = 0, to_main[STUB_MAX], nmain = 0, to_enosys[STUB_MAX], nenosys = 0, start[8];
#define EMIT(c, jt, jf, k) (p[n] = (struct sock_filter){(c), (jt), (jf), (k)}, n++)
#define JA_MAIN() (to_main[nmain++] = n, EMIT(BPF_JMP | BPF_JA, 0, 0, 0))
#define JGT_ENOSYS(v) (to_enosys[nenosys++] = n, EMIT(BPF_JMP | BPF_JGT | BPF_K, 0, 0, (v)))
    EMIT(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4);  /* seccomp_data.arch */
    for (size_t g = 0; g < ng; g++)
        EMIT(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, audit[g]);  /* jt patched below */
    JA_MAIN();  /* another architecture: the filter's bad-arch action */
    for (size_t g = 0; g < ng; g++) {
        start[g] = n;
        EMIT(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0);  /* seccomp_data.nr */
        if (audit[g] == SCMP_ARCH_X86_64) {
            size_t jset = n;
            EMIT(BPF_JMP | BPF_JSET | BPF_K, 0, 0, X32_BIT);
            if (max64[g]) JGT_ENOSYS(max64[g]);
            JA_MAIN();
            p[jset].jt = (uint8_t)(n - jset - 1);
            if (max32[g]) JGT_ENOSYS(max32[g]);
            JA_MAIN();
        } else {
            JGT_ENOSYS(maxn[g]);
            JA_MAIN();
        }
    }
    size_t enosys = n;
    EMIT(BPF_RET | BPF_K, 0, 0, SCMP_ACT_ERRNO(ENOSYS));
    for (size_t g = 0; g < ng; g++)
        p[1 + g].jt = (uint8_t)(start[g] - (1 + g) - 1);
    for (size_t i = 0; i < nenosys; i++)
        p[to_enosys[i]].jt = (uint8_t)(enosys - to_enosys[i] - 1);
    for (size_t i = 0; i < nmain; i++)
        p[to_main[i]].k = (uint32_t)(n - to_main[i] - 1);
#undef EMIT
#undef JA_MAIN
#undef JGT_ENOSYS
    return n;
}

static int servin_seccomp_export(uint32_t def_action, const char *const *arches, size_t narches,
                                 const struct servin_seccomp_rule *rules, size_t nrules, int enosys, int fd,
                                 char *err, size_t errn)
{
    uint32_t tokens[9];
    size_t ntokens = 0;
    tokens[ntokens++] = seccomp_arch_native();
    scmp_filter_ctx ctx = seccomp_init(def_action);
    if (!ctx) { snprintf(err, errn, "seccomp_init"); return -EINVAL; }
    int rc = 0;
    for (size_t i = 0; i < narches && rc == 0; i++) {
        uint32_t a = seccomp_arch_resolve_name(arches[i]);
        if (!a) { snprintf(err, errn, "unknown architecture %s", arches[i]); rc = -EINVAL; break; }
        if (a != tokens[0] && ntokens < 9)
            tokens[ntokens++] = a;
        rc = seccomp_arch_add(ctx, a);
        if (rc == -EEXIST) rc = 0;  /* the native one is there already */
        if (rc) snprintf(err, errn, "add architecture %s", arches[i]);
    }
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
    if (rc == 0 && nrules > 32)  /* a binary tree of syscall numbers, as runc asks for long lists */
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
    for (size_t i = 0; i < nrules && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(rules[i].name);
        if (nr == __NR_SCMP_ERROR || rules[i].action == def_action)
            continue;
        rc = seccomp_rule_add_array(ctx, rules[i].action, nr, rules[i].ncmp, rules[i].ncmp ? rules[i].cmp : NULL);
        if (rc) snprintf(err, errn, "add the rule for syscall %s", rules[i].name);
    }
    if (rc == 0 && enosys) {
        struct sock_filter stub[STUB_MAX];
        size_t n = enosys_stub(tokens, ntokens, rules, nrules, stub);
        if (n && write(fd, stub, n * sizeof *stub) != (ssize_t)(n * sizeof *stub)) {
            rc = -errno;
            snprintf(err, errn, "write the ENOSYS stub");
        }
    }
    if (rc == 0) {
        rc = seccomp_export_bpf(ctx, fd);
        if (rc) snprintf(err, errn, "export the program");
    }
    seccomp_release(ctx);
    return rc;
}
"""

RENDER_LOG = r"""
#include <string.h>
#include <stdint.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, const char *e, uint32_t *v)
{
    if (e - s < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0) return -1;
        x = x << 4 | (uint32_t)h;
    }
    *v = x;
    return 0;
}

/* the end of a JSON string body starting at s (just after the opening quote), or NULL */
static const char *str_end(const char *s, const char *e)
{
    while (s < e) {
        if (*s == '\\') { s += 2; continue; }
        if (*s == '"') return s;
        s++;
    }
    return NULL;
}

/* unescape [s, e) to o; returns the end of the output, NULL for a bad escape (-1: skip the line) */
static char *unescape(const char *s, const char *e, char *o, int *skip)
{
    while (s < e) {
        char c = *s++;
        if (c != '\\') { *o++ = c; continue; }
        if (s >= e) return NULL;
        c = *s++;
        switch (c) {
        case '"': case '\\': case '/': *o++ = c; break;
        case 'b': *o++ = 8; break;
        case 'f': *o++ = 12; break;
        case 'n': *o++ = 10; break;
        case 'r': *o++ = 13; break;
        case 't': *o++ = 9; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(s, e, &cp)) return NULL;
            s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && e - s >= 6 && s[0] == '\\' && s[1] == 'u' && !hex4(s + 2, e, &lo)
                && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            } else if (cp >= 0xDC80 && cp <= 0xDCFF) {  /* surrogateescape: the byte itself */
                *o++ = (char)(cp & 0xFF);
                break;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                *skip = 1;
                return o;
            }
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
            else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
                *o++ = (char)(0x80 | (cp >> 6 & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: return NULL;
        }
    }
    return o;
}

static const char *ws(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
    return s;
}

/* one line [s, e) (without its newline): 1 rendered or skipped, 0 not in the simple shape */
static int render_line(const char *s, const char *e, char **po, int flags)
{
    const char *log = NULL, *log_end = NULL, *stream = NULL, *stream_end = NULL, *tm = NULL, *tm_end = NULL;
    s = ws(s, e);
    if (s >= e || *s++ != '{') return 0;
    for (;;) {
        s = ws(s, e);
        if (s < e && *s == '}') break;
        if (s >= e || *s++ != '"') return 0;
        const char *k = s, *ke = str_end(s, e);
        if (!ke) return 0;
        s = ws(ke + 1, e);
        if (s >= e || *s++ != ':') return 0;
        s = ws(s, e);
        if (s >= e || *s++ != '"') return 0;  /* only string values (Docker's attrs object: json) */
        const char *v = s, *ve = str_end(s, e);
        if (!ve) return 0;
        size_t kl = (size_t)(ke - k);
        if (kl == 3 && !memcmp(k, "log", 3)) { log = v; log_end = ve; }
        else if (kl == 6 && !memcmp(k, "stream", 6)) { stream = v; stream_end = ve; }
        else if (kl == 4 && !memcmp(k, "time", 4)) { tm = v; tm_end = ve; }
        s = ws(ve + 1, e);
        if (s < e && *s == ',') { s++; continue; }
        if (s < e && *s == '}') break;
        return 0;
    }
    if (!log || !stream || !tm) return 0;
    int kind;
    if (stream_end - stream == 6 && !memcmp(stream, "stdout", 6)) kind = 1;
    else if (stream_end - stream == 6 && !memcmp(stream, "stderr", 6)) kind = 2;
    else return 1;  /* neither: not shown */
    if (!(flags & kind)) return 1;
    char *o = *po, *start = o + ((flags & 4) ? 0 : 8), *p = start;
    int skip = 0;
    if (flags & 8) {
        char *q = unescape(tm, tm_end, p, &skip);
        if (!q) return 0;
        p = q;
        *p++ = ' ';
    }
    char *q = unescape(log, log_end, p, &skip);
    if (!q) return 0;
    if (skip) return 1;
    if (!(flags & 4)) {
        uint32_t len = (uint32_t)(q - start);
        o[0] = (char)kind; o[1] = o[2] = o[3] = 0;
        o[4] = (char)(len >> 24); o[5] = (char)(len >> 16); o[6] = (char)(len >> 8); o[7] = (char)len;
    }
    *po = q;
    return 1;
}

static size_t servin_render_log(const char *in, size_t n, char *out, size_t cap, size_t *outlen, int flags,
                                int *stopped)
{
    const char *s = in, *end = in + n;
    char *o = out, *oend = out + cap;
    *stopped = 0;
    if (!memchr(in, '\n', n)) { *stopped = 2; *outlen = 0; return 0; }
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) break;
        /* worst case out: header + the line itself (unescaping never grows it) */
        if ((size_t)(oend - o) < (size_t)(nl - s) + 16) break;
        if (!render_line(s, nl, &o, flags)) { *stopped = 1; break; }
        s = nl + 1;
    }
    *outlen = (size_t)(o - out);
    return (size_t)(s - in);
}
"""

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

    #include "inroot.h"  /* the supervisor's own resolution inside a root, for the cp/export helper */
    static int servin_inroot_resolve(int rootfd, const char *path, int make)
    {
        int fd = inroot_resolve(rootfd, path, (enum inroot_make)make);
        return fd < 0 ? -errno : fd;
    }
    """ + RENDER_LOG + DEVICE_FILTER + SECCOMP_EXPORT,
    include_dirs=[str(Path(__file__).resolve().parent)],
    libraries=["seccomp"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
