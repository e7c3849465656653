/* ptest — see ptest.h. */
#include "ptest.h"

#include "cdtest.h"
#include "summary.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

/* ---------------------------------------------------------------------------------------------
 * go tool pprof */

/* Like cdt_run, but with posix_spawn: forking a sanitizer-built test copies its huge shadow
 * mappings' page tables, which made a hundred go tool pprof runs take a minute. */
static int spawn_capture(char *const argv[], char **out, int timeout_ms)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -rc;
    }
    struct pb buf = {0};
    int64_t deadline = cdt_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int64_t left = deadline - cdt_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(fds[0]);
            pb_free(&buf);
            return -ETIMEDOUT;
        }
        char tmp[65536];
        ssize_t n = read(fds[0], tmp, sizeof(tmp));
        if (n <= 0)
            break;
        pb_raw(&buf, tmp, (size_t)n);
    }
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    pb_raw(&buf, "", 1);
    *out = (char *)buf.d;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void ptest_top_free(struct ptest_top *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->rows[i].name);
    free(t->rows);
}

static bool number(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (n > 2 && strcmp(buf + n - 2, "ns") == 0)
        buf[n - 2] = '\0';
    else if (buf[n - 1] == 'B')
        buf[n - 1] = '\0';
    char *e = NULL;
    double v = strtod(buf, &e);
    if (e == buf || *e != '\0')
        return false;
    *out = v;
    return true;
}

/* Parses `go tool pprof -top` output. */
void ptest_parse_top(char *out, struct ptest_top *t)
{
    memset(t, 0, sizeof(*t));
    bool rows = false;
    for (char *line = out; line != NULL && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        const char *of = strstr(line, "% of ");
        if (!t->has_total && strncmp(line, "Showing nodes accounting for", 28) == 0 && of) {
            of += 5;
            const char *sp = strchr(of, ' ');
            t->has_total = sp && number(of, (size_t)(sp - of), &t->total);
        } else if (strstr(line, "flat%") && strstr(line, "cum%")) {
            rows = true;
        } else if (rows) {
            /* flat flat% sum% cum cum% name */
            const char *p = line;
            const char *tok[5];
            size_t len[5];
            int k = 0;
            for (; k < 5; k++) {
                while (*p == ' ')
                    p++;
                tok[k] = p;
                while (*p && *p != ' ')
                    p++;
                len[k] = (size_t)(p - tok[k]);
                if (len[k] == 0)
                    break;
            }
            while (*p == ' ')
                p++;
            struct ptest_top_row r;
            if (k == 5 && *p && number(tok[0], len[0], &r.flat) && number(tok[3], len[3], &r.cum)) {
                size_t n = strlen(p);
                static const char *const sfx[] = {" (inline)", " (partial-inline)"};
                for (int i = 0; i < 2; i++) {
                    size_t sl = strlen(sfx[i]);
                    if (n > sl && strcmp(p + n - sl, sfx[i]) == 0)
                        n -= sl;
                }
                r.name = strndup(p, n);
                if (t->n == t->cap) {
                    t->cap = t->cap ? t->cap * 2 : 256;
                    t->rows = realloc(t->rows, t->cap * sizeof(*t->rows));
                    assert_non_null(t->rows);
                }
                t->rows[t->n++] = r;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
}

static bool plain_name(const char *s)
{
    if (*s == '[' || strcmp(s, "<unknown>") == 0 || strlen(s) > 900)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

bool ptest_near(double a, double b)
{
    return fabs(a - b) <= 0.5 + 1e-12 * fabs(b);
}

char *ptest_run_pprof(const char *path, size_t index, const char *unit, const char *extra)
{
    char idx[32], unitf[32];
    snprintf(idx, sizeof(idx), "-sample_index=%zu", index);
    snprintf(unitf, sizeof(unitf), "-unit=%s", unit ? unit : "");
    char *argv[12];
    int a = 0;
    argv[a++] = (char *)cdt_env("CD_GO");
    argv[a++] = "tool";
    argv[a++] = "pprof";
    argv[a++] = "-symbolize=none";
    argv[a++] = "-top";
    argv[a++] = "-nodecount=0";
    argv[a++] = "-nodefraction=0";
    argv[a++] = extra ? (char *)extra : idx;
    if (unit)
        argv[a++] = unitf;
    argv[a++] = (char *)path;
    argv[a] = NULL;
    char *out = NULL;
    int st = spawn_capture(argv, &out, 60000);
    if (st != 0)
        fail_msg("go tool pprof %s failed (status %d)", path, st);
    assert_non_null(out);
    return out;
}

/* 0 = compared and equal; fails the test otherwise. Returns rows compared. */
static size_t compare_type(const char *file, const char *path, json_t *summary, size_t k)
{
    json_t *t = json_array_get(json_object_get(summary, "sample_types"), k);
    const char *type = json_string_value(json_object_get(t, "type"));
    const char *unit = json_string_value(json_object_get(t, "unit"));
    const char *flag = strcmp(unit, "nanoseconds") == 0 ? "ns"
                       : strcmp(unit, "bytes") == 0     ? "B"
                                                        : NULL;
    char *out = ptest_run_pprof(path, k, flag, NULL);
    struct ptest_top top;
    ptest_parse_top(out, &top);
    if (!top.has_total)
        fail_msg("%s %s: no total in go tool pprof's output:\n%s", file, type, out);
    double total = (double)json_integer_value(json_object_get(t, "total_abs"));
    if (!ptest_near(top.total, total))
        fail_msg("%s %s: total %.0f, go tool pprof says %.0f", file, type, total, top.total);
    /* name -> row maps: profiles have tens of thousands of functions */
    json_t *ours = json_object(), *theirs = json_object();
    const char *tables[] = {"top_flat", "top_cum"};
    for (int k2 = 0; k2 < 2; k2++) {
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(t, tables[k2]), i, row)
        {
            json_object_set(ours, json_string_value(json_object_get(row, "function")), row);
        }
    }
    size_t compared = 0;
    for (size_t i = 0; i < top.n; i++) {
        const struct ptest_top_row *r = &top.rows[i];
        if (!plain_name(r->name))
            continue;
        json_object_set_new(theirs, r->name, json_true());
        json_t *row = json_object_get(ours, r->name);
        double f = row ? (double)json_integer_value(json_object_get(row, "flat")) : 0;
        double c = row ? (double)json_integer_value(json_object_get(row, "cum")) : 0;
        if (!ptest_near(r->flat, f) || !ptest_near(r->cum, c))
            fail_msg("%s %s %s: flat %.0f cum %.0f, go tool pprof says flat %.0f cum %.0f", file,
                     type, r->name, f, c, r->flat, r->cum);
        compared++;
    }
    /* and nothing of ours is missing from pprof's list (symbolized rows only) */
    const char *fn;
    json_t *row;
    json_object_foreach(ours, fn, row)
    {
        if (strncmp(fn, "0x", 2) != 0 && plain_name(fn) && json_object_get(theirs, fn) == NULL)
            fail_msg("%s %s: %s is not in go tool pprof's list", file, type, fn);
    }
    json_decref(ours);
    json_decref(theirs);
    ptest_top_free(&top);
    free(out);
    return compared;
}

size_t ptest_pprof_matches(const char *label, const char *path, const struct cd_summary *s)
{
    size_t nt = json_array_size(json_object_get(s->json, "sample_types")), rows = 0;
    for (size_t k = 0; k < nt; k++)
        rows += compare_type(label, path, s->json, k);
    return rows;
}
