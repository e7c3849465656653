/* str — see str.h. */
#include "str.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cd_str_dup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p != NULL)
        memcpy(p, s, n + 1);
    return p;
}

char *cd_str_ndup(const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cd_str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = malloc((size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t cd_str_copy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size == 0)
        return n;
    size_t c = n < size - 1 ? n : size - 1;
    memcpy(dst, src, c);
    dst[c] = '\0';
    return n;
}

int cd_str_to_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (end == s || *end != '\0')
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

int cd_str_to_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (end == s || *end != '\0')
        return -EINVAL;
    *out = (uint64_t)v;
    return 0;
}

int cd_str_to_int(const char *s, int min, int max, int *out)
{
    int64_t v;
    int rc = cd_str_to_i64(s, &v);
    if (rc < 0)
        return rc;
    if (v < min || v > max)
        return -ERANGE;
    *out = (int)v;
    return 0;
}

int cd_str_to_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno == ERANGE || !isfinite(v))
        return -ERANGE;
    if (end == s || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

bool cd_str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool cd_str_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool cd_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

int cd_str_replace(char **p, const char *s)
{
    char *c = NULL;
    if (s != NULL) {
        c = cd_str_dup(s);
        if (c == NULL)
            return -ENOMEM;
    }
    free(*p);
    *p = c;
    return 0;
}
