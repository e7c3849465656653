/*
 * fleet — starting and stopping the Go test fleet (tests/fleet, $CD_FLEET) from a test, and
 * plain clients for its two protocols: a gops command over a blocking socket, an HTTP GET with
 * libcurl's easy API. Test-only code; single-threaded unless a test gives each thread its own
 * fleet or port.
 */
#ifndef CDT_FLEET_H
#define CDT_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Replies larger than this make cdt_gops_cmd and cdt_http_get fail with -EFBIG (the biggest
 * honest answer is the fleet's own executable, about 8 MiB, or a dump of 100k leaked goroutines).
 */
#define CDT_FLEET_MAX_REPLY ((size_t)256 << 20)

/* One target as listed in the fleet's -list file. gops_port is 0 with -no-gops. */
struct cdt_fleet_target {
    int pid;
    int pprof_port;
    int gops_port;
    char workload[32];
    char hostile[32];
};

struct cdt_fleet {
    pid_t pid;      /* the fleet process (launcher or single target) */
    char *dir;      /* private temp dir: list file, gops dir, log */
    char *gops_dir; /* the port-file directory passed with -gops-dir */
    struct cdt_fleet_target *targets;
    size_t n;
};

/* Starts $CD_FLEET with args (NULL-terminated array, e.g. {"-workload","cpu",NULL}) plus -list and
 * -gops-dir in a fresh temp dir, waits (polling with cdt_wait_until, deadline timeout_ms) for the
 * list file, parses it (jansson). Returns 0, or a negative errno with a cmocka-visible message
 * (and the fleet's log); on failure nothing is left running and *f is zeroed. The fleet's output
 * goes to <dir>/fleet.log. The fleet gets SIGTERM if the thread that started it ends (so a test
 * that crashes leaves nothing running): start fleets from the main thread. */
int cdt_fleet_start(struct cdt_fleet *f, const char *const args[], int timeout_ms);
/* SIGTERM, wait (SIGKILL after a few seconds), SIGKILL whatever is left in the fleet's process
 * group, remove the temp dir, free everything. NULL-safe, idempotent. A test that reaps the fleet
 * process itself sets f->pid = 0 first. */
void cdt_fleet_stop(struct cdt_fleet *f);

/* Test helpers built on plain blocking sockets (fine in tests): send one gops command byte to
 * 127.0.0.1:port and read to EOF within timeout_ms; HTTP GET http://127.0.0.1:port<path> (libcurl
 * easy API) returning status and body. Outputs malloc'd (NUL-terminated, the NUL not counted),
 * written only on success. Errors: -ETIMEDOUT (deadline passed), -ECONNREFUSED, -ECONNRESET,
 * -EFBIG (over CDT_FLEET_MAX_REPLY), -EPROTO (any other HTTP failure). For 0x10 (SetGCPercent,
 * which needs its varint) use cdt_gops_setgc. */
int cdt_gops_cmd(int port, int cmd, uint8_t **out, size_t *len, int timeout_ms);
int cdt_http_get(int port, const char *path_and_query, int *status, uint8_t **body, size_t *len,
                 int timeout_ms);

/* Sends the request bytes as they are and reads until EOF, the deadline, an error or max bytes.
 * Unlike cdt_gops_cmd, *out and *len are ALWAYS set (what arrived, possibly nothing: free *out),
 * so a test can look at a partial or missing answer. Returns 0 at EOF, -EFBIG once max bytes
 * arrived (reading stops there), or the error. */
int cdt_gops_exchange(int port, const uint8_t *req, size_t req_len, size_t max, uint8_t **out,
                      size_t *len, int timeout_ms);
/* gops 0x10 with percent as a zig-zag varint, like the gops CLI. */
int cdt_gops_setgc(int port, int64_t percent, uint8_t **out, size_t *len, int timeout_ms);

/* What an HTTP GET saw, complete or not; for hostile targets. */
struct cdt_http_probe {
    int status;             /* 0 when no status line arrived */
    int64_t content_length; /* -1 when not declared */
    char content_type[128];
    bool x_go_pprof;   /* the answer had "X-Go-Pprof: 1" */
    size_t bytes;      /* body bytes received */
    uint8_t head[256]; /* the first of them */
    bool stopped;      /* stop_after bytes arrived and the transfer was cut there */
    int64_t elapsed_ms;
    char error[256]; /* libcurl's message on failure */
};
/* GET with a deadline, counting the body instead of keeping it, stopping after stop_after bytes
 * (0 = no limit). Always fills *p. Returns 0 when the answer was complete or stopped, else the
 * error as for cdt_http_get. */
int cdt_http_probe(int port, const char *path_and_query, size_t stop_after, int timeout_ms,
                   struct cdt_http_probe *p);

/* The state letter and parent pid of a process, from /proc/<pid>/stat; 0 or a negative errno. */
int cdt_proc_stat(int pid, char *state, int *ppid);
/* True when pid has no /proc entry or is a zombie (it ran to its end but nobody reaped it). */
bool cdt_pid_gone(int pid);

#endif
