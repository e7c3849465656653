/* textscan — see textscan.h. */
#include "textscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cd_textscan_init(struct cd_textscan *s, const void *data, size_t len)
{
    s->p = data;
    s->end = s->p + len;
    s->line_no = 0;
}

static bool scan_line(const char *p, const char *end, const char **line, size_t *len,
                      const char **next)
{
    if (p >= end)
        return false;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    size_t n = (size_t)(stop - p);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    *line = p;
    *len = n;
    *next = nl ? nl + 1 : end;
    return true;
}

bool cd_textscan_line(struct cd_textscan *s, const char **line, size_t *len)
{
    const char *next;
    if (!scan_line(s->p, s->end, line, len, &next))
        return false;
    s->p = next;
    s->line_no++;
    return true;
}

bool cd_textscan_peek(const struct cd_textscan *s, const char **line, size_t *len)
{
    const char *next;
    return scan_line(s->p, s->end, line, len, &next);
}

size_t cd_textscan_offset(const struct cd_textscan *s, const void *base)
{
    return (size_t)(s->p - (const char *)base);
}

int cd_textscan_u64(const char *p, size_t len, uint64_t *out)
{
    if (len == 0)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cd_textscan_i64(const char *p, size_t len, int64_t *out)
{
    bool neg = len > 0 && p[0] == '-';
    uint64_t v;
    int rc = cd_textscan_u64(p + neg, len - neg, &v);
    if (rc < 0)
        return rc;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -ERANGE;
        *out = (int64_t)v;
    }
    return 0;
}

bool cd_textscan_starts(const char *p, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(p, prefix, n) == 0;
}

void cd_textscan_trim(const char **p, size_t *len)
{
    const char *s = *p;
    size_t n = *len;
    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *p = s;
    *len = n;
}

static int hex_u64(const char *p, size_t len, uint64_t *out)
{
    if (len < 3 || p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 2; i < len; i++) {
        unsigned d;
        char c = p[i];
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -EINVAL;
        if (v >> 60)
            return -ERANGE;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* The next tab-separated column (runs of tabs are one separator). */
static bool next_column(const char **p, const char *end, const char **col, size_t *len)
{
    const char *s = *p;
    while (s < end && *s == '\t')
        s++;
    if (s >= end)
        return false;
    const char *e = memchr(s, '\t', (size_t)(end - s));
    if (e == NULL)
        e = end;
    *col = s;
    *len = (size_t)(e - s);
    *p = e;
    return true;
}

int cd_textscan_frame(const char *line, size_t len, struct cd_textscan_frame *f)
{
    if (len < 2 || line[0] != '#' || line[1] != '\t')
        return -EINVAL;
    const char *p = line + 1, *end = line + len;
    const char *col;
    size_t clen;
    struct cd_textscan_frame fr = {0};
    if (!next_column(&p, end, &col, &clen) || hex_u64(col, clen, &fr.pc) < 0)
        return -EINVAL;
    fr.pc_text = col;
    fr.pc_len = clen;
    if (next_column(&p, end, &col, &clen)) {
        /* func+0xoff: the offset follows the last '+' */
        size_t n = clen;
        while (n > 0 && col[n - 1] != '+')
            n--;
        fr.func = col;
        fr.func_len = n > 0 ? n - 1 : clen;
        if (next_column(&p, end, &col, &clen)) {
            /* file:line — the line after the last ':' (Windows paths have "C:") */
            size_t n2 = clen;
            while (n2 > 0 && col[n2 - 1] != ':')
                n2--;
            int64_t ln;
            if (n2 > 0 && cd_textscan_i64(col + n2, clen - n2, &ln) == 0) {
                fr.file = col;
                fr.file_len = n2 - 1;
                fr.line = ln;
            } else {
                fr.file = col;
                fr.file_len = clen;
            }
        }
    }
    *f = fr;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return c == 0 ? 0 : 1;
    size_t need;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return need;
}

json_t *cd_textscan_json_str(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    /* Fast path: short valid text needs no copy. */
    size_t i = 0;
    while (i < len && i <= CD_TEXTSCAN_JSON_STR_MAX) {
        size_t k = utf8_seq(s + i, len - i);
        if (k == 0 || i + k > CD_TEXTSCAN_JSON_STR_MAX)
            break;
        i += k;
    }
    if (i == len)
        return json_stringn_nocheck(p, len);
    /* Worst case every byte becomes the 3-byte U+FFFD, plus "...". */
    size_t cap = CD_TEXTSCAN_JSON_STR_MAX + 8;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    size_t o = 0;
    bool cut = false;
    for (i = 0; i < len;) {
        size_t k = utf8_seq(s + i, len - i);
        size_t add = k ? k : 3;
        if (o + add > CD_TEXTSCAN_JSON_STR_MAX) {
            cut = true;
            break;
        }
        if (k) {
            memcpy(buf + o, s + i, k);
            i += k;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            i++;
        }
        o += add;
    }
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    json_t *j = json_stringn_nocheck(buf, o);
    free(buf);
    return j;
}

int cd_textscan_jset(json_t *obj, const char *key, json_t *val)
{
    if (val == NULL)
        return -ENOMEM;
    return json_object_set_new(obj, key, val) == 0 ? 0 : -ENOMEM;
}

int cd_textscan_jpush(json_t *arr, json_t *val)
{
    if (val == NULL)
        return -ENOMEM;
    return json_array_append_new(arr, val) == 0 ? 0 : -ENOMEM;
}

const struct cd_parse_limits *cd_textscan_limits(const struct cd_parse_limits *lim,
                                                 struct cd_parse_limits *dflt)
{
    if (lim != NULL)
        return lim;
    cd_parse_limits_default(dflt);
    return dflt;
}

void cd_textscan_publish(struct cd_summary *out, struct cd_summary *sum, enum cd_format fmt,
                         json_t **json)
{
    sum->format = fmt;
    sum->json = *json;
    *json = NULL;
    cd_summary_free(out);
    *out = *sum;
    cd_summary_init(sum);
}
