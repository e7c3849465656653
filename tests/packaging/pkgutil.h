/*
 * pkgutil — what the packaging tests share: playing systemd's part around a collectord process
 * (a notify socket that records every datagram with its sender's pid, a journal-like stderr,
 * listening sockets handed over as LISTEN_FDS), starting processes with a chosen environment and
 * file descriptors, running shell commands with their output captured, and waiting for lines in
 * a log file. Test-only; single-threaded.
 */
#ifndef PKGUTIL_H
#define PKGUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- the sd_notify protocol, systemd's side ------------------------------------------------ */

struct pk_notify {
    int fd;
    char *path; /* the socket: $NOTIFY_SOCKET for the child */
    char **msgs;
    pid_t *pids; /* sender of each message (SCM_CREDENTIALS), 0 when it sent none */
    size_t n, cap;
};

/* Binds an AF_UNIX datagram socket at dir/notify (mode 0777 like systemd's, so a service running
 * as another user can send to it) with SO_PASSCRED on. */
void pk_notify_open(struct pk_notify *nt, const char *dir);
void pk_notify_close(struct pk_notify *nt);
/* Reads what has arrived, waiting until a message sent by `from_pid` (0 = anyone) at index >=
 * start holds the line `line` (e.g. "READY=1"), timeout_ms passes, or from_pid exits. Returns the
 * message's index, or -1. */
int pk_notify_wait(struct pk_notify *nt, const char *line, size_t start, pid_t from_pid,
                   int timeout_ms);
/* Messages (index >= start) holding `line`. */
size_t pk_notify_count(const struct pk_notify *nt, const char *line, size_t start);
/* The value of "KEY=" in message i, malloc'd, or NULL. */
char *pk_notify_value(const struct pk_notify *nt, size_t i, const char *key);
/* Prints every message (for failure messages). */
void pk_notify_dump(const struct pk_notify *nt);

/* ---- processes ------------------------------------------------------------------------------ */

/* Starts argv[0] (PATH searched) in its own process group with stdin /dev/null, stdout and stderr
 * on out_fd (inherited when -1), `listen_fd` as fd 3 when >= 0, and the environment of this
 * process with the NAME=VALUE strings of env_set (NULL-terminated, may be NULL) added or replaced
 * and the names in env_unset removed. */
pid_t pk_spawn(char *const argv[], const char *const env_set[], const char *const env_unset[],
               int out_fd, int listen_fd);
/* Waits up to timeout_ms for pid to exit; returns its wait status, or -1 when it is still running
 * (it is left running). */
int pk_wait(pid_t pid, int timeout_ms);
/* SIGKILL and reap, when pid > 0. */
void pk_kill(pid_t pid);

/* Runs `/bin/sh -c CMD` with stdout and stderr captured together into *out (malloc'd,
 * NUL-terminated; pass NULL to print it instead). Returns the exit status, 128+signal when killed,
 * or -1 after timeout_ms (then it is killed). */
int pk_sh(char **out, int timeout_ms, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- logs ------------------------------------------------------------------------------------ */

/* "DEV:INODE" of an open file, as systemd puts it into $JOURNAL_STREAM. */
void pk_journal_stream(int fd, char *out, size_t size);
/* Polls the file until a line contains `needle` or timeout_ms passes; true when found. */
bool pk_log_wait(const char *path, const char *needle, int timeout_ms);
/* Prints the last `lines` lines of a file. */
void pk_log_tail(const char *path, int lines);

/* A fresh directory with the given mode, malloc'd path, under parent ("/run" for a directory a
 * hardened service can still see; NULL for $TMPDIR or /tmp). */
char *pk_mkdtemp(const char *parent, const char *tag, mode_t mode);

#endif
