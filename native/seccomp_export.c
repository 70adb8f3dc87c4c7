/* seccomp_export.c: a seccomp profile compiled with libseccomp to classic BPF, for servin._native
   (see servin_native.h); the supervisor installs the bytes it writes. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <linux/filter.h>
#include <seccomp.h>

#include "servin_native.h"

uint32_t servin_scmp_act_errno(uint32_t e) { return SCMP_ACT_ERRNO(e); }
uint32_t servin_scmp_act_trace(uint32_t e) { return SCMP_ACT_TRACE(e); }

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

int servin_seccomp_export(uint32_t def_action, const char *const *arches, size_t narches,
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
