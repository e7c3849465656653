/* ptest — see ptest.h. */
#include "ptest.h"

#include "cdtest.h"
#include "summary.h"

#include <errno.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pb_raw(struct pb *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->d, cap);
        assert_non_null(d);
        b->d = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->d + b->len, p, n);
    b->len += n;
}

void pb_varint(struct pb *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    pb_raw(b, tmp, n);
}

void pb_tag(struct pb *b, uint32_t field, unsigned wire_type)
{
    pb_varint(b, (uint64_t)field << 3 | wire_type);
}

void pb_uint(struct pb *b, uint32_t field, uint64_t v)
{
    pb_tag(b, field, 0);
    pb_varint(b, v);
}

void pb_bytes(struct pb *b, uint32_t field, const void *p, size_t n)
{
    pb_tag(b, field, 2);
    pb_varint(b, n);
    pb_raw(b, p, n);
}

void pb_str(struct pb *b, uint32_t field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

void pb_msg(struct pb *b, uint32_t field, const struct pb *m)
{
    pb_bytes(b, field, m->d, m->len);
}

void pb_packed(struct pb *b, uint32_t field, const uint64_t *v, size_t n)
{
    struct pb inner = {0};
    for (size_t i = 0; i < n; i++)
        pb_varint(&inner, v[i]);
    pb_msg(b, field, &inner);
    pb_free(&inner);
}

void pb_free(struct pb *b)
{
    free(b->d);
    b->d = NULL;
    b->len = b->cap = 0;
}

uint8_t *ptest_gzip(const uint8_t *d, size_t n, size_t *out_len)
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    assert_non_null(c);
    size_t cap = libdeflate_gzip_compress_bound(c, n);
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    *out_len = libdeflate_gzip_compress(c, d, n, out, cap);
    assert_true(*out_len > 0);
    libdeflate_free_compressor(c);
    return out;
}

static void cell(const char *p, size_t n, char *dst, size_t cap)
{
    while (n > 0 && (*p == ' ' || *p == '`' || *p == '*')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '`' || p[n - 1] == '*'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

int ptest_manifest(const char *shared, struct ptest_row **rows, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/testdata/pprof/MANIFEST.md", shared);
    uint8_t *data;
    size_t len;
    int rc = cdt_read_file(path, &data, &len);
    if (rc < 0)
        return rc;
    struct ptest_row *v = NULL;
    size_t count = 0;
    const char *p = (const char *)data, *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le - p > 3 && memcmp(p, "| `", 3) == 0) {
            /* 12 columns: File | Origin | Path | Profile type | Bytes | gzip | sample types |
             * samples | labels | sha256 | License | Notes */
            const char *col[13];
            size_t ncol = 0;
            for (const char *c = p; c < le && ncol < 13; c++)
                if (*c == '|')
                    col[ncol++] = c;
            if (ncol == 13) {
                v = realloc(v, (count + 1) * sizeof(*v));
                assert_non_null(v);
                struct ptest_row *r = &v[count++];
                char samples[64];
                cell(col[0] + 1, (size_t)(col[1] - col[0] - 1), r->file, sizeof(r->file));
                cell(col[3] + 1, (size_t)(col[4] - col[3] - 1), r->kind, sizeof(r->kind));
                cell(col[6] + 1, (size_t)(col[7] - col[6] - 1), r->types, sizeof(r->types));
                cell(col[7] + 1, (size_t)(col[8] - col[7] - 1), samples, sizeof(samples));
                cell(col[11] + 1, (size_t)(col[12] - col[11] - 1), r->notes, sizeof(r->notes));
                r->samples = samples[0] ? strtol(samples, NULL, 10) : -1;
            }
        }
        p = le + 1;
    }
    free(data);
    *rows = v;
    *n = count;
    return 0;
}

bool ptest_row_is_legacy(const struct ptest_row *r)
{
    return strstr(r->kind, "LEGACY") != NULL;
}

bool ptest_row_is_text(const struct ptest_row *r)
{
    return strstr(r->kind, "TEXT") != NULL;
}

json_t *ptest_sample_type(json_t *summary, const char *type)
{
    json_t *types = json_object_get(summary, "sample_types");
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "type")), type) == 0)
            return t;
    }
    return NULL;
}

json_t *ptest_table_row(json_t *table, const char *function)
{
    size_t i;
    json_t *r;
    json_array_foreach(table, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "function")), function) == 0)
            return r;
    }
    return NULL;
}

bool ptest_has_series(const struct cd_summary *s, const char *name)
{
    for (size_t i = 0; i < s->n_series; i++)
        if (strcmp(s->series[i].name, name) == 0)
            return true;
    return false;
}

double ptest_series(const struct cd_summary *s, const char *name)
{
    for (size_t i = 0; i < s->n_series; i++)
        if (strcmp(s->series[i].name, name) == 0)
            return s->series[i].value;
    fail_msg("series %s is missing", name);
    return 0;
}
