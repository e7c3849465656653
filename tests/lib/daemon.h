/*
 * daemon (tests) — runs the real collectord for end-to-end tests: a private directory with its
 * config, database, socket and log; start, wait until the query socket answers, drive it with
 * the real collectorctl, stop it with any signal. Test-only; single-threaded.
 */
#ifndef CDT_DAEMON_H
#define CDT_DAEMON_H

#include "fleet.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct cdt_daemon {
    pid_t pid;     /* 0 when not running */
    char *dir;     /* private temp dir */
    char *config;  /* dir/collectord.yaml */
    char *db;      /* dir/collectord.db */
    char *socket;  /* dir/collectord.sock */
    char *log;     /* dir/collectord.log (stdout and stderr, appended across restarts) */
    char *targets; /* dir/targets.json: a file_sd file the config may point at */
};

/* A fresh directory; nothing started yet. */
void cdt_daemon_init(struct cdt_daemon *d, const char *tag);

/*
 * Writes the config: `yaml` with every "@DIR@" replaced by the private directory, so a test can
 * write `path: @DIR@/collectord.db`. When yaml has no storage/query section the defaults of
 * cdt_daemon_default_config() are NOT added: pass a complete file.
 */
void cdt_daemon_write_config(struct cdt_daemon *d, const char *yaml);

/* A complete config for tests: storage and socket in the directory, one job "fleet" reading
 * dir/targets.json with the given interval, plus `extra_job_yaml` appended to that job (e.g.
 * its profiling_config), malloc'd. */
char *cdt_daemon_default_config(const char *interval, const char *extra_job_yaml);

/* Writes dir/targets.json: every fleet target's pprof address ("127.0.0.1:P") and, unless
 * with_gops is false, its gops agent ("gops://127.0.0.1:G"), labelled job and workload. */
void cdt_daemon_write_targets(struct cdt_daemon *d, const struct cdt_fleet *f, bool with_gops);

/* Starts collectord -c config (extra args NULL-terminated, may be NULL) and waits until
 * `collectorctl status` answers; fails the test on timeout, printing the log's tail. */
void cdt_daemon_start(struct cdt_daemon *d, const char *const extra[], int timeout_ms);

/* Sends sig and waits up to timeout_ms (SIGKILL after it); returns the wait status. */
int cdt_daemon_stop(struct cdt_daemon *d, int sig, int timeout_ms);

/* Stops it if running (SIGKILL), removes the directory, frees. */
void cdt_daemon_cleanup(struct cdt_daemon *d);

/* Runs collectorctl -s socket args... (NULL-terminated) within timeout_ms; returns its exit
 * status and its stdout in *out (malloc'd, may be NULL). */
int cdt_ctl(struct cdt_daemon *d, char **out, int timeout_ms, const char *const args[]);
/* The same with -o json; the parsed output (NULL when not JSON or on failure). */
json_t *cdt_ctl_json(struct cdt_daemon *d, int timeout_ms, const char *const args[]);

/* Polls `collectorctl -o json ARGS` until pred(json, ctx) holds or timeout; returns the last
 * answer that satisfied it (caller frees) or NULL on timeout. */
json_t *cdt_ctl_wait(struct cdt_daemon *d, const char *const args[],
                     bool (*pred)(const json_t *j, void *ctx), void *ctx, int timeout_ms);

/* Prints the last `lines` lines of the daemon's log (for failure messages). */
void cdt_daemon_print_log(const struct cdt_daemon *d, int lines);

/* The daemon's resident set size in KiB (VmRSS), or -1. */
long cdt_daemon_rss_kib(const struct cdt_daemon *d);

#endif
