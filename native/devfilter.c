/* devfilter.c: the cgroup v2 device filter of servin._native (see servin_native.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <sys/syscall.h>

#include "servin_native.h"

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

int servin_device_filter(int cgroup_fd, const int *rules, size_t nrules, char *log, size_t logsz)
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
