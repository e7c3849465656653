/*
 * err — error detail carried next to a status code.
 *
 * Functions that can fail return 0 or a negative errno-style code and, when given a struct cd_err,
 * describe the failure in it. The first error recorded wins: callers add context with
 * cd_err_prefix() on the way up instead of overwriting the root cause. Any thread; owns nothing.
 */
#ifndef CD_ERR_H
#define CD_ERR_H

#include <stddef.h>

#define CD_ERR_MSG_MAX 512

struct cd_err {
    int code;                 /* negative errno-style code; 0 = no error recorded */
    char msg[CD_ERR_MSG_MAX]; /* human-readable, no trailing newline */
};

void cd_err_init(struct cd_err *err);

/* Records code and message unless an error is already recorded; returns code either way, so
 * `return cd_err_set(err, -EINVAL, "...")` reads naturally. err may be NULL. */
int cd_err_set(struct cd_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to a recorded message (no-op when none is recorded). */
void cd_err_prefix(struct cd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message, or strerror(-code) when the code came without one. */
const char *cd_err_msg(const struct cd_err *err);

/* Copies src into dst (dst's own record wins, as always). */
void cd_err_copy(struct cd_err *dst, const struct cd_err *src);

#endif
