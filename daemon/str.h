/*
 * str — small string helpers that replace the unsafe or sloppy libc ones (strcpy, atoi, ...).
 * Pure functions; any thread.
 */
#ifndef CD_STR_H
#define CD_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* strdup/strndup that accept NULL (returning NULL) and never truncate silently. */
char *cd_str_dup(const char *s);
char *cd_str_ndup(const char *s, size_t n);

/* malloc'd printf. NULL on failure. */
char *cd_str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies with truncation and always terminates; returns strlen(src) (>= size means truncated). */
size_t cd_str_copy(char *dst, const char *src, size_t size);

/* Whole-string integer parsing: no sign where unsigned, no trailing junk, no overflow. */
int cd_str_to_i64(const char *s, int64_t *out);
int cd_str_to_u64(const char *s, uint64_t *out);
int cd_str_to_int(const char *s, int min, int max, int *out);
int cd_str_to_double(const char *s, double *out);

bool cd_str_has_prefix(const char *s, const char *prefix);
bool cd_str_has_suffix(const char *s, const char *suffix);
bool cd_str_eq(const char *a, const char *b); /* NULL-safe */

/* Frees *p and sets it to a copy of s (NULL allowed). -ENOMEM. */
int cd_str_replace(char **p, const char *s);

#endif
