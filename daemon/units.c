/* units — see units.h. */
#include "units.h"

#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    int64_t ms;
} duration_units[] = {
    /* order matters for matching: "ms" before "m" */
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 3600 * 1000},
    {"d", 24LL * 3600 * 1000},
    {"w", 7LL * 24 * 3600 * 1000},
    {"y", 365LL * 24 * 3600 * 1000},
};

int cd_units_parse_duration(const char *s, int64_t *ms)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    int64_t total = 0;
    int64_t last_unit = INT64_MAX;
    const char *p = s;
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10)
                return -ERANGE;
            n = n * 10 + (*p - '0');
            p++;
        }
        int64_t unit = 0;
        size_t ulen = 0;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            size_t l = strlen(duration_units[i].name);
            if (strncmp(p, duration_units[i].name, l) == 0) {
                unit = duration_units[i].ms;
                ulen = l;
                break;
            }
        }
        /* Units must be given largest first, each at most once, as in Prometheus. */
        if (unit == 0 || unit >= last_unit)
            return -EINVAL;
        last_unit = unit;
        p += ulen;
        if (n > INT64_MAX / unit || total > INT64_MAX - n * unit)
            return -ERANGE;
        total += n * unit;
    }
    *ms = total;
    return 0;
}

int cd_units_parse_size(const char *s, uint64_t *bytes)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return -EINVAL;
    uint64_t whole = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        if (whole > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        whole = whole * 10 + (uint64_t)(*p - '0');
        p++;
    }
    /* Up to 6 fractional digits, kept as an exact integer fraction. */
    uint64_t frac = 0, frac_div = 1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            if (frac_div < 1000000) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_div *= 10;
            }
            p++;
        }
    }
    while (*p == ' ')
        p++;
    uint64_t mult = 1;
    static const char prefixes[] = "KMGTP";
    if (*p != '\0') {
        char u = (char)toupper((unsigned char)*p);
        const char *at = strchr(prefixes, u);
        if (u == 'B' && p[1] == '\0') {
            mult = 1;
        } else if (at != NULL && u != '\0') {
            for (int i = 0; i <= at - prefixes; i++)
                mult *= 1024;
            const char *rest = p + 1;
            if (!(strcmp(rest, "") == 0 || strcmp(rest, "B") == 0 || strcmp(rest, "iB") == 0 ||
                  strcmp(rest, "b") == 0 || strcmp(rest, "ib") == 0))
                return -EINVAL;
        } else {
            return -EINVAL;
        }
    }
    if (whole > UINT64_MAX / mult)
        return -ERANGE;
    uint64_t v = whole * mult;
    uint64_t f = (frac * mult) / frac_div; /* frac < frac_div <= 1e6, mult <= 2^50: no overflow */
    if (v > UINT64_MAX - f)
        return -ERANGE;
    *bytes = v + f;
    return 0;
}

char *cd_units_fmt_size(char *dst, size_t size, uint64_t bytes)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(dst, size, "%llu B", (unsigned long long)bytes);
        return dst;
    }
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    snprintf(dst, size, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return dst;
}

char *cd_units_fmt_duration(char *dst, size_t size, int64_t ms)
{
    if (size == 0)
        return dst;
    dst[0] = '\0';
    if (ms < 0) {
        snprintf(dst, size, "-");
        ms = -ms;
    }
    if (ms == 0) {
        snprintf(dst, size, "0s");
        return dst;
    }
    if (ms < 1000) {
        size_t l = strlen(dst);
        snprintf(dst + l, size - l, "%lldms", (long long)ms);
        return dst;
    }
    if (ms < 60000 && ms % 1000 != 0) {
        size_t l = strlen(dst);
        snprintf(dst + l, size - l, "%.1fs", (double)ms / 1000.0);
        return dst;
    }
    int64_t s = ms / 1000;
    static const struct {
        char unit;
        int64_t secs;
    } parts[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    int shown = 0;
    for (size_t i = 0; i < 4 && shown < 2; i++) {
        int64_t n = s / parts[i].secs;
        if (n == 0 && shown == 0)
            continue;
        if (n != 0) {
            size_t l = strlen(dst);
            snprintf(dst + l, size - l, "%lld%c", (long long)n, parts[i].unit);
        }
        s -= n * parts[i].secs;
        shown++;
    }
    return dst;
}

char *cd_units_fmt_ago(char *dst, size_t size, int64_t then_ms, int64_t now_ms)
{
    int64_t d = now_ms - then_ms;
    int future = d < 0;
    if (future)
        d = -d;
    int64_t s = d / 1000;
    char amount[32];
    if (s < 5) {
        snprintf(dst, size, "just now");
        return dst;
    }
    if (s < 120)
        snprintf(amount, sizeof(amount), "%llds", (long long)s);
    else if (s < 120 * 60)
        snprintf(amount, sizeof(amount), "%lldm", (long long)(s / 60));
    else if (s < 48 * 3600)
        snprintf(amount, sizeof(amount), "%lldh", (long long)(s / 3600));
    else
        snprintf(amount, sizeof(amount), "%lldd", (long long)(s / 86400));
    snprintf(dst, size, future ? "in %s" : "%s ago", amount);
    return dst;
}

char *cd_units_fmt_rfc3339(char *dst, size_t size, int64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000);
    int64_t rem = unix_ms % 1000;
    if (rem < 0) {
        rem += 1000;
        t -= 1;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(dst, size, "%s.%03lldZ", base, (long long)rem);
    return dst;
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -EINVAL;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int parse_rfc3339(const char *s, int64_t *unix_ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
        parse_digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return -EINVAL;
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi) || *p++ != ':' ||
        parse_digits(&p, 2, &sec))
        return -EINVAL;
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3) {
                ms = ms * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return -EINVAL;
        while (digits++ < 3)
            ms *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh, om;
        if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om))
            return -EINVAL;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *unix_ms = ((int64_t)t - offset_s) * 1000 + ms;
    return 0;
}

int cd_units_parse_time(const char *s, int64_t now_ms, int64_t *unix_ms)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (parse_rfc3339(s, unix_ms) == 0)
        return 0;
    const char *rel = s[0] == '-' ? s + 1 : s;
    int64_t ago;
    if (cd_units_parse_duration(rel, &ago) == 0 && strcmp(rel, "0") != 0) {
        *unix_ms = now_ms - ago;
        return 0;
    }
    uint64_t n;
    if (cd_str_to_u64(s, &n) == 0) {
        /* Seconds until the year 2286 have at most 10 digits; longer numbers are milliseconds. */
        *unix_ms = strlen(s) >= 13 ? (int64_t)n : (int64_t)n * 1000;
        return 0;
    }
    return -EINVAL;
}
