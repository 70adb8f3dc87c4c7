/*
 * servin-init: a tiny init for containers started with --init (mounted at /sbin/docker-init).
 *
 * Usage:  docker-init [--] command [args...]
 *
 * Runs as pid 1 of the container: forks the command, forwards every catchable signal it receives
 * to the command, reaps every zombie re-parented to it, and exits with the command's status
 * (its exit code, or 128 + the signal that killed it) once the command has exited.
 *
 * The command gets its own process group; when stdin is a terminal that group is made the
 * terminal's foreground group, so ^C and job-control signals reach it directly.
 * Signals are taken synchronously (sigtimedwait) with everything but the synchronous fault
 * signals blocked: a pid-namespace init only receives signals it does not leave at SIG_DFL, and
 * blocked signals count as wanted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int SYNCHRONOUS[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU};

static int status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && !strcmp(argv[1], "--"))
        first = 2;
    if (first >= argc) {
        fprintf(stderr, "usage: %s [--] command [args...]\n", argv[0]);
        return 2;
    }

    sigset_t wanted, old;
    sigfillset(&wanted);
    for (size_t i = 0; i < sizeof SYNCHRONOUS / sizeof SYNCHRONOUS[0]; i++)
        sigdelset(&wanted, SYNCHRONOUS[i]);
    if (sigprocmask(SIG_SETMASK, &wanted, &old) < 0) {
        perror("docker-init: sigprocmask");
        return 1;
    }
    /* background process groups writing to or configuring the tty: do not stop the init */
    signal(SIGTTIN, SIG_IGN);
    signal(SIGTTOU, SIG_IGN);

    /* when not pid 1 (no pid namespace), orphans of the command still come to us */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    pid_t child = fork();
    if (child < 0) {
        perror("docker-init: fork");
        return 1;
    }
    if (child == 0) {
        setpgid(0, 0);
        if (isatty(STDIN_FILENO))
            tcsetpgrp(STDIN_FILENO, getpgrp()); /* SIGTTOU is ignored here */
        signal(SIGTTIN, SIG_DFL);
        signal(SIGTTOU, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], argv + first);
        int e = errno;
        fprintf(stderr, "docker-init: exec %s: %s\n", argv[first], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    setpgid(child, child); /* also from here: no race with signals sent before the child ran */

    int code = -1;
    for (;;) {
        siginfo_t si;
        struct timespec ts = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(&wanted, &si, &ts);
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            perror("docker-init: sigtimedwait");
            return 1;
        }
        if (sig > 0 && sig != SIGCHLD) {
            if (kill(child, sig) < 0 && errno != ESRCH)
                perror("docker-init: forward signal");
            continue;
        }
        /* SIGCHLD or the periodic wake-up: reap everything that has exited */
        for (;;) {
            int st;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p <= 0)
                break;
            if (p == child)
                code = status_code(st);
        }
        if (code >= 0)
            return code;
    }
}
