/*
 * e2e — helpers shared by the end-to-end tests: the real collectord (tests/lib/daemon.h) on a
 * private config, database and socket, scraping the Go fleet (tests/lib/fleet.h), driven by the
 * real collectorctl. What lives here is what several test programs need: JSON look-ups, polling
 * predicates, running a program with both output streams captured, fetching a snapshot's bytes
 * and hashing them, reading the database file directly (read-only, as an outsider would) and
 * plain HTTP over the query socket. Test-only code; single-threaded.
 */
#ifndef CD_E2E_H
#define CD_E2E_H

#include "cdtest.h"
#include "daemon.h"
#include "fleet.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define E2E_SHA_HEX 65

/* ---- JSON ---------------------------------------------------------------------------------- */

/* Member k as an integer (def when absent or not an integer). */
int64_t e2e_jint(const json_t *o, const char *k, int64_t def);
/* Member k as a string, or NULL. */
const char *e2e_jstr(const json_t *o, const char *k);
/* labels[name] of a TARGET or SNAPSHOT object, or NULL. */
const char *e2e_label(const json_t *o, const char *name);

/* The targets of `collectorctl -o json list` (borrowed from j). */
const json_t *e2e_targets(const json_t *list);
/* The target with this scheme and label value (e.g. "http", "workload", "deadlock"). */
const json_t *e2e_find_target(const json_t *list, const char *scheme, const char *label,
                              const char *value);
/* The kind entry of a TARGET, or NULL. */
const json_t *e2e_target_kind(const json_t *target, const char *kind);

/* Every snapshot of the daemon, newest first, as one JSON array (follows cursors; at most
 * max_pages pages of 1000). extra: more `snapshots` arguments (NULL-terminated) or NULL. Fails
 * the test when collectorctl fails. */
json_t *e2e_snapshots(struct cdt_daemon *d, const char *const extra[], int max_pages);

/* ---- processes ------------------------------------------------------------------------------ */

/* Runs argv within timeout_ms with stdout and stderr captured separately (each malloc'd,
 * NUL-terminated; pass NULL to drop one). Returns the exit status, 128+signal, or -ETIMEDOUT
 * (the program is killed). env: extra "NAME=value" entries (NULL-terminated) or NULL. */
int e2e_run(char *const argv[], char *const env[], char **out, char **err, int timeout_ms);

/* collectorctl -s socket ARGS with both streams captured (see e2e_run). */
int e2e_ctl(struct cdt_daemon *d, char **out, char **err, int timeout_ms, const char *const args[]);

/* Spawns collectord -c config (extra args NULL-terminated) WITHOUT waiting for the socket; for
 * starts that are expected to fail. Returns its exit status within timeout_ms, or -ETIMEDOUT
 * (it is then killed). Output goes to the daemon's log. */
int e2e_daemon_run_to_exit(struct cdt_daemon *d, const char *const extra[], int timeout_ms);

/* True when the daemon's log contains needle. */
bool e2e_log_contains(const struct cdt_daemon *d, const char *needle);
/* Polls the log until it contains needle; fails the test (printing the log) on timeout. */
void e2e_wait_log(const struct cdt_daemon *d, const char *needle, int timeout_ms);

/* SIGTERM to a running daemon and its wait status in *status (0 when it was not running); true
 * when it exited 0, else the tail of its log is printed for the failure message. */
bool e2e_stop_clean(struct cdt_daemon *d, int timeout_ms, int *status);

/* ---- bytes ---------------------------------------------------------------------------------- */

/* SHA-256 of data as lower-case hex. */
void e2e_sha_hex(const uint8_t *data, size_t len, char hex[E2E_SHA_HEX]);

/* `collectorctl fetch ID -o dir/file`: the bytes (malloc'd) and their length. Fails the test
 * when collectorctl fails. */
void e2e_fetch(struct cdt_daemon *d, int64_t id, uint8_t **data, size_t *len);

/* ---- the database, read directly --------------------------------------------------------------
 */

/* The daemon's database opened read-only with sqlite3 (as an operator's sqlite3 would); fails
 * the test when it cannot be opened. */
sqlite3 *e2e_db_open(const char *db_path);
void e2e_db_close(sqlite3 *db);

/* PRAGMA integrity_check; fails the test unless it answers "ok". */
void e2e_db_integrity(sqlite3 *db);

/* What the database holds for snapshot id: 1 when the row exists (with *hex the SHA-256 of its
 * stored bytes after decompression, "" when it kept none, and *len their length), 0 when no
 * such row. */
int e2e_db_snapshot(sqlite3 *db, int64_t id, char hex[E2E_SHA_HEX], size_t *len);

/* ---- HTTP on the query socket --------------------------------------------------------------- */

/* GET path on the daemon's Unix socket with libcurl; the status and body (malloc'd,
 * NUL-terminated). Fails the test on a transport error. */
void e2e_api_get(struct cdt_daemon *d, const char *path, long *status, char **body);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int e2e_free_port(void);

/* A xorshift generator: seeded from the pid and the time (the seed is printed, so a failing run
 * can be told apart), then integers in [lo, hi]. */
void e2e_rand_init(uint64_t *state);
int e2e_rand_between(uint64_t *state, int lo, int hi);

#endif
