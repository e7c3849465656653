/*
 * textscan — small pieces shared by the text parsers (goroutine dumps, count profiles, heap text,
 * gops text) and the pprof summarizer: a line cursor over a byte span, whole-span number parsing,
 * the `#\t0x<pc>\t<func>+0x<off>\t<file>:<line>` frame comment of Go's debug=1 texts, and JSON
 * values built from untrusted bytes (invalid UTF-8 replaced, length capped) with allocation
 * failures folded into one return code.
 *
 * Pure functions over caller-owned memory; any thread; owns nothing.
 */
#ifndef CD_TEXTSCAN_H
#define CD_TEXTSCAN_H

#include "summary.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Strings from outside bytes are cut to this many bytes in summaries (then "..." is appended). */
#define CD_TEXTSCAN_JSON_STR_MAX 1024

struct cd_textscan {
    const char *p;   /* next unread byte */
    const char *end; /* one past the last byte */
    size_t line_no;  /* 1-based number of the line last returned */
};

void cd_textscan_init(struct cd_textscan *s, const void *data, size_t len);
/* The next line without its "\n" (and "\r\n"); false at the end of the data. A last line without
 * a newline is returned too. */
bool cd_textscan_line(struct cd_textscan *s, const char **line, size_t *len);
/* The next line without consuming it. */
bool cd_textscan_peek(const struct cd_textscan *s, const char **line, size_t *len);
/* Byte offset of the cursor from `base`. */
size_t cd_textscan_offset(const struct cd_textscan *s, const void *base);

/* Decimal digits only, the whole span, no overflow: -EINVAL / -ERANGE. */
int cd_textscan_u64(const char *p, size_t len, uint64_t *out);
/* An optional '-' then decimal digits. */
int cd_textscan_i64(const char *p, size_t len, int64_t *out);

bool cd_textscan_starts(const char *p, size_t len, const char *prefix);
/* Span without leading/trailing spaces and tabs. */
void cd_textscan_trim(const char **p, size_t *len);

/* A frame of a debug=1 text (count profiles, heap text): "#\t0x<pc>\t<func>+0x<off>\t<file>:<n>"
 * with runs of tabs between columns. An unsymbolized frame ("#\t0x<pc>") has an empty function.
 * Spans point into the line. */
struct cd_textscan_frame {
    uint64_t pc;
    const char *pc_text; /* "0x..." as written, for frames without a function */
    size_t pc_len;
    const char *func;
    size_t func_len;
    const char *file;
    size_t file_len;
    int64_t line; /* 0 when absent */
};
/* 0, or -EINVAL when the line is not a frame comment. */
int cd_textscan_frame(const char *line, size_t len, struct cd_textscan_frame *f);

/* A JSON string of untrusted bytes: invalid UTF-8 becomes U+FFFD, NUL becomes U+FFFD, anything
 * longer than CD_TEXTSCAN_JSON_STR_MAX is cut at a character boundary and ends in "...". NULL
 * only when out of memory. */
json_t *cd_textscan_json_str(const char *p, size_t len);

/* json_object_set_new / json_array_append_new that fail (-ENOMEM) on a NULL value, so a
 * summary builder can OR the results together and check once. The value is consumed. */
int cd_textscan_jset(json_t *obj, const char *key, json_t *val);
int cd_textscan_jpush(json_t *arr, json_t *val);

/* Parser glue. The limits to use: lim, or the defaults written into *dflt when lim is NULL. */
const struct cd_parse_limits *cd_textscan_limits(const struct cd_parse_limits *lim,
                                                 struct cd_parse_limits *dflt);
/* Hands a finished summary over: *json (consumed, NULLed) and sum's series become *out (whose old
 * contents are freed); sum is left empty. */
void cd_textscan_publish(struct cd_summary *out, struct cd_summary *sum, enum cd_format fmt,
                         json_t **json);

/* Adds x to *acc, saturating at INT64_MIN/INT64_MAX instead of overflowing (hot in pprof's
 * sample loop, hence inline). */
static inline void cd_textscan_add_sat(int64_t *acc, int64_t x)
{
    int64_t r;
    if (__builtin_add_overflow(*acc, x, &r))
        r = x > 0 ? INT64_MAX : INT64_MIN;
    *acc = r;
}

#endif
