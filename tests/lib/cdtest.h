/*
 * cdtest — helpers shared by collectord's test programs (cmocka): shared test data, temporary
 * directories, files, child processes, and waiting for a condition with a deadline (never a blind
 * sleep). Test-only code; single-threaded.
 */
#ifndef CDTEST_H
#define CDTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

/* ../shared (CD_SHARED_DIR), or NULL when this checkout has none. */
const char *cdt_shared_dir(void);
/* Skips the current cmocka test when ../shared is absent. */
#define CDT_REQUIRE_SHARED()                                                                       \
    do {                                                                                           \
        if (cdt_shared_dir() == NULL) {                                                            \
            print_message("skipped: ../shared/testdata is not here\n");                            \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* An environment variable set by ctest (CD_FLEET, CD_COLLECTORD, CD_COLLECTORCTL, CD_GO,
 * CD_SOURCE_DIR, CD_BUILD_DIR); fails the test when unset. */
const char *cdt_env(const char *name);

/* malloc'd "a/b". */
char *cdt_path(const char *dir, const char *name);

int cdt_read_file(const char *path, uint8_t **data, size_t *len);
int cdt_write_file(const char *path, const void *data, size_t len);

/* A fresh directory under $TMPDIR (or /tmp), malloc'd path; cdt_rmrf removes it. */
char *cdt_tmpdir(const char *tag);
void cdt_rmrf(const char *path);

/* Polls cond every few milliseconds until it returns true (returns 0) or timeout_ms passes
 * (returns -ETIMEDOUT). */
int cdt_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms);

/* Starts argv[0] with stdout and stderr appended to log_path (or inherited when NULL). */
pid_t cdt_spawn(char *const argv[], const char *log_path);
/* Runs argv to completion within timeout_ms, capturing stdout into *out (malloc'd, NUL-terminated,
 * may be NULL) and returning the exit status (or -ETIMEDOUT after killing it). stderr goes to ours.
 */
int cdt_run(char *const argv[], char **out, int timeout_ms);
/* Sends sig, waits up to timeout_ms, then SIGKILLs; returns the wait status. */
int cdt_stop(pid_t pid, int sig, int timeout_ms);

/* Monotonic milliseconds. */
int64_t cdt_now_ms(void);

#endif
