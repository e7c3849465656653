/* config — see config.h. */
#include "config.h"

#include "str.h"
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ------------------------------------------------------------------------------------------ */
/* Small containers                                                                           */

void cd_strv_free(struct cd_strv *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

int cd_strv_push(struct cd_strv *v, const char *s)
{
    char *c = cd_str_dup(s);
    char **g = realloc(v->v, (v->n + 1) * sizeof(*g));
    if (c == NULL || g == NULL) {
        free(c);
        if (g != NULL)
            v->v = g;
        return -ENOMEM;
    }
    v->v = g;
    v->v[v->n++] = c;
    return 0;
}

void cd_params_free(struct cd_params *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].value);
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

int cd_params_add(struct cd_params *p, const char *name, const char *value)
{
    char *n = cd_str_dup(name);
    char *v = cd_str_dup(value);
    struct cd_param *g = realloc(p->v, (p->n + 1) * sizeof(*g));
    if (n == NULL || v == NULL || g == NULL) {
        free(n);
        free(v);
        if (g != NULL)
            p->v = g;
        return -ENOMEM;
    }
    p->v = g;
    p->v[p->n].name = n;
    p->v[p->n].value = v;
    p->n++;
    return 0;
}

void cd_group_free(struct cd_group *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].address);
        cd_labels_free(&g->v[i].labels);
    }
    free(g->v);
    cd_labels_free(&g->labels);
    free(g->source);
    memset(g, 0, sizeof(*g));
}

void cd_groups_free(struct cd_groups *gs)
{
    if (gs == NULL)
        return;
    for (size_t i = 0; i < gs->n; i++)
        cd_group_free(&gs->v[i]);
    free(gs->v);
    gs->v = NULL;
    gs->n = 0;
}

struct cd_group *cd_groups_add(struct cd_groups *gs)
{
    struct cd_group *g = realloc(gs->v, (gs->n + 1) * sizeof(*g));
    if (g == NULL)
        return NULL;
    gs->v = g;
    memset(&gs->v[gs->n], 0, sizeof(gs->v[0]));
    return &gs->v[gs->n++];
}

int cd_group_add_entry(struct cd_group *g, const char *address, const struct cd_labels *labels)
{
    struct cd_group_entry *e = realloc(g->v, (g->n + 1) * sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    g->v = e;
    e = &g->v[g->n];
    memset(e, 0, sizeof(*e));
    e->address = cd_str_dup(address);
    if (e->address == NULL)
        return -ENOMEM;
    g->n++;
    if (labels != NULL && cd_labels_copy(&e->labels, labels) < 0)
        return -ENOMEM;
    return 0;
}

int cd_groups_copy_append(struct cd_groups *dst, const struct cd_groups *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct cd_group *s = &src->v[i];
        struct cd_group *d = cd_groups_add(dst);
        if (d == NULL)
            return -ENOMEM;
        if (cd_labels_copy(&d->labels, &s->labels) < 0)
            return -ENOMEM;
        if (s->source != NULL && (d->source = cd_str_dup(s->source)) == NULL)
            return -ENOMEM;
        for (size_t k = 0; k < s->n; k++) {
            if (cd_group_add_entry(d, s->v[k].address, &s->v[k].labels) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

size_t cd_groups_count_entries(const struct cd_groups *gs)
{
    size_t n = 0;
    for (size_t i = 0; i < gs->n; i++)
        n += gs->v[i].n;
    return n;
}

void cd_config_diag_free(struct cd_config_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->lines[i]);
    free(d->lines);
    memset(d, 0, sizeof(*d));
}

/* ------------------------------------------------------------------------------------------ */
/* Parse context and error reporting                                                          */

struct ycx {
    yaml_document_t doc;
    const char *name;
    const char *dir;
    struct cd_config_diag *diag;
    struct cd_err *err;
    size_t n_errors;
    size_t budget;
    bool budget_reported;
    bool oom;
    bool mute; /* checks whose failures don't matter (disabled kinds) */
    struct cd_config *cfg;
};

static void cx_verror(struct ycx *cx, const yaml_node_t *n, const char *kp, const char *fmt,
                      va_list ap) __attribute__((format(printf, 4, 0)));

static void cx_verror(struct ycx *cx, const yaml_node_t *n, const char *kp, const char *fmt,
                      va_list ap)
{
    if (cx->mute)
        return;
    char msg[768];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    char *line;
    if (n != NULL)
        line = cd_str_printf("%s:%zu:%zu: %s: %s", cx->name, (size_t)n->start_mark.line + 1,
                             (size_t)n->start_mark.column + 1, kp[0] ? kp : "(top)", msg);
    else
        line = cd_str_printf("%s: %s: %s", cx->name, kp[0] ? kp : "(top)", msg);
    cx->n_errors++;
    if (line == NULL) {
        cx->oom = true;
        cd_err_set(cx->err, -ENOMEM, "out of memory");
        return;
    }
    cd_err_set(cx->err, -EINVAL, "%s", line);
    if (cx->diag->n >= CD_CONFIG_MAX_DIAG) {
        cx->diag->dropped++;
        free(line);
        return;
    }
    char **g = realloc(cx->diag->lines, (cx->diag->n + 1) * sizeof(*g));
    if (g == NULL) {
        free(line);
        cx->oom = true;
        return;
    }
    cx->diag->lines = g;
    cx->diag->lines[cx->diag->n++] = line;
}

static void cx_error(struct ycx *cx, const yaml_node_t *n, const char *kp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cx_error(struct ycx *cx, const yaml_node_t *n, const char *kp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cx_verror(cx, n, kp, fmt, ap);
    va_end(ap);
}

static void cx_oom(struct ycx *cx)
{
    if (!cx->oom) {
        cx->oom = true;
        cd_err_set(cx->err, -ENOMEM, "%s: out of memory", cx->name);
    }
}

/* Counts node visits so YAML aliases can't make a small file cost a lot. */
static bool cx_visit(struct ycx *cx, const yaml_node_t *n, const char *kp)
{
    if (cx->budget == 0) {
        if (!cx->budget_reported)
            cx_error(cx, n, kp, "the document is too large (more than %d nodes, aliases expanded)",
                     CD_CONFIG_MAX_NODES);
        cx->budget_reported = true;
        return false;
    }
    cx->budget--;
    return true;
}

static yaml_node_t *cx_node(struct ycx *cx, int idx)
{
    return yaml_document_get_node(&cx->doc, idx);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return "a scalar";
    default:
        return "nothing";
    }
}

static bool is_null(const yaml_node_t *n)
{
    if (n == NULL)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* The scalar's text, or NULL after reporting that a scalar was expected. */
static const char *scalar(struct ycx *cx, const yaml_node_t *n, const char *kp,
                          const char *expected)
{
    if (n->type != YAML_SCALAR_NODE) {
        cx_error(cx, n, kp, "expected %s, got %s", expected, node_kind(n));
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static void kp_join(char *dst, size_t size, const char *kp, const char *key)
{
    if (kp[0] == '\0')
        snprintf(dst, size, "%s", key);
    else
        snprintf(dst, size, "%s.%s", kp, key);
}

static void kp_index(char *dst, size_t size, const char *kp, size_t i)
{
    snprintf(dst, size, "%s[%zu]", kp, i);
}

#define KP_MAX 384

/* ------------------------------------------------------------------------------------------ */
/* Mappings: items in order, duplicate keys rejected, YAML merge keys (<<) honoured            */

struct kv {
    yaml_node_t *k;
    yaml_node_t *v;
    const char *key;
};

struct kvs {
    struct kv *v;
    size_t n;
    size_t cap;
};

static int kvs_push(struct kvs *a, yaml_node_t *k, yaml_node_t *v, const char *key)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct kv *g = realloc(a->v, cap * sizeof(*g));
        if (g == NULL)
            return -ENOMEM;
        a->v = g;
        a->cap = cap;
    }
    a->v[a->n].k = k;
    a->v[a->n].v = v;
    a->v[a->n].key = key;
    a->n++;
    return 0;
}

static bool kvs_has(const struct kvs *a, const char *key)
{
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].key, key) == 0)
            return true;
    }
    return false;
}

/* The pairs a merge key (<<) brings in: each merged mapping's own keys first, then its own
 * merges; among several merged mappings the first to give a key wins, as in YAML. */
static int merge_collect(struct ycx *cx, yaml_node_t *v, const char *kp, struct kvs *out, int depth)
{
    if (depth > 8) {
        cx_error(cx, v, kp, "merge keys (<<) nested too deeply");
        return -EINVAL;
    }
    yaml_node_t *single[1] = {v};
    yaml_node_t **maps = single;
    size_t n_maps = 1;
    yaml_node_t *buf[64];
    if (v->type == YAML_SEQUENCE_NODE) {
        n_maps = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             it < v->data.sequence.items.top && n_maps < 64; it++) {
            yaml_node_t *mm = cx_node(cx, *it);
            if (mm != NULL)
                buf[n_maps++] = mm;
        }
        maps = buf;
    }
    for (size_t i = 0; i < n_maps; i++) {
        yaml_node_t *m = maps[i];
        if (m->type != YAML_MAPPING_NODE) {
            cx_error(cx, m, kp, "a merge key (<<) takes a mapping or a list of mappings");
            continue;
        }
        if (!cx_visit(cx, m, kp))
            return -E2BIG;
        for (int pass = 0; pass < 2; pass++) {
            for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
                 p++) {
                yaml_node_t *k = cx_node(cx, p->key);
                yaml_node_t *val = cx_node(cx, p->value);
                if (k == NULL || val == NULL || k->type != YAML_SCALAR_NODE)
                    continue;
                const char *key = (const char *)k->data.scalar.value;
                bool is_merge =
                    strcmp(key, "<<") == 0 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (pass == 0 && !is_merge && !kvs_has(out, key)) {
                    if (kvs_push(out, k, val, key) < 0) {
                        cx_oom(cx);
                        return -ENOMEM;
                    }
                } else if (pass == 1 && is_merge) {
                    int rc = merge_collect(cx, val, kp, out, depth + 1);
                    if (rc < 0)
                        return rc;
                }
            }
        }
    }
    return 0;
}

/* Explicit keys in order (duplicates reported), then keys merged in with <<. */
static int map_items(struct ycx *cx, yaml_node_t *m, const char *kp, struct kvs *out)
{
    memset(out, 0, sizeof(*out));
    if (m->type != YAML_MAPPING_NODE) {
        cx_error(cx, m, kp, "expected a mapping, got %s", node_kind(m));
        return -EINVAL;
    }
    if (!cx_visit(cx, m, kp))
        return -E2BIG;
    bool has_merge = false;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = cx_node(cx, p->key);
        yaml_node_t *v = cx_node(cx, p->value);
        if (k == NULL || v == NULL)
            continue;
        if (k->type != YAML_SCALAR_NODE) {
            cx_error(cx, k, kp, "keys must be strings, got %s", node_kind(k));
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        if (strcmp(key, "<<") == 0 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            has_merge = true;
            continue;
        }
        if (kvs_has(out, key)) {
            char sub[KP_MAX];
            kp_join(sub, sizeof(sub), kp, key);
            cx_error(cx, k, sub, "duplicate key");
            continue;
        }
        if (kvs_push(out, k, v, key) < 0) {
            cx_oom(cx);
            return -ENOMEM;
        }
    }
    if (!has_merge)
        return 0;
    struct kvs merged = {0};
    int rc = 0;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
         p < m->data.mapping.pairs.top && rc == 0; p++) {
        yaml_node_t *k = cx_node(cx, p->key);
        yaml_node_t *v = cx_node(cx, p->value);
        if (k != NULL && v != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, "<<") == 0 &&
            k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            rc = merge_collect(cx, v, kp, &merged, 0);
    }
    for (size_t i = 0; i < merged.n && rc == 0; i++) {
        if (!kvs_has(out, merged.v[i].key) &&
            kvs_push(out, merged.v[i].k, merged.v[i].v, merged.v[i].key) < 0) {
            cx_oom(cx);
            rc = -ENOMEM;
        }
    }
    free(merged.v);
    return rc;
}

/* Items of a list; a null node is an empty list. */
static int seq_items(struct ycx *cx, yaml_node_t *n, const char *kp, yaml_node_item_t **start,
                     yaml_node_item_t **top)
{
    *start = *top = NULL;
    if (is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        cx_error(cx, n, kp, "expected a list, got %s", node_kind(n));
        return -EINVAL;
    }
    if (!cx_visit(cx, n, kp))
        return -E2BIG;
    *start = n->data.sequence.items.start;
    *top = n->data.sequence.items.top;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Scalars                                                                                    */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* Relative paths resolve against the config file's directory; the result is cleaned lexically
 * (".", "..", "//") so messages and the dump show plain absolute paths. */
static char *path_resolve(const char *dir, const char *p)
{
    char *joined = p[0] == '/' ? cd_str_dup(p) : cd_str_printf("%s/%s", dir ? dir : ".", p);
    if (joined == NULL)
        return NULL;
    size_t len = strlen(joined);
    char *out = malloc(len + 2);
    if (out == NULL) {
        free(joined);
        return NULL;
    }
    size_t o = 0;
    bool abs = joined[0] == '/';
    const char *s = joined;
    while (*s != '\0') {
        while (*s == '/')
            s++;
        if (*s == '\0')
            break;
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == 1 && s[0] == '.') {
            /* skip */
        } else if (l == 2 && s[0] == '.' && s[1] == '.') {
            char *slash = o > 0 ? memrchr(out, '/', o) : NULL;
            size_t seg_start = slash ? (size_t)(slash - out) + 1 : 0;
            bool prev_dotdot =
                o - seg_start == 2 && out[seg_start] == '.' && out[seg_start + 1] == '.';
            if (o > 0 && !prev_dotdot) {
                o = slash ? (size_t)(slash - out) : 0;
            } else if (!abs) {
                if (o > 0)
                    out[o++] = '/';
                out[o++] = '.';
                out[o++] = '.';
            }
        } else {
            if (o > 0 || abs)
                out[o++] = '/';
            memcpy(out + o, s, l);
            o += l;
        }
        s += l;
    }
    if (o == 0)
        out[o++] = abs ? '/' : '.';
    out[o] = '\0';
    free(joined);
    return out;
}

void cd_config_fmt_duration(char *dst, size_t size, int64_t ms)
{
    static const struct {
        const char *u;
        int64_t ms;
    } parts[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    if (ms <= 0) {
        snprintf(dst, size, "0s");
        return;
    }
    size_t o = 0;
    dst[0] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        int64_t n = ms / parts[i].ms;
        /* years only when exact, weeks never: "14d" reads better than "2w" */
        if (i == 1)
            continue;
        if (n > 0 && (i >= 2 || ms % parts[i].ms == 0)) {
            o += (size_t)snprintf(dst + o, o < size ? size - o : 0, "%lld%s", (long long)n,
                                  parts[i].u);
            ms -= n * parts[i].ms;
        }
    }
}

static void fmt_size(char *dst, size_t size, uint64_t b)
{
    static const char *u[] = {"PiB", "TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 5; i++) {
        uint64_t m = 1ULL << (10 * (5 - i));
        if (b != 0 && b % m == 0) {
            snprintf(dst, size, "%llu%s", (unsigned long long)(b / m), u[i]);
            return;
        }
    }
    snprintf(dst, size, "%llu", (unsigned long long)b);
}

enum ftype {
    FT_DUR,
    FT_SIZE,
    FT_INT,
    FT_BOOL,
    FT_STR,
    FT_PATH,
    FT_MODE,
    FT_LABELS,
    FT_CUSTOM,
    FT_REJECT,
};

#define F_RESTART 1u /* changing it needs a restart */
#define F_SECRET  2u
#define F_NONEG   4u

struct field;
typedef void (*field_fn)(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj);

struct field {
    const char *key;
    enum ftype type;
    size_t off;
    const char *def; /* the default as one would write it in the file; NULL = none */
    int64_t min, max;
    unsigned flags;
    field_fn fn;     /* FT_CUSTOM */
    const char *why; /* FT_REJECT: why we don't take it */
};

static bool parse_bool(const char *s, bool *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* Converts text to the field's type at dst. Returns NULL or a message (in msg). */
static const char *conv(const struct field *f, const char *s, void *dst, const char *dir, char *msg,
                        size_t msz)
{
    switch (f->type) {
    case FT_DUR: {
        int64_t ms;
        char a[48], b[48];
        if (s[0] == '-')
            return snprintf(msg, msz, "must not be negative, got \"%s\"", s), msg;
        int rc = cd_units_parse_duration(s, &ms);
        if (rc < 0)
            return snprintf(msg, msz, "expected a duration like 30s, 1h30m or 14d, got \"%s\"", s),
                   msg;
        if (ms < f->min || ms > f->max) {
            cd_config_fmt_duration(a, sizeof(a), f->min);
            cd_config_fmt_duration(b, sizeof(b), f->max);
            if (f->min == 0)
                snprintf(msg, msz, "must be at most %s, got %s", b, s);
            else
                snprintf(msg, msz, "must be between %s and %s, got %s", a, b, s);
            return msg;
        }
        *(int64_t *)dst = ms;
        return NULL;
    }
    case FT_SIZE: {
        uint64_t v;
        char a[48], b[48];
        if (s[0] == '-')
            return snprintf(msg, msz, "must not be negative, got \"%s\"", s), msg;
        if (cd_units_parse_size(s, &v) < 0)
            return snprintf(msg, msz, "expected a size like 64MiB or 512KiB, got \"%s\"", s), msg;
        if (v < (uint64_t)f->min || v > (uint64_t)f->max) {
            fmt_size(a, sizeof(a), (uint64_t)f->min);
            fmt_size(b, sizeof(b), (uint64_t)f->max);
            snprintf(msg, msz, "must be between %s and %s, got %s", f->min ? a : "0", b, s);
            return msg;
        }
        *(uint64_t *)dst = v;
        return NULL;
    }
    case FT_INT: {
        int64_t v;
        if (cd_str_to_i64(s, &v) < 0)
            return snprintf(msg, msz, "expected an integer, got \"%s\"", s), msg;
        if (v < f->min || v > f->max) {
            if (v < 0 && f->min >= 0)
                snprintf(msg, msz, "must not be negative, got %s", s);
            else
                snprintf(msg, msz, "must be between %lld and %lld, got %s", (long long)f->min,
                         (long long)f->max, s);
            return msg;
        }
        *(int *)dst = (int)v;
        return NULL;
    }
    case FT_BOOL:
        if (!parse_bool(s, (bool *)dst))
            return snprintf(msg, msz, "expected true or false, got \"%s\"", s), msg;
        return NULL;
    case FT_STR:
    case FT_PATH: {
        char *c;
        if (strlen(s) > 4096)
            return snprintf(msg, msz, "longer than 4096 bytes"), msg;
        for (const char *p = s; *p; p++) {
            if ((unsigned char)*p < 0x20 && *p != '\t')
                return snprintf(msg, msz, "control characters are not allowed"), msg;
        }
        if (f->type == FT_PATH && s[0] != '\0')
            c = path_resolve(dir, s);
        else
            c = cd_str_dup(s);
        if (c == NULL)
            return snprintf(msg, msz, "out of memory"), msg;
        free(*(char **)dst);
        *(char **)dst = c;
        return NULL;
    }
    case FT_MODE: {
        const char *p = s;
        unsigned v = 0;
        if (*p == '0' && (p[1] == 'o' || p[1] == 'O'))
            p += 2;
        if (*p == '\0')
            return snprintf(msg, msz, "expected an octal file mode like 0660, got \"%s\"", s), msg;
        for (; *p; p++) {
            if (*p < '0' || *p > '7' || v > 07777)
                return snprintf(msg, msz, "expected an octal file mode like 0660, got \"%s\"", s),
                       msg;
            v = v * 8 + (unsigned)(*p - '0');
        }
        if (v > (unsigned)f->max)
            return snprintf(msg, msz, "must be at most %04llo, got %s", (long long)f->max, s), msg;
        *(unsigned *)dst = v;
        return NULL;
    }
    default:
        return snprintf(msg, msz, "internal: no conversion"), msg;
    }
}

static bool label_value_ok(const char *v)
{
    return strlen(v) <= CD_CONFIG_MAX_LABEL_VALUE;
}

/* A {name: value} map of labels (Prometheus label names). Reserved "__" names optional. */
static void parse_labels(struct ycx *cx, yaml_node_t *n, const char *kp, struct cd_labels *out,
                         bool allow_reserved)
{
    if (is_null(n))
        return;
    struct kvs items;
    if (map_items(cx, n, kp, &items) < 0) {
        free(items.v);
        return;
    }
    if (items.n > CD_CONFIG_MAX_LABELS)
        cx_error(cx, n, kp, "at most %d labels, got %zu", CD_CONFIG_MAX_LABELS, items.n);
    for (size_t i = 0; i < items.n && i < CD_CONFIG_MAX_LABELS; i++) {
        char sub[KP_MAX];
        kp_join(sub, sizeof(sub), kp, items.v[i].key);
        if (!cd_relabel_label_name_valid(items.v[i].key)) {
            cx_error(cx, items.v[i].k, sub,
                     "invalid label name (expected letters, digits and _, not starting with a "
                     "digit)");
            continue;
        }
        if (!allow_reserved && strncmp(items.v[i].key, "__", 2) == 0) {
            cx_error(cx, items.v[i].k, sub, "label names starting with __ are reserved");
            continue;
        }
        if (!cx_visit(cx, items.v[i].v, sub))
            break;
        const char *v = scalar(cx, items.v[i].v, sub, "a string");
        if (v == NULL)
            continue;
        if (!label_value_ok(v)) {
            cx_error(cx, items.v[i].v, sub, "label value longer than %d bytes",
                     CD_CONFIG_MAX_LABEL_VALUE);
            continue;
        }
        if (is_null(items.v[i].v))
            continue;
        if (cd_labels_set(out, items.v[i].key, v) < 0)
            cx_oom(cx);
    }
    free(items.v);
}

static void unknown_key(struct ycx *cx, const struct kv *it, const char *kp,
                        const struct field *tab)
{
    char sub[KP_MAX];
    kp_join(sub, sizeof(sub), kp, it->key);
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    char list[512];
    size_t o = 0;
    list[0] = '\0';
    for (const struct field *f = tab; f->key != NULL; f++) {
        if (f->type == FT_REJECT)
            continue;
        size_t d = edit_distance(it->key, f->key);
        if (d < bestd) {
            bestd = d;
            best = f->key;
        }
        if (o < sizeof(list))
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", f->key);
    }
    if (best != NULL && bestd <= 2)
        cx_error(cx, it->k, sub, "unknown key (did you mean %s?)", best);
    else
        cx_error(cx, it->k, sub, "unknown key (expected one of: %s)", list);
}

/* Applies the defaults of a table to obj. The defaults are our own text: they always parse. */
static void apply_defaults(struct ycx *cx, const struct field *tab, void *obj)
{
    for (const struct field *f = tab; f->key != NULL; f++) {
        if (f->def == NULL || f->type == FT_CUSTOM || f->type == FT_REJECT || f->type == FT_LABELS)
            continue;
        char msg[160];
        if (conv(f, f->def, (char *)obj + f->off, cx ? cx->dir : NULL, msg, sizeof(msg)) != NULL &&
            cx != NULL)
            cx_oom(cx);
    }
}

/*
 * Parses a mapping against a table. Returns a bit mask of the table entries present (entry i
 * -> bit i), so callers can tell "set" from "default".
 */
static uint64_t parse_map(struct ycx *cx, yaml_node_t *m, const char *kp, const struct field *tab,
                          void *obj)
{
    uint64_t seen = 0;
    if (is_null(m))
        return 0;
    struct kvs items;
    if (map_items(cx, m, kp, &items) < 0) {
        free(items.v);
        return 0;
    }
    for (size_t i = 0; i < items.n; i++) {
        const struct kv *it = &items.v[i];
        const struct field *f = NULL;
        size_t idx = 0;
        for (const struct field *t = tab; t->key != NULL; t++, idx++) {
            if (strcmp(t->key, it->key) == 0) {
                f = t;
                break;
            }
        }
        if (f == NULL) {
            unknown_key(cx, it, kp, tab);
            continue;
        }
        char sub[KP_MAX];
        kp_join(sub, sizeof(sub), kp, it->key);
        if (f->type == FT_REJECT) {
            cx_error(cx, it->k, sub, "%s", f->why);
            continue;
        }
        if (!cx_visit(cx, it->v, sub))
            break;
        if (idx < 64)
            seen |= 1ULL << idx;
        void *dst = (char *)obj + f->off;
        if (f->type == FT_CUSTOM) {
            f->fn(cx, it->v, sub, obj);
            continue;
        }
        if (f->type == FT_LABELS) {
            parse_labels(cx, it->v, sub, (struct cd_labels *)dst, false);
            continue;
        }
        if (is_null(it->v) && (f->type == FT_STR || f->type == FT_PATH)) {
            /* `key:` with nothing after it: the empty string, as go-yaml would give */
            char msg[160];
            conv(f, "", dst, cx->dir, msg, sizeof(msg));
            continue;
        }
        if (is_null(it->v)) {
            seen &= ~(1ULL << idx);
            continue; /* null keeps the default */
        }
        const char *s = scalar(cx, it->v, sub,
                               f->type == FT_BOOL   ? "true or false"
                               : f->type == FT_DUR  ? "a duration"
                               : f->type == FT_SIZE ? "a size"
                               : f->type == FT_INT  ? "an integer"
                               : f->type == FT_MODE ? "an octal file mode"
                                                    : "a string");
        if (s == NULL)
            continue;
        char msg[256];
        const char *why = conv(f, s, dst, cx->dir, msg, sizeof(msg));
        if (why != NULL)
            cx_error(cx, it->v, sub, "%s", why);
    }
    free(items.v);
    return seen;
}

static bool seen_key(uint64_t seen, const struct field *tab, const char *key)
{
    size_t i = 0;
    for (const struct field *f = tab; f->key != NULL; f++, i++) {
        if (strcmp(f->key, key) == 0)
            return i < 64 && (seen & (1ULL << i)) != 0;
    }
    return false;
}

/* The value node of key in mapping m (NULL when absent). */
static yaml_node_t *map_get(struct ycx *cx, yaml_node_t *m, const char *key, yaml_node_t **keynode)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = cx_node(cx, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0) {
            if (keynode != NULL)
                *keynode = k;
            return cx_node(cx, p->value);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Secrets                                                                                    */

static int read_secret(const char *path, char **out, char *msg, size_t msz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(msg, msz, "cannot read '%s': %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(msg, msz, "'%s' is not a regular file", path);
        return -EINVAL;
    }
    char *buf = malloc(CD_CONFIG_MAX_SECRET_BYTES + 1);
    if (buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, CD_CONFIG_MAX_SECRET_BYTES + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            snprintf(msg, msz, "cannot read '%s': %s", path, strerror(e));
            free(buf);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CD_CONFIG_MAX_SECRET_BYTES) {
            snprintf(msg, msz, "'%s' is larger than %u bytes", path, CD_CONFIG_MAX_SECRET_BYTES);
            free(buf);
            close(fd);
            return -EFBIG;
        }
    }
    close(fd);
    /* Trimmed of surrounding whitespace, as Prometheus does. */
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    size_t start = 0;
    while (start < len && isspace((unsigned char)buf[start]))
        start++;
    if (memchr(buf + start, '\0', len - start) != NULL || memchr(buf + start, '\n', len - start)) {
        snprintf(msg, msz, "'%s' must hold one line of text", path);
        free(buf);
        return -EINVAL;
    }
    if (len == start) {
        snprintf(msg, msz, "'%s' is empty", path);
        free(buf);
        return -EINVAL;
    }
    char *s = cd_str_ndup(buf + start, len - start);
    free(buf);
    if (s == NULL)
        return -ENOMEM;
    *out = s;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Daemon-wide sections                                                                       */

#define DUR_MIN 1000LL
#define DAY_MS  (86400000LL)
#define GIB     (1LL << 30)
#define MIB     (1LL << 20)
#define KIB     (1LL << 10)

#define OFF_GLOBAL(f)  offsetof(struct cd_config, global.f)
#define OFF_STORAGE(f) offsetof(struct cd_config, storage.f)
#define OFF_RET(f)     offsetof(struct cd_config, storage.retention.f)
#define OFF_QUERY(f)   offsetof(struct cd_config, query.f)
#define OFF_LIMITS(f)  offsetof(struct cd_config, limits.f)

static const struct field global_fields[] = {
    {"scrape_interval", FT_DUR, OFF_GLOBAL(scrape_interval_ms), "1m", DUR_MIN, 30 * DAY_MS, 0, NULL,
     NULL},
    {"scrape_timeout", FT_DUR, OFF_GLOBAL(scrape_timeout_ms), "10s", DUR_MIN, 3600000, 0, NULL,
     NULL},
    {"external_labels", FT_LABELS, OFF_GLOBAL(external_labels), NULL, 0, 0, 0, NULL, NULL},
    {"evaluation_interval", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
     "not used by collectord (it evaluates no rules)"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void parse_downsample(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj);

static const struct field retention_fields[] = {
    {"max_age", FT_DUR, OFF_RET(max_age_ms), "14d", 0, 100LL * 365 * DAY_MS, 0, NULL, NULL},
    {"max_bytes", FT_SIZE, OFF_RET(max_bytes), "20GiB", 0, 1LL << 50, 0, NULL, NULL},
    {"max_snapshots_per_target", FT_INT, OFF_RET(max_snapshots_per_target), "0", 0, 100000000, 0,
     NULL, NULL},
    {"downsample", FT_CUSTOM, 0, NULL, 0, 0, 0, parse_downsample, NULL},
    {"interval", FT_DUR, OFF_RET(interval_ms), "10m", 60000, DAY_MS, 0, NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void parse_retention(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj);

static const struct field storage_fields[] = {
    {"path", FT_PATH, OFF_STORAGE(path), "/var/lib/collectord/collectord.db", 0, 0, F_RESTART, NULL,
     NULL},
    {"retention", FT_CUSTOM, 0, NULL, 0, 0, 0, parse_retention, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const struct field query_fields[] = {
    {"socket", FT_PATH, OFF_QUERY(socket), "/run/collectord/collectord.sock", 0, 0, F_RESTART, NULL,
     NULL},
    {"socket_mode", FT_MODE, OFF_QUERY(socket_mode), "0660", 0, 0777, F_RESTART, NULL, NULL},
    {"socket_group", FT_STR, OFF_QUERY(socket_group), "", 0, 0, F_RESTART, NULL, NULL},
    {"listen", FT_STR, OFF_QUERY(listen), "", 0, 0, F_RESTART, NULL, NULL},
    {"token_file", FT_PATH, OFF_QUERY(token_file), "", 0, 0, 0, NULL, NULL},
    {"max_connections", FT_INT, OFF_QUERY(max_connections), "64", 1, 4096, F_RESTART, NULL, NULL},
    {"max_request_bytes", FT_SIZE, OFF_QUERY(max_request_bytes), "1MiB", KIB, 64 * MIB, 0, NULL,
     NULL},
    {"max_response_bytes", FT_SIZE, OFF_QUERY(max_response_bytes), "64MiB", 64 * KIB, 4 * GIB, 0,
     NULL, NULL},
    {"request_timeout", FT_DUR, OFF_QUERY(request_timeout_ms), "30s", DUR_MIN, 600000, 0, NULL,
     NULL},
    {"max_page_size", FT_INT, OFF_QUERY(max_page_size), "1000", 1, 100000, 0, NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const struct field limits_fields[] = {
    {"max_body_bytes", FT_SIZE, OFF_LIMITS(max_body_bytes), "64MiB", KIB, 4 * GIB, 0, NULL, NULL},
    {"max_decompressed_bytes", FT_SIZE, OFF_LIMITS(max_decompressed_bytes), "256MiB", MIB, 16 * GIB,
     0, NULL, NULL},
    {"max_concurrent_scrapes", FT_INT, OFF_LIMITS(max_concurrent_scrapes), "256", 1, 65536, 0, NULL,
     NULL},
    {"max_targets", FT_INT, OFF_LIMITS(max_targets), "10000", 1, 1000000, 0, NULL, NULL},
    {"ingest_queue_length", FT_INT, OFF_LIMITS(ingest_queue_length), "1024", 1, 1000000, F_RESTART,
     NULL, NULL},
    {"ingest_queue_bytes", FT_SIZE, OFF_LIMITS(ingest_queue_bytes), "64MiB", MIB, 64 * GIB,
     F_RESTART, NULL, NULL},
    {"parser_threads", FT_INT, OFF_LIMITS(parser_threads), "0", 0, 256, F_RESTART, NULL, NULL},
    {"max_goroutines", FT_INT, OFF_LIMITS(max_goroutines), "1000000", 1000, 100000000, 0, NULL,
     NULL},
    {"max_parse_memory", FT_SIZE, OFF_LIMITS(max_parse_memory), "512MiB", 16 * MIB, 64 * GIB, 0,
     NULL, NULL},
    {"shutdown_timeout", FT_DUR, OFF_LIMITS(shutdown_timeout_ms), "30s", DUR_MIN, 600000, 0, NULL,
     NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

struct section {
    const char *name;
    const struct field *fields;
};

/* The table-driven sections, for defaults, dump and the reload check. */
static const struct section sections[] = {
    {"global", global_fields}, {"storage", storage_fields}, {"storage.retention", retention_fields},
    {"query", query_fields},   {"limits", limits_fields},
};

static void parse_retention(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    parse_map(cx, v, kp, retention_fields, obj);
}

static void parse_downsample(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_config *c = obj;
    free(c->storage.retention.downsample);
    c->storage.retention.downsample = NULL;
    c->storage.retention.n_downsample = 0;
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    size_t n = (size_t)(top - it);
    if (n > 16) {
        cx_error(cx, v, kp, "at most 16 tiers, got %zu", n);
        return;
    }
    if (n == 0)
        return;
    struct cd_downsample_tier *t = calloc(n, sizeof(*t));
    if (t == NULL) {
        cx_oom(cx);
        return;
    }
    static const struct field tier_fields[] = {
        {"after", FT_DUR, offsetof(struct cd_downsample_tier, after_ms), NULL, 60000,
         100LL * 365 * DAY_MS, 0, NULL, NULL},
        {"keep_one_per", FT_DUR, offsetof(struct cd_downsample_tier, keep_one_per_ms), NULL,
         DUR_MIN, 365 * DAY_MS, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
    };
    for (size_t i = 0; i < n; i++, it++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL)
            continue;
        uint64_t seen = parse_map(cx, m, sub, tier_fields, &t[i]);
        if (!seen_key(seen, tier_fields, "after") || !seen_key(seen, tier_fields, "keep_one_per")) {
            cx_error(cx, m, sub, "a tier needs both after and keep_one_per");
            continue;
        }
        if (t[i].keep_one_per_ms > t[i].after_ms)
            cx_error(cx, m, sub,
                     "keep_one_per must not be longer than after (the tier would thin snapshots "
                     "younger than itself)");
        if (i > 0 && t[i].after_ms <= t[i - 1].after_ms)
            cx_error(cx, m, sub, "tiers must be in increasing order of after");
        else if (i > 0 && t[i].keep_one_per_ms < t[i - 1].keep_one_per_ms)
            cx_error(cx, m, sub,
                     "keep_one_per must not shrink from one tier to the next (older data would "
                     "be kept denser than newer)");
    }
    c->storage.retention.downsample = t;
    c->storage.retention.n_downsample = n;
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses                                                                                  */

int cd_config_parse_address(const char *in, enum cd_scheme def, enum cd_scheme *scheme,
                            char **address, const char **why)
{
    enum cd_scheme sc = def;
    const char *p = in;
    static const struct {
        const char *prefix;
        enum cd_scheme s;
    } prefixes[] = {
        {"http://", CD_SCHEME_HTTP},
        {"https://", CD_SCHEME_HTTPS},
        {"gops://", CD_SCHEME_GOPS},
    };
    for (size_t i = 0; i < 3; i++) {
        if (strncasecmp(p, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0) {
            sc = prefixes[i].s;
            p += strlen(prefixes[i].prefix);
            break;
        }
    }
    if (strstr(p, "://") != NULL) {
        *why = "unknown scheme (expected http://, https:// or gops://)";
        return -EINVAL;
    }
    size_t len = strlen(p);
    if (len == 0) {
        *why = "empty address";
        return -EINVAL;
    }
    if (len > 300) {
        *why = "address longer than 300 bytes";
        return -EINVAL;
    }
    for (const char *q = p; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\') {
            *why = c == '/' ? "not a host:port (a path or URL is not allowed here)"
                            : "not a host:port (unexpected character)";
            return -EINVAL;
        }
    }
    const char *host = p;
    size_t hlen;
    const char *port = NULL;
    if (p[0] == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL) {
            *why = "missing ] after IPv6 address";
            return -EINVAL;
        }
        hlen = (size_t)(close - p) + 1;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0') {
            *why = "not a host:port";
            return -EINVAL;
        }
        for (const char *q = p + 1; q < close; q++) {
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.' && *q != '%') {
                *why = "invalid IPv6 address";
                return -EINVAL;
            }
        }
        if (hlen <= 2) {
            *why = "empty host";
            return -EINVAL;
        }
    } else {
        const char *colon = strchr(p, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            *why = "IPv6 addresses must be written in brackets, e.g. [::1]:6060";
            return -EINVAL;
        }
        hlen = colon ? (size_t)(colon - p) : len;
        port = colon ? colon + 1 : NULL;
        if (hlen == 0) {
            *why = "empty host";
            return -EINVAL;
        }
        for (size_t i = 0; i < hlen; i++) {
            char c = host[i];
            if (!(isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_')) {
                *why = "invalid host name";
                return -EINVAL;
            }
        }
    }
    int portn;
    if (port == NULL) {
        if (sc == CD_SCHEME_GOPS) {
            *why = "gops targets need a port (gops://host:port)";
            return -EINVAL;
        }
        portn = sc == CD_SCHEME_HTTPS ? 443 : 80;
    } else if (cd_str_to_int(port, 1, 65535, &portn) < 0 || port[0] == '+' || port[0] == '-') {
        *why = "port must be a number between 1 and 65535";
        return -EINVAL;
    }
    char *a = cd_str_printf("%.*s:%d", (int)hlen, host, portn);
    if (a == NULL)
        return -ENOMEM;
    *address = a;
    *scheme = sc;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Scrape configs                                                                             */

#define OFF_JOB(f) offsetof(struct cd_job_conf, f)

/* Job-level state that only lives while the job is parsed. */
struct jobx {
    struct cd_job_conf *job;
    yaml_node_t *pprof_node;
    char pprof_kp[KP_MAX];
    yaml_node_t *gops_node;
    char gops_kp[KP_MAX];
    yaml_node_t *static_node;
    char static_kp[KP_MAX];
    bool has_basic, has_authz, has_bearer, has_bearer_file;
    yaml_node_t *auth_node;
    char auth_kp[KP_MAX];
};

static void parse_params(struct ycx *cx, yaml_node_t *v, const char *kp, struct cd_params *out)
{
    cd_params_free(out);
    if (is_null(v))
        return;
    struct kvs items;
    if (map_items(cx, v, kp, &items) < 0) {
        free(items.v);
        return;
    }
    for (size_t i = 0; i < items.n; i++) {
        char sub[KP_MAX];
        kp_join(sub, sizeof(sub), kp, items.v[i].key);
        const char *name = items.v[i].key;
        if (name[0] == '\0' || strlen(name) > 128) {
            cx_error(cx, items.v[i].k, sub, "parameter names must be 1 to 128 bytes");
            continue;
        }
        yaml_node_t *val = items.v[i].v;
        if (!cx_visit(cx, val, sub))
            break;
        /* url.Values: a list of strings; one string is taken as a one-element list. */
        if (val->type == YAML_SCALAR_NODE) {
            if (!is_null(val) && cd_params_add(out, name, (const char *)val->data.scalar.value) < 0)
                cx_oom(cx);
            continue;
        }
        yaml_node_item_t *it, *top;
        if (seq_items(cx, val, sub, &it, &top) < 0)
            continue;
        for (size_t k = 0; it < top; it++, k++) {
            char sub2[KP_MAX];
            kp_index(sub2, sizeof(sub2), sub, k);
            yaml_node_t *e = cx_node(cx, *it);
            if (e == NULL || !cx_visit(cx, e, sub2))
                break;
            const char *s = scalar(cx, e, sub2, "a string");
            if (s != NULL && strlen(s) > 1024) {
                cx_error(cx, e, sub2, "parameter values are limited to 1024 bytes");
                continue;
            }
            if (s != NULL && cd_params_add(out, name, s) < 0)
                cx_oom(cx);
        }
    }
    if (out->n > 64)
        cx_error(cx, v, kp, "at most 64 parameter values, got %zu", out->n);
    free(items.v);
}

static void job_params(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    parse_params(cx, v, kp, &jx->job->params);
}

static void job_scheme(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    const char *s = scalar(cx, v, kp, "http, https or gops");
    if (s == NULL)
        return;
    if (cd_scheme_parse(s, &jx->job->scheme) < 0)
        cx_error(cx, v, kp, "expected http, https or gops, got \"%s\"", s);
}

static void job_static(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    jx->static_node = v;
    snprintf(jx->static_kp, sizeof(jx->static_kp), "%s", kp);
}

/* Static groups are parsed after the whole job, because the scheme and relabel rules decide how
 * strictly their addresses are checked. */
static void job_static_late(struct ycx *cx, struct jobx *jx)
{
    yaml_node_t *v = jx->static_node;
    const char *kp = jx->static_kp;
    struct cd_job_conf *job = jx->job;
    yaml_node_item_t *it, *top;
    if (v == NULL || seq_items(cx, v, kp, &it, &top) < 0)
        return;
    for (size_t i = 0; it < top; it++, i++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL)
            continue;
        struct kvs items;
        if (map_items(cx, m, sub, &items) < 0) {
            free(items.v);
            continue;
        }
        struct cd_group *g = cd_groups_add(&job->static_groups);
        if (g == NULL) {
            free(items.v);
            cx_oom(cx);
            return;
        }
        g->source = cd_str_printf("%s", sub);
        for (size_t k = 0; k < items.n; k++) {
            char sub2[KP_MAX];
            kp_join(sub2, sizeof(sub2), sub, items.v[k].key);
            if (strcmp(items.v[k].key, "labels") == 0) {
                parse_labels(cx, items.v[k].v, sub2, &g->labels, true);
                continue;
            }
            if (strcmp(items.v[k].key, "targets") != 0) {
                static const struct field f[] = {
                    {"targets", FT_CUSTOM, 0, NULL, 0, 0, 0, NULL, NULL},
                    {"labels", FT_CUSTOM, 0, NULL, 0, 0, 0, NULL, NULL},
                    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL}};
                unknown_key(cx, &items.v[k], sub, f);
                continue;
            }
            yaml_node_item_t *t, *ttop;
            if (seq_items(cx, items.v[k].v, sub2, &t, &ttop) < 0)
                continue;
            for (size_t j = 0; t < ttop; t++, j++) {
                char sub3[KP_MAX];
                kp_index(sub3, sizeof(sub3), sub2, j);
                yaml_node_t *tn = cx_node(cx, *t);
                if (tn == NULL || !cx_visit(cx, tn, sub3))
                    break;
                const char *s = scalar(cx, tn, sub3, "a target address (host:port)");
                if (s == NULL)
                    continue;
                if (job->n_relabel == 0) {
                    enum cd_scheme sc;
                    char *addr = NULL;
                    const char *why = NULL;
                    int rc = cd_config_parse_address(s, job->scheme, &sc, &addr, &why);
                    if (rc == -ENOMEM) {
                        cx_oom(cx);
                        return;
                    }
                    if (rc < 0) {
                        cx_error(cx, tn, sub3, "\"%s\" is not a valid target: %s", s, why);
                        continue;
                    }
                    free(addr);
                } else if (s[0] == '\0' || strlen(s) > 1024) {
                    /* relabeling may rewrite __address__: checked when targets are built */
                    cx_error(cx, tn, sub3, "expected a target address");
                    continue;
                }
                if (cd_group_add_entry(g, s, NULL) < 0) {
                    cx_oom(cx);
                    return;
                }
            }
        }
        free(items.v);
    }
}

static void parse_strlist(struct ycx *cx, yaml_node_t *v, const char *kp, struct cd_strv *out,
                          size_t max, const char *what)
{
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    if ((size_t)(top - it) > max) {
        cx_error(cx, v, kp, "at most %zu entries, got %zu", max, (size_t)(top - it));
        return;
    }
    for (size_t i = 0; it < top; it++, i++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        yaml_node_t *e = cx_node(cx, *it);
        if (e == NULL || !cx_visit(cx, e, sub))
            break;
        const char *s = scalar(cx, e, sub, what);
        if (s == NULL)
            continue;
        if (s[0] == '\0' || strlen(s) > 4096) {
            cx_error(cx, e, sub, "expected %s", what);
            continue;
        }
        if (cd_strv_push(out, s) < 0)
            cx_oom(cx);
    }
}

static void file_sd_files(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_file_sd_conf *f = obj;
    struct cd_strv raw = {0};
    parse_strlist(cx, v, kp, &raw, 256, "a file name or pattern");
    yaml_node_item_t *it = v->type == YAML_SEQUENCE_NODE ? v->data.sequence.items.start : NULL;
    for (size_t i = 0; i < raw.n; i++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        yaml_node_t *e = it != NULL ? cx_node(cx, it[i]) : v;
        char *abs = path_resolve(cx->dir, raw.v[i]);
        if (abs == NULL) {
            cx_oom(cx);
            break;
        }
        const char *base = strrchr(abs, '/');
        base = base ? base + 1 : abs;
        if (strpbrk(abs, "*?[") != NULL && strpbrk(abs, "*?[") < base)
            cx_error(cx, e, sub, "\"%s\": patterns are only allowed in the last path element",
                     raw.v[i]);
        else if (!cd_str_has_suffix(base, ".json") && !cd_str_has_suffix(base, ".yml") &&
                 !cd_str_has_suffix(base, ".yaml"))
            cx_error(cx, e, sub, "\"%s\": file names must end in .json, .yml or .yaml", raw.v[i]);
        else if (cd_strv_push(&f->files, abs) < 0)
            cx_oom(cx);
        free(abs);
    }
    cd_strv_free(&raw);
}

static void dns_names(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_dns_sd_conf *d = obj;
    parse_strlist(cx, v, kp, &d->names, 256, "a DNS name");
    for (size_t i = 0; i < d->names.n; i++) {
        for (const char *p = d->names.v[i]; *p; p++) {
            if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_')) {
                cx_error(cx, v, kp, "\"%s\" is not a DNS name", d->names.v[i]);
                break;
            }
        }
        if (strlen(d->names.v[i]) > 253)
            cx_error(cx, v, kp, "\"%s\" is longer than 253 bytes", d->names.v[i]);
    }
}

static void dns_type(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_dns_sd_conf *d = obj;
    const char *s = scalar(cx, v, kp, "SRV, A or AAAA");
    if (s == NULL)
        return;
    if (strcasecmp(s, "SRV") == 0)
        d->type = CD_DNS_SRV;
    else if (strcasecmp(s, "A") == 0)
        d->type = CD_DNS_A;
    else if (strcasecmp(s, "AAAA") == 0)
        d->type = CD_DNS_AAAA;
    else if (strcasecmp(s, "MX") == 0 || strcasecmp(s, "NS") == 0)
        cx_error(cx, v, kp, "%s records are not supported (expected SRV, A or AAAA)", s);
    else
        cx_error(cx, v, kp, "expected SRV, A or AAAA, got \"%s\"", s);
}

static void local_exe(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_local_sd_conf *l = obj;
    const char *s = scalar(cx, v, kp, "a regular expression");
    if (s == NULL)
        return;
    struct cd_err e;
    cd_err_init(&e);
    cd_regex_free(&l->exe);
    l->exe_set = false;
    if (cd_regex_compile(&l->exe, s, &e) < 0) {
        cx_error(cx, v, kp, "invalid regex: %s", cd_err_msg(&e));
        return;
    }
    l->exe_set = true;
}

static const struct field file_sd_fields[] = {
    {"files", FT_CUSTOM, 0, NULL, 0, 0, 0, file_sd_files, NULL},
    {"refresh_interval", FT_DUR, offsetof(struct cd_file_sd_conf, refresh_interval_ms), "5m",
     DUR_MIN, DAY_MS, 0, NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const struct field dns_sd_fields[] = {
    {"names", FT_CUSTOM, 0, NULL, 0, 0, 0, dns_names, NULL},
    {"type", FT_CUSTOM, 0, NULL, 0, 0, 0, dns_type, NULL},
    {"port", FT_INT, offsetof(struct cd_dns_sd_conf, port), "0", 0, 65535, 0, NULL, NULL},
    {"refresh_interval", FT_DUR, offsetof(struct cd_dns_sd_conf, refresh_interval_ms), "30s",
     DUR_MIN, DAY_MS, 0, NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const struct field local_sd_fields[] = {
    {"gops", FT_BOOL, offsetof(struct cd_local_sd_conf, gops), "true", 0, 0, 0, NULL, NULL},
    {"pprof", FT_BOOL, offsetof(struct cd_local_sd_conf, pprof), "true", 0, 0, 0, NULL, NULL},
    {"refresh_interval", FT_DUR, offsetof(struct cd_local_sd_conf, refresh_interval_ms), "30s",
     DUR_MIN, DAY_MS, 0, NULL, NULL},
    {"exe", FT_CUSTOM, 0, NULL, 0, 0, 0, local_exe, NULL},
    {"probe_timeout", FT_DUR, offsetof(struct cd_local_sd_conf, probe_timeout_ms), "1s", 50, 30000,
     0, NULL, NULL},
    {"max_probes", FT_INT, offsetof(struct cd_local_sd_conf, max_probes), "64", 0, 10000, 0, NULL,
     NULL},
    {"max_processes", FT_INT, offsetof(struct cd_local_sd_conf, max_processes), "1000", 1, 100000,
     0, NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void job_file_sd(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_job_conf *job = ((struct jobx *)obj)->job;
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    size_t n = (size_t)(top - it);
    if (n > 64) {
        cx_error(cx, v, kp, "at most 64 entries, got %zu", n);
        return;
    }
    job->file_sd = calloc(n ? n : 1, sizeof(*job->file_sd));
    if (job->file_sd == NULL) {
        cx_oom(cx);
        return;
    }
    for (size_t i = 0; i < n; i++, it++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        struct cd_file_sd_conf *f = &job->file_sd[job->n_file_sd++];
        apply_defaults(cx, file_sd_fields, f);
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL)
            continue;
        uint64_t seen = parse_map(cx, m, sub, file_sd_fields, f);
        if (!seen_key(seen, file_sd_fields, "files") && m->type == YAML_MAPPING_NODE)
            cx_error(cx, m, sub, "files is required (a list of file names or patterns)");
    }
}

static void job_dns_sd(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_job_conf *job = ((struct jobx *)obj)->job;
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    size_t n = (size_t)(top - it);
    if (n > 64) {
        cx_error(cx, v, kp, "at most 64 entries, got %zu", n);
        return;
    }
    job->dns_sd = calloc(n ? n : 1, sizeof(*job->dns_sd));
    if (job->dns_sd == NULL) {
        cx_oom(cx);
        return;
    }
    for (size_t i = 0; i < n; i++, it++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        struct cd_dns_sd_conf *d = &job->dns_sd[job->n_dns_sd++];
        apply_defaults(cx, dns_sd_fields, d);
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL)
            continue;
        uint64_t seen = parse_map(cx, m, sub, dns_sd_fields, d);
        if (m->type != YAML_MAPPING_NODE)
            continue;
        if (!seen_key(seen, dns_sd_fields, "names"))
            cx_error(cx, m, sub, "names is required (a list of DNS names)");
        if (d->type != CD_DNS_SRV && d->port == 0)
            cx_error(cx, m, sub, "port is required for %s records",
                     d->type == CD_DNS_A ? "A" : "AAAA");
    }
}

static void job_local_sd(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_job_conf *job = ((struct jobx *)obj)->job;
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    size_t n = (size_t)(top - it);
    if (n > 8) {
        cx_error(cx, v, kp, "at most 8 entries, got %zu", n);
        return;
    }
    job->local_sd = calloc(n ? n : 1, sizeof(*job->local_sd));
    if (job->local_sd == NULL) {
        cx_oom(cx);
        return;
    }
    for (size_t i = 0; i < n; i++, it++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        struct cd_local_sd_conf *l = &job->local_sd[job->n_local_sd++];
        apply_defaults(cx, local_sd_fields, l);
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL)
            continue;
        parse_map(cx, m, sub, local_sd_fields, l);
        if (!l->gops && !l->pprof)
            cx_error(cx, m, sub, "gops and pprof are both false: this would find nothing");
    }
}

/* relabel_configs */

static void rl_source(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_relabel_rule *r = obj;
    struct cd_strv names = {0};
    parse_strlist(cx, v, kp, &names, 64, "a label name");
    for (size_t i = 0; i < names.n; i++) {
        if (!cd_relabel_label_name_valid(names.v[i]))
            cx_error(cx, v, kp, "\"%s\" is not a valid label name", names.v[i]);
    }
    r->source_labels = names.v;
    r->n_source_labels = names.n;
    r->source_labels_set = true;
}

static void rl_regex(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_relabel_rule *r = obj;
    const char *s = scalar(cx, v, kp, "a regular expression");
    if (s == NULL)
        return;
    struct cd_err e;
    cd_err_init(&e);
    cd_regex_free(&r->regex);
    if (cd_regex_compile(&r->regex, s, &e) < 0) {
        cx_error(cx, v, kp, "invalid regex \"%s\": %s", s, cd_err_msg(&e));
        /* keep the rule valid for later checks */
        cd_regex_compile(&r->regex, CD_RELABEL_DEFAULT_REGEX, NULL);
    }
    r->regex_set = true;
}

static void rl_action(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_relabel_rule *r = obj;
    const char *s = scalar(cx, v, kp, "an action");
    if (s == NULL)
        return;
    if (cd_relabel_action_parse(s, &r->action) < 0)
        cx_error(cx, v, kp,
                 "unknown action \"%s\" (expected replace, keep, drop, keepequal, dropequal, "
                 "hashmod, labelmap, labeldrop, labelkeep, lowercase or uppercase)",
                 s);
}

static void rl_modulus(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_relabel_rule *r = obj;
    const char *s = scalar(cx, v, kp, "a positive integer");
    if (s == NULL)
        return;
    uint64_t m;
    if (cd_str_to_u64(s, &m) < 0 || m > (1ULL << 62))
        cx_error(cx, v, kp, "expected a positive integer, got \"%s\"", s);
    else
        r->modulus = m;
}

static const struct field relabel_fields[] = {
    {"source_labels", FT_CUSTOM, 0, NULL, 0, 0, 0, rl_source, NULL},
    {"separator", FT_STR, offsetof(struct cd_relabel_rule, separator), NULL, 0, 0, 0, NULL, NULL},
    {"regex", FT_CUSTOM, 0, NULL, 0, 0, 0, rl_regex, NULL},
    {"modulus", FT_CUSTOM, 0, NULL, 0, 0, 0, rl_modulus, NULL},
    {"target_label", FT_STR, offsetof(struct cd_relabel_rule, target_label), NULL, 0, 0, 0, NULL,
     NULL},
    {"replacement", FT_STR, offsetof(struct cd_relabel_rule, replacement), NULL, 0, 0, 0, NULL,
     NULL},
    {"action", FT_CUSTOM, 0, NULL, 0, 0, 0, rl_action, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void job_relabel(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_job_conf *job = ((struct jobx *)obj)->job;
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    size_t n = (size_t)(top - it);
    if (n > 256) {
        cx_error(cx, v, kp, "at most 256 rules, got %zu", n);
        return;
    }
    job->relabel = calloc(n ? n : 1, sizeof(*job->relabel));
    if (job->relabel == NULL) {
        cx_oom(cx);
        return;
    }
    for (size_t i = 0; i < n; i++, it++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        struct cd_relabel_rule *r = &job->relabel[job->n_relabel++];
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL)
            continue;
        if (is_null(m)) {
            cx_error(cx, m, sub, "empty relabeling rule");
            continue;
        }
        size_t before = cx->n_errors;
        parse_map(cx, m, sub, relabel_fields, r);
        if (cx->n_errors != before)
            continue;
        struct cd_err e;
        cd_err_init(&e);
        if (cd_relabel_validate(r, &e) < 0)
            cx_error(cx, m, sub, "%s", cd_err_msg(&e));
    }
}

/* Auth and TLS */

static void job_basic_auth(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    struct cd_job_conf *job = jx->job;
    struct ba {
        char *username, *username_file, *password, *password_file;
    } b = {0};
    static const struct field f[] = {
        {"username", FT_STR, offsetof(struct ba, username), NULL, 0, 0, 0, NULL, NULL},
        {"username_file", FT_PATH, offsetof(struct ba, username_file), NULL, 0, 0, 0, NULL, NULL},
        {"password", FT_STR, offsetof(struct ba, password), NULL, 0, 0, F_SECRET, NULL, NULL},
        {"password_file", FT_PATH, offsetof(struct ba, password_file), NULL, 0, 0, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
    };
    jx->has_basic = true;
    jx->auth_node = v;
    parse_map(cx, v, kp, f, &b);
    char msg[300];
    if (b.username != NULL && b.username_file != NULL)
        cx_error(cx, v, kp, "at most one of username and username_file");
    if (b.password != NULL && b.password_file != NULL && b.password_file[0] != '\0')
        cx_error(cx, v, kp, "at most one of password and password_file");
    if (b.username_file != NULL && b.username_file[0] != '\0') {
        char *u = NULL;
        if (read_secret(b.username_file, &u, msg, sizeof(msg)) < 0) {
            cx_error(cx, v, kp, "username_file: %s", msg);
        } else {
            free(b.username);
            b.username = u;
        }
    }
    if (b.password_file != NULL && b.password_file[0] != '\0') {
        char *p = NULL;
        if (read_secret(b.password_file, &p, msg, sizeof(msg)) < 0)
            cx_error(cx, v, kp, "password_file: %s", msg);
        else {
            free(b.password);
            b.password = p;
        }
        job->password_file = b.password_file;
        b.password_file = NULL;
    }
    if (b.username == NULL || b.username[0] == '\0')
        cx_error(cx, v, kp, "username is required");
    free(job->auth.username);
    free(job->auth.password);
    job->auth.username = b.username;
    job->auth.password = b.password != NULL ? b.password : cd_str_dup("");
    free(b.username_file);
    free(b.password_file);
}

static void job_authorization(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    struct cd_job_conf *job = jx->job;
    struct az {
        char *type, *credentials, *credentials_file;
    } a = {0};
    static const struct field f[] = {
        {"type", FT_STR, offsetof(struct az, type), NULL, 0, 0, 0, NULL, NULL},
        {"credentials", FT_STR, offsetof(struct az, credentials), NULL, 0, 0, F_SECRET, NULL, NULL},
        {"credentials_file", FT_PATH, offsetof(struct az, credentials_file), NULL, 0, 0, 0, NULL,
         NULL},
        {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
    };
    jx->has_authz = true;
    jx->auth_node = v;
    parse_map(cx, v, kp, f, &a);
    if (a.type != NULL && strcasecmp(a.type, "basic") == 0)
        cx_error(cx, v, kp, "type cannot be Basic here: use basic_auth");
    if (a.type != NULL && (a.type[0] == '\0' || strpbrk(a.type, " \t\r\n") != NULL))
        cx_error(cx, v, kp, "type must be one word, e.g. Bearer");
    if (a.credentials != NULL && a.credentials_file != NULL)
        cx_error(cx, v, kp, "at most one of credentials and credentials_file");
    if (a.credentials_file != NULL && a.credentials_file[0] != '\0') {
        char msg[300];
        char *c = NULL;
        if (read_secret(a.credentials_file, &c, msg, sizeof(msg)) < 0)
            cx_error(cx, v, kp, "credentials_file: %s", msg);
        else {
            free(a.credentials);
            a.credentials = c;
        }
        job->bearer_file = a.credentials_file;
        a.credentials_file = NULL;
    }
    if (a.credentials == NULL || a.credentials[0] == '\0')
        cx_error(cx, v, kp, "credentials or credentials_file is required");
    free(job->auth.bearer);
    free(job->auth.auth_type);
    job->auth.bearer = a.credentials;
    job->auth.auth_type = a.type != NULL ? a.type : cd_str_dup("Bearer");
    free(a.credentials_file);
}

static void job_bearer_token(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    const char *s = scalar(cx, v, kp, "a string");
    if (s == NULL)
        return;
    jx->has_bearer = true;
    jx->auth_node = v;
    cd_str_replace(&jx->job->auth.bearer, s);
    cd_str_replace(&jx->job->auth.auth_type, "Bearer");
}

static void job_bearer_token_file(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    const char *s = scalar(cx, v, kp, "a file name");
    if (s == NULL)
        return;
    jx->has_bearer_file = true;
    jx->auth_node = v;
    if (s[0] == '\0')
        return;
    char *path = path_resolve(cx->dir, s);
    if (path == NULL) {
        cx_oom(cx);
        return;
    }
    char msg[300];
    char *tok = NULL;
    if (read_secret(path, &tok, msg, sizeof(msg)) < 0) {
        cx_error(cx, v, kp, "%s", msg);
        free(path);
        return;
    }
    free(jx->job->bearer_file);
    jx->job->bearer_file = path;
    free(jx->job->auth.bearer);
    jx->job->auth.bearer = tok;
    cd_str_replace(&jx->job->auth.auth_type, "Bearer");
}

static void check_readable(struct ycx *cx, yaml_node_t *v, const char *kp, const char *what,
                           const char *path)
{
    if (path == NULL || path[0] == '\0')
        return;
    if (access(path, R_OK) != 0)
        cx_error(cx, v, kp, "%s '%s': %s", what, path, strerror(errno));
}

static void job_tls(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct cd_job_conf *job = ((struct jobx *)obj)->job;
    static const struct field f[] = {
        {"ca_file", FT_PATH, offsetof(struct cd_tls, ca_file), NULL, 0, 0, 0, NULL, NULL},
        {"cert_file", FT_PATH, offsetof(struct cd_tls, cert_file), NULL, 0, 0, 0, NULL, NULL},
        {"key_file", FT_PATH, offsetof(struct cd_tls, key_file), NULL, 0, 0, 0, NULL, NULL},
        {"server_name", FT_STR, offsetof(struct cd_tls, server_name), NULL, 0, 0, 0, NULL, NULL},
        {"insecure_skip_verify", FT_BOOL, offsetof(struct cd_tls, insecure_skip_verify), NULL, 0, 0,
         0, NULL, NULL},
        {"ca", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
         "inline certificates are not supported: use ca_file"},
        {"cert", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
         "inline certificates are not supported: use cert_file"},
        {"key", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "inline keys are not supported: use key_file"},
        {"min_version", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
         "not supported (collectord uses libcurl's default, TLS 1.2 or newer)"},
        {"max_version", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "not supported"},
        {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
    };
    parse_map(cx, v, kp, f, &job->tls);
    struct cd_tls *t = &job->tls;
    bool cert = t->cert_file != NULL && t->cert_file[0] != '\0';
    bool key = t->key_file != NULL && t->key_file[0] != '\0';
    if (cert != key)
        cx_error(cx, v, kp, "cert_file and key_file must be given together");
    check_readable(cx, v, kp, "ca_file", t->ca_file);
    check_readable(cx, v, kp, "cert_file", t->cert_file);
    check_readable(cx, v, kp, "key_file", t->key_file);
}

/* profiling_config / pprof_config / gops_config */

static void job_profiling(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj);
static void job_gops(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    jx->gops_node = v;
    snprintf(jx->gops_kp, sizeof(jx->gops_kp), "%s", kp);
}

static void prof_path_prefix(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    const char *s = scalar(cx, v, kp, "a path");
    if (s == NULL)
        return;
    if (s[0] != '\0' && (s[0] != '/' || strpbrk(s, "?# \t") != NULL || strlen(s) > 512)) {
        cx_error(cx, v, kp, "expected a path starting with /, got \"%s\"", s);
        return;
    }
    cd_str_replace(&jx->job->path_prefix, s);
}

static void prof_pprof(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct jobx *jx = obj;
    jx->pprof_node = v;
    snprintf(jx->pprof_kp, sizeof(jx->pprof_kp), "%s", kp);
}

static const struct field profiling_fields[] = {
    {"path_prefix", FT_CUSTOM, 0, NULL, 0, 0, 0, prof_path_prefix, NULL},
    {"pprof_config", FT_CUSTOM, 0, NULL, 0, 0, 0, prof_pprof, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void job_profiling(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    parse_map(cx, v, kp, profiling_fields, obj);
}

static const char sd_unsupported[] =
    "not supported by collectord (discovery: static_configs, file_sd_configs, dns_sd_configs, "
    "local_sd_configs)";

static const struct field job_fields[] = {
    {"job_name", FT_STR, OFF_JOB(name), NULL, 0, 0, 0, NULL, NULL},
    {"scrape_interval", FT_DUR, OFF_JOB(scrape_interval_ms), NULL, DUR_MIN, 30 * DAY_MS, 0, NULL,
     NULL},
    {"scrape_timeout", FT_DUR, OFF_JOB(scrape_timeout_ms), NULL, 0, 3600000, 0, NULL, NULL},
    {"scheme", FT_CUSTOM, 0, NULL, 0, 0, 0, job_scheme, NULL},
    {"params", FT_CUSTOM, 0, NULL, 0, 0, 0, job_params, NULL},
    {"honor_labels", FT_BOOL, OFF_JOB(honor_labels), NULL, 0, 0, 0, NULL, NULL},
    {"honor_timestamps", FT_BOOL, OFF_JOB(honor_timestamps), NULL, 0, 0, 0, NULL, NULL},
    {"normalized_addresses", FT_BOOL, OFF_JOB(normalized_addresses), NULL, 0, 0, 0, NULL, NULL},
    {"follow_redirects", FT_BOOL, OFF_JOB(follow_redirects), NULL, 0, 0, 0, NULL, NULL},
    {"enable_http2", FT_BOOL, OFF_JOB(enable_http2), NULL, 0, 0, 0, NULL, NULL},
    {"proxy_url", FT_STR, OFF_JOB(proxy_url), NULL, 0, 0, 0, NULL, NULL},
    {"body_size_limit", FT_SIZE, OFF_JOB(body_size_limit), NULL, 0, 4 * GIB, 0, NULL, NULL},
    {"static_configs", FT_CUSTOM, 0, NULL, 0, 0, 0, job_static, NULL},
    {"file_sd_configs", FT_CUSTOM, 0, NULL, 0, 0, 0, job_file_sd, NULL},
    {"dns_sd_configs", FT_CUSTOM, 0, NULL, 0, 0, 0, job_dns_sd, NULL},
    {"local_sd_configs", FT_CUSTOM, 0, NULL, 0, 0, 0, job_local_sd, NULL},
    {"relabel_configs", FT_CUSTOM, 0, NULL, 0, 0, 0, job_relabel, NULL},
    {"profiling_config", FT_CUSTOM, 0, NULL, 0, 0, 0, job_profiling, NULL},
    {"gops_config", FT_CUSTOM, 0, NULL, 0, 0, 0, job_gops, NULL},
    {"basic_auth", FT_CUSTOM, 0, NULL, 0, 0, 0, job_basic_auth, NULL},
    {"authorization", FT_CUSTOM, 0, NULL, 0, 0, 0, job_authorization, NULL},
    {"bearer_token", FT_CUSTOM, 0, NULL, 0, 0, F_SECRET, job_bearer_token, NULL},
    {"bearer_token_file", FT_CUSTOM, 0, NULL, 0, 0, 0, job_bearer_token_file, NULL},
    {"tls_config", FT_CUSTOM, 0, NULL, 0, 0, 0, job_tls, NULL},
    {"oauth2", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
     "not supported by collectord (use authorization, bearer_token_file or basic_auth)"},
    {"http_headers", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "not supported by collectord"},
    {"no_proxy", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "not supported by collectord (use proxy_url)"},
    {"proxy_from_environment", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
     "not supported by collectord (use proxy_url)"},
    {"proxy_connect_header", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "not supported by collectord"},
    {"metric_relabel_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
     "not used by collectord (profiles have no metric labels; use relabel_configs)"},
    {"metrics_path", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
     "not used by collectord (use profiling_config.path_prefix and pprof_config.<kind>.path)"},
    {"kubernetes_sd_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL, sd_unsupported},
    {"consul_sd_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL, sd_unsupported},
    {"ec2_sd_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL, sd_unsupported},
    {"http_sd_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL, sd_unsupported},
    {"docker_sd_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL, sd_unsupported},
    {"gce_sd_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL, sd_unsupported},
    {"azure_sd_configs", FT_REJECT, 0, NULL, 0, 0, 0, NULL, sd_unsupported},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

/* Parses the job-level fields into jx (custom handlers take the jobx, plain ones the job). */
static uint64_t parse_job_map(struct ycx *cx, yaml_node_t *m, const char *kp, struct jobx *jx)
{
    /* Two passes over one table: plain fields land in the job, custom ones get the jobx. The
     * order in the file does not matter for anything below. */
    uint64_t seen = 0;
    struct kvs items;
    if (map_items(cx, m, kp, &items) < 0) {
        free(items.v);
        return 0;
    }
    /* relabel_configs first: static targets are checked more loosely when rules exist */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < items.n; i++) {
            const struct kv *it = &items.v[i];
            bool is_relabel = strcmp(it->key, "relabel_configs") == 0;
            if ((pass == 0) != is_relabel)
                continue;
            const struct field *f = NULL;
            size_t idx = 0;
            for (const struct field *t = job_fields; t->key != NULL; t++, idx++) {
                if (strcmp(t->key, it->key) == 0) {
                    f = t;
                    break;
                }
            }
            if (f == NULL) {
                unknown_key(cx, it, kp, job_fields);
                continue;
            }
            char sub[KP_MAX];
            kp_join(sub, sizeof(sub), kp, it->key);
            if (f->type == FT_REJECT) {
                cx_error(cx, it->k, sub, "%s", f->why);
                continue;
            }
            if (!cx_visit(cx, it->v, sub))
                break;
            if (f->type == FT_CUSTOM) {
                seen |= 1ULL << idx;
                f->fn(cx, it->v, sub, jx);
                continue;
            }
            if (is_null(it->v))
                continue;
            seen |= 1ULL << idx;
            const char *s = scalar(cx, it->v, sub, "a scalar");
            if (s == NULL)
                continue;
            char msg[256];
            const char *why = conv(f, s, (char *)jx->job + f->off, cx->dir, msg, sizeof(msg));
            if (why != NULL)
                cx_error(cx, it->v, sub, "%s", why);
        }
    }
    free(items.v);
    return seen;
}

/* One kind entry under pprof_config or gops_config. */
struct kindx {
    bool enabled;
    char *path;
    bool delta;
    int seconds;
    int64_t interval_ms;
    struct cd_params params;
    struct cd_sample_type *keep;
    size_t n_keep;
    struct ycx *cx;
};

static void kind_params(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    parse_params(cx, v, kp, &((struct kindx *)obj)->params);
}

static void kind_keep(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    struct kindx *k = obj;
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    size_t n = (size_t)(top - it);
    if (n > 32) {
        cx_error(cx, v, kp, "at most 32 entries, got %zu", n);
        return;
    }
    k->keep = calloc(n ? n : 1, sizeof(*k->keep));
    if (k->keep == NULL) {
        cx_oom(cx);
        return;
    }
    static const struct field f[] = {
        {"type", FT_STR, offsetof(struct cd_sample_type, type), NULL, 0, 0, 0, NULL, NULL},
        {"unit", FT_STR, offsetof(struct cd_sample_type, unit), NULL, 0, 0, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
    };
    for (size_t i = 0; i < n; i++, it++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL)
            continue;
        parse_map(cx, m, sub, f, &k->keep[k->n_keep++]);
    }
}

static const struct field kind_fields[] = {
    {"enabled", FT_BOOL, offsetof(struct kindx, enabled), NULL, 0, 0, 0, NULL, NULL},
    {"path", FT_STR, offsetof(struct kindx, path), NULL, 0, 0, 0, NULL, NULL},
    {"delta", FT_BOOL, offsetof(struct kindx, delta), NULL, 0, 0, 0, NULL, NULL},
    {"seconds", FT_INT, offsetof(struct kindx, seconds), NULL, 0, 3600, 0, NULL, NULL},
    {"interval", FT_DUR, offsetof(struct kindx, interval_ms), NULL, DUR_MIN, 30 * DAY_MS, 0, NULL,
     NULL},
    {"params", FT_CUSTOM, 0, NULL, 0, 0, 0, kind_params, NULL},
    {"keep_sample_type", FT_CUSTOM, 0, NULL, 0, 0, 0, kind_keep, NULL},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void kind_conf_free(struct cd_kind_conf *k)
{
    free(k->name);
    free(k->kind);
    free(k->path);
    cd_params_free(&k->params);
    for (size_t i = 0; i < k->n_keep_sample_type; i++) {
        free(k->keep_sample_type[i].type);
        free(k->keep_sample_type[i].unit);
    }
    free(k->keep_sample_type);
    memset(k, 0, sizeof(*k));
}

static char *join_path(const char *prefix, const char *path)
{
    if (prefix == NULL || prefix[0] == '\0')
        return cd_str_dup(path);
    size_t pl = strlen(prefix);
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    while (path[0] == '/' && path[1] == '/')
        path++;
    return cd_str_printf("%.*s%s", (int)pl, prefix, path);
}

static bool path_ok(const char *p)
{
    if (p[0] != '/' || strlen(p) > 1024)
        return false;
    for (const char *q = p; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return false;
    }
    return true;
}

static int sec_of(int64_t ms)
{
    int64_t s = ms / 1000;
    return s < 1 ? 1 : s > 86400 ? 86400 : (int)s;
}

/* Fills in the effective seconds/interval/timeout/path of one kind and checks them. */
static void kind_finish_inner(struct ycx *cx, struct cd_job_conf *job, struct cd_kind_conf *k,
                              yaml_node_t *n, const char *kp, bool gops)
{
    if (!k->interval_set)
        k->interval_ms = job->scrape_interval_ms;
    const struct cd_kind_info *info = k->info;
    if (gops) {
        k->seconds = info->gops_fixed_seconds;
        k->gops_cmd = info->gops_cmd;
        k->exclusive = info->exclusive;
    } else {
        bool timed = info != NULL && info->http_seconds;
        if (k->seconds_set && k->seconds > 0) {
            /* as given */
        } else if (k->delta) {
            k->seconds = sec_of(k->interval_ms);
        } else if (timed) {
            if (k->seconds_set) {
                cx_error(cx, n, kp, "seconds must be at least 1 for %s", k->kind);
                return;
            }
            int def = info->http_default_seconds;
            int max = sec_of(k->interval_ms);
            k->seconds = def < max ? def : max;
        } else {
            k->seconds = 0;
        }
        if (info != NULL && info->http_query != NULL && k->seconds > 0) {
            cx_error(cx, n, kp,
                     "%s does not take seconds or delta (Go rejects seconds together with %s)",
                     k->name, info->http_query);
            return;
        }
        k->exclusive = info != NULL ? info->exclusive : CD_EXCL_NONE;
        k->fixed_query = info != NULL ? info->http_query : NULL;
        if (k->path == NULL) {
            if (info == NULL) {
                if (k->enabled)
                    cx_error(cx, n, kp, "custom kind %s needs a path", k->name);
                k->path = cd_str_dup("/");
            } else {
                k->path = cd_str_printf("/debug/pprof%s", info->http_path);
            }
            if (k->path == NULL) {
                cx_oom(cx);
                return;
            }
        } else if (!path_ok(k->path)) {
            cx_error(cx, n, kp, "path must start with / and hold no spaces, ? or #, got \"%s\"",
                     k->path);
            return;
        }
        char *full = join_path(job->path_prefix, k->path);
        if (full == NULL) {
            cx_oom(cx);
            return;
        }
        free(k->path);
        k->path = full;
    }
    if ((int64_t)k->seconds * 1000 > k->interval_ms) {
        char iv[48];
        cd_config_fmt_duration(iv, sizeof(iv), k->interval_ms);
        if (gops)
            cx_error(cx, n, kp,
                     "the gops agent always runs %s for %d s: its interval must be at least "
                     "%ds, got %s",
                     k->kind, k->seconds, k->seconds, iv);
        else
            cx_error(cx, n, kp,
                     "seconds (%d) exceeds the interval (%s): each profile would still run when "
                     "the next is due",
                     k->seconds, iv);
    }
    k->timeout_ms = (int64_t)k->seconds * 1000 + job->scrape_timeout_ms;
}

static void kind_finish(struct ycx *cx, struct cd_job_conf *job, struct cd_kind_conf *k,
                        yaml_node_t *n, const char *kp, bool gops)
{
    /* A disabled kind only needs consistent values: its settings have no effect to be wrong. */
    bool was = cx->mute;
    cx->mute = was || !k->enabled;
    kind_finish_inner(cx, job, k, n, kp, gops);
    cx->mute = was;
}

static int kind_init_default(struct cd_kind_conf *k, const struct cd_kind_info *info, bool gops)
{
    memset(k, 0, sizeof(*k));
    k->name = cd_str_dup(info->name);
    k->kind = cd_str_dup(info->name);
    if (k->name == NULL || k->kind == NULL)
        return -ENOMEM;
    k->info = info;
    k->enabled = gops ? info->gops_default_enabled : info->http_default_enabled;
    return 0;
}

/* Builds job->http_kinds or job->gops_kinds: every built-in kind the source can serve (with its
 * defaults), overridden and extended by the entries in the file. */
static void parse_kinds(struct ycx *cx, struct cd_job_conf *job, yaml_node_t *node, const char *kp,
                        bool gops)
{
    int n_all;
    const struct cd_kind_info *all = cd_kind_all(&n_all);
    struct kvs items = {0};
    if (node != NULL && !is_null(node) && map_items(cx, node, kp, &items) < 0) {
        free(items.v);
        items.v = NULL;
        items.n = 0;
    }
    size_t cap = (size_t)n_all + items.n;
    struct cd_kind_conf *ks = calloc(cap ? cap : 1, sizeof(*ks));
    if (ks == NULL) {
        free(items.v);
        cx_oom(cx);
        return;
    }
    size_t n = 0;
    for (int i = 0; i < n_all; i++) {
        const struct cd_kind_info *info = &all[i];
        if (gops ? info->gops_cmd == 0 : info->http_path == NULL)
            continue;
        if (kind_init_default(&ks[n], info, gops) < 0) {
            cx_oom(cx);
            goto out;
        }
        n++;
    }
    if (items.n > 64) {
        cx_error(cx, node, kp, "at most 64 kinds, got %zu", items.n);
        goto out;
    }
    for (size_t i = 0; i < items.n; i++) {
        const struct kv *it = &items.v[i];
        char sub[KP_MAX];
        kp_join(sub, sizeof(sub), kp, it->key);
        const char *name = it->key;
        if (!cd_kind_name_valid(name)) {
            cx_error(cx, it->k, sub, "kind names are 1 to 48 characters of a-z, 0-9, _ and -");
            continue;
        }
        const char *canon = cd_kind_canonical(name);
        const struct cd_kind_info *info = cd_kind_lookup(name);
        if (gops && (info == NULL || info->gops_cmd == 0)) {
            cx_error(cx, it->k, sub,
                     "%s is not available from a gops agent (gops_config takes goroutine_dump, "
                     "memstats, stats, version, heap, cpu and trace)",
                     name);
            continue;
        }
        if (!gops && info != NULL && info->http_path == NULL) {
            cx_error(cx, it->k, sub,
                     "%s is only available from gops agents (put it under gops_config)", name);
            continue;
        }
        struct cd_kind_conf *k = NULL;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(ks[j].kind, canon) == 0)
                k = &ks[j];
        }
        if (k != NULL && k->in_file) {
            cx_error(cx, it->k, sub, "%s and %s are the same kind (%s); give it once", k->name,
                     name, canon);
            continue;
        }
        if (k == NULL) {
            k = &ks[n++];
            memset(k, 0, sizeof(*k));
            k->kind = cd_str_dup(canon);
            k->name = cd_str_dup(name);
            if (k->kind == NULL || k->name == NULL) {
                cx_oom(cx);
                goto out;
            }
        } else if (strcmp(k->name, name) != 0 && cd_str_replace(&k->name, name) < 0) {
            cx_oom(cx);
            goto out;
        }
        k->info = info;
        k->in_file = true;
        /* Parca: an entry without `enabled` is enabled. */
        struct kindx x;
        memset(&x, 0, sizeof(x));
        x.enabled = true;
        x.cx = cx;
        uint64_t seen = 0;
        if (!is_null(it->v))
            seen = parse_map(cx, it->v, sub, kind_fields, &x);
        if (gops) {
            static const char *not_gops[] = {"path", "delta", "params", "keep_sample_type"};
            for (size_t q = 0; q < 4; q++) {
                if (seen_key(seen, kind_fields, not_gops[q])) {
                    yaml_node_t *kn = NULL;
                    map_get(cx, it->v, not_gops[q], &kn);
                    char sub2[KP_MAX];
                    kp_join(sub2, sizeof(sub2), sub, not_gops[q]);
                    cx_error(cx, kn ? kn : it->v, sub2,
                             "not used for gops agents (they take a command byte, not a URL)");
                }
            }
            if (seen_key(seen, kind_fields, "seconds") && x.seconds != info->gops_fixed_seconds) {
                yaml_node_t *kn = map_get(cx, it->v, "seconds", NULL);
                char sub2[KP_MAX];
                kp_join(sub2, sizeof(sub2), sub, "seconds");
                if (info->gops_fixed_seconds > 0)
                    cx_error(cx, kn ? kn : it->v, sub2,
                             "the gops agent always runs %s for %d s; seconds cannot be changed",
                             canon, info->gops_fixed_seconds);
                else
                    cx_error(cx, kn ? kn : it->v, sub2, "%s from a gops agent takes no seconds",
                             canon);
            }
        }
        k->enabled = x.enabled;
        if (x.path != NULL) {
            free(k->path);
            k->path = x.path;
            x.path = NULL;
        }
        k->delta = x.delta;
        k->seconds_set = seen_key(seen, kind_fields, "seconds");
        k->seconds = x.seconds;
        k->interval_set = seen_key(seen, kind_fields, "interval");
        k->interval_ms = x.interval_ms;
        cd_params_free(&k->params);
        k->params = x.params;
        k->keep_sample_type = x.keep;
        k->n_keep_sample_type = x.n_keep;
        free(x.path);
    }
    for (size_t j = 0; j < n; j++) {
        char sub[KP_MAX];
        kp_join(sub, sizeof(sub), kp, ks[j].name);
        yaml_node_t *kn = NULL;
        yaml_node_t *vn = node != NULL ? map_get(cx, node, ks[j].name, &kn) : NULL;
        kind_finish(cx, job, &ks[j], vn != NULL && !is_null(vn) ? vn : kn ? kn : node, sub, gops);
    }
out:
    free(items.v);
    if (gops) {
        job->gops_kinds = ks;
        job->n_gops_kinds = n;
    } else {
        job->http_kinds = ks;
        job->n_http_kinds = n;
    }
}

static bool any_enabled(const struct cd_kind_conf *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (k[i].enabled)
            return true;
    }
    return false;
}

static void job_free(struct cd_job_conf *j)
{
    free(j->name);
    cd_params_free(&j->params);
    free(j->path_prefix);
    free(j->proxy_url);
    for (size_t i = 0; i < j->n_http_kinds; i++)
        kind_conf_free(&j->http_kinds[i]);
    free(j->http_kinds);
    for (size_t i = 0; i < j->n_gops_kinds; i++)
        kind_conf_free(&j->gops_kinds[i]);
    free(j->gops_kinds);
    cd_groups_free(&j->static_groups);
    for (size_t i = 0; i < j->n_file_sd; i++)
        cd_strv_free(&j->file_sd[i].files);
    free(j->file_sd);
    for (size_t i = 0; i < j->n_dns_sd; i++)
        cd_strv_free(&j->dns_sd[i].names);
    free(j->dns_sd);
    for (size_t i = 0; i < j->n_local_sd; i++)
        cd_regex_free(&j->local_sd[i].exe);
    free(j->local_sd);
    for (size_t i = 0; i < j->n_relabel; i++)
        cd_relabel_rule_free(&j->relabel[i]);
    free(j->relabel);
    free(j->auth.username);
    free(j->auth.password);
    free(j->auth.bearer);
    free(j->auth.auth_type);
    free(j->password_file);
    free(j->bearer_file);
    free(j->tls.ca_file);
    free(j->tls.cert_file);
    free(j->tls.key_file);
    free(j->tls.server_name);
    memset(j, 0, sizeof(*j));
}

static void parse_job(struct ycx *cx, yaml_node_t *m, const char *kp, struct cd_job_conf *job)
{
    struct cd_config *c = cx->cfg;
    struct jobx jx;
    memset(&jx, 0, sizeof(jx));
    jx.job = job;
    job->line = (int)m->start_mark.line + 1;
    job->column = (int)m->start_mark.column + 1;
    job->scheme = CD_SCHEME_HTTP;
    job->follow_redirects = true;
    job->enable_http2 = true;
    job->path_prefix = cd_str_dup("");
    if (job->path_prefix == NULL) {
        cx_oom(cx);
        return;
    }
    if (m->type != YAML_MAPPING_NODE) {
        cx_error(cx, m, kp, "expected a mapping (a scrape config), got %s", node_kind(m));
        return;
    }
    uint64_t seen = parse_job_map(cx, m, kp, &jx);
    if (job->name == NULL || job->name[0] == '\0') {
        cx_error(cx, m, kp, "job_name is required");
    } else if (strlen(job->name) > 128) {
        cx_error(cx, m, kp, "job_name is longer than 128 bytes");
    } else {
        for (const char *p = job->name; *p; p++) {
            if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '/') {
                yaml_node_t *vn = map_get(cx, m, "job_name", NULL);
                char sub[KP_MAX];
                kp_join(sub, sizeof(sub), kp, "job_name");
                cx_error(cx, vn ? vn : m, sub,
                         "\"%s\": job names may not contain spaces, control characters or /",
                         job->name);
                break;
            }
        }
    }
    /* unset or invalid (already reported): the global value, so later checks stay meaningful */
    if (job->scrape_interval_ms == 0)
        job->scrape_interval_ms = c->global.scrape_interval_ms;
    /* Parca writes scrape_timeout: 0s for "default". Our timeout is added on top of a kind's
     * seconds, so Parca's interval+3s rule is not needed: 0 means the global timeout. */
    if (!seen_key(seen, job_fields, "scrape_timeout") || job->scrape_timeout_ms == 0)
        job->scrape_timeout_ms = c->global.scrape_timeout_ms;
    if (job->body_size_limit == 0)
        job->body_size_limit = c->limits.max_body_bytes;
    if (job->proxy_url != NULL && job->proxy_url[0] != '\0' &&
        !cd_str_has_prefix(job->proxy_url, "http://") &&
        !cd_str_has_prefix(job->proxy_url, "https://") &&
        !cd_str_has_prefix(job->proxy_url, "socks5://")) {
        yaml_node_t *vn = map_get(cx, m, "proxy_url", NULL);
        char sub[KP_MAX];
        kp_join(sub, sizeof(sub), kp, "proxy_url");
        cx_error(cx, vn ? vn : m, sub, "expected an http://, https:// or socks5:// URL");
    }
    int n_auth = jx.has_basic + jx.has_authz + (jx.has_bearer || jx.has_bearer_file);
    if (n_auth > 1)
        cx_error(cx, jx.auth_node ? jx.auth_node : m, kp,
                 "at most one of basic_auth, authorization and bearer_token(_file)");
    if (jx.has_bearer && jx.has_bearer_file)
        cx_error(cx, jx.auth_node ? jx.auth_node : m, kp,
                 "at most one of bearer_token and bearer_token_file");

    char sub[KP_MAX];
    if (jx.pprof_node != NULL)
        parse_kinds(cx, job, jx.pprof_node, jx.pprof_kp, false);
    else {
        kp_join(sub, sizeof(sub), kp, "profiling_config.pprof_config");
        parse_kinds(cx, job, NULL, sub, false);
    }
    if (jx.gops_node != NULL)
        parse_kinds(cx, job, jx.gops_node, jx.gops_kp, true);
    else {
        kp_join(sub, sizeof(sub), kp, "gops_config");
        parse_kinds(cx, job, NULL, sub, true);
    }
    job->relabel_per_kind = cd_relabel_uses_label(job->relabel, job->n_relabel, "__name__") ||
                            cd_relabel_uses_label(job->relabel, job->n_relabel, "__profile_path__");
    job_static_late(cx, &jx);

    /* A static target whose source serves nothing is certainly a mistake. */
    if (job->n_relabel == 0) {
        bool http_any = any_enabled(job->http_kinds, job->n_http_kinds);
        bool gops_any = any_enabled(job->gops_kinds, job->n_gops_kinds);
        for (size_t i = 0; i < job->static_groups.n; i++) {
            for (size_t k = 0; k < job->static_groups.v[i].n; k++) {
                enum cd_scheme sc;
                char *addr = NULL;
                const char *why;
                if (cd_config_parse_address(job->static_groups.v[i].v[k].address, job->scheme, &sc,
                                            &addr, &why) < 0)
                    continue;
                free(addr);
                bool ok = sc == CD_SCHEME_GOPS ? gops_any : http_any;
                if (!ok) {
                    cx_error(cx, jx.static_node, jx.static_kp,
                             "%s is a %s target, but every kind of %s is disabled",
                             job->static_groups.v[i].v[k].address,
                             sc == CD_SCHEME_GOPS ? "gops" : "pprof",
                             sc == CD_SCHEME_GOPS ? "gops_config" : "pprof_config");
                    return;
                }
            }
        }
    }
}

static void parse_scrape_configs(struct ycx *cx, yaml_node_t *v, const char *kp)
{
    struct cd_config *c = cx->cfg;
    yaml_node_item_t *it, *top;
    if (seq_items(cx, v, kp, &it, &top) < 0)
        return;
    size_t n = (size_t)(top - it);
    if (n > CD_CONFIG_MAX_JOBS) {
        cx_error(cx, v, kp, "at most %d scrape configs, got %zu", CD_CONFIG_MAX_JOBS, n);
        return;
    }
    c->jobs = calloc(n ? n : 1, sizeof(*c->jobs));
    if (c->jobs == NULL) {
        cx_oom(cx);
        return;
    }
    for (size_t i = 0; i < n; i++, it++) {
        char sub[KP_MAX];
        kp_index(sub, sizeof(sub), kp, i);
        yaml_node_t *m = cx_node(cx, *it);
        if (m == NULL || !cx_visit(cx, m, sub))
            break;
        struct cd_job_conf *job = &c->jobs[c->n_jobs++];
        parse_job(cx, m, sub, job);
        if (job->name == NULL)
            continue;
        for (size_t k = 0; k + 1 < c->n_jobs; k++) {
            if (c->jobs[k].name != NULL && strcmp(c->jobs[k].name, job->name) == 0) {
                yaml_node_t *vn = map_get(cx, m, "job_name", NULL);
                char sub2[KP_MAX];
                kp_join(sub2, sizeof(sub2), sub, "job_name");
                cx_error(cx, vn ? vn : m, sub2, "duplicate job name \"%s\" (first used at line %d)",
                         job->name, c->jobs[k].line);
                break;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Top level                                                                                  */

static void check_query(struct ycx *cx, yaml_node_t *qn)
{
    struct cd_config *c = cx->cfg;
    yaml_node_t *at = qn;
    if (c->query.socket == NULL || c->query.socket[0] == '\0') {
        cx_error(cx, at, "query.socket", "must not be empty");
    } else if (strlen(c->query.socket) > 107) {
        yaml_node_t *sn = map_get(cx, qn, "socket", NULL);
        cx_error(cx, sn ? sn : at, "query.socket",
                 "'%s' is longer than 107 bytes, the limit of a Unix socket address",
                 c->query.socket);
    }
    if (c->query.listen != NULL && c->query.listen[0] != '\0') {
        yaml_node_t *ln = map_get(cx, qn, "listen", NULL);
        enum cd_scheme sc;
        char *addr = NULL;
        const char *why = NULL;
        const char *l = c->query.listen;
        /* ":8080" means every address, as Go's and Prometheus's listen flags */
        char *tmp = l[0] == ':' ? cd_str_printf("0.0.0.0%s", l) : cd_str_dup(l);
        if (tmp == NULL) {
            cx_oom(cx);
            return;
        }
        if (strstr(tmp, "://") != NULL ||
            cd_config_parse_address(tmp, CD_SCHEME_GOPS, &sc, &addr, &why) < 0)
            cx_error(cx, ln ? ln : at, "query.listen",
                     "expected host:port (e.g. 127.0.0.1:7070 or :7070), got \"%s\"", l);
        free(addr);
        free(tmp);
        if (c->query.token_file == NULL || c->query.token_file[0] == '\0')
            cx_error(cx, ln ? ln : at, "query.listen",
                     "TCP access needs a bearer token: set query.token_file as well");
    }
    if (c->query.token_file != NULL && c->query.token_file[0] != '\0') {
        yaml_node_t *tn = map_get(cx, qn, "token_file", NULL);
        char msg[300];
        if (read_secret(c->query.token_file, &c->query.token, msg, sizeof(msg)) < 0)
            cx_error(cx, tn ? tn : at, "query.token_file", "%s", msg);
        else if (strlen(c->query.token) < 16)
            cx_error(cx, tn ? tn : at, "query.token_file",
                     "the token is shorter than 16 characters");
    }
    if (c->query.socket_group != NULL && c->query.socket_group[0] != '\0') {
        struct group gr, *res = NULL;
        char buf[4096];
        if (getgrnam_r(c->query.socket_group, &gr, buf, sizeof(buf), &res) != 0 || res == NULL) {
            yaml_node_t *gn = map_get(cx, qn, "socket_group", NULL);
            cx_error(cx, gn ? gn : at, "query.socket_group", "no such group \"%s\"",
                     c->query.socket_group);
        }
    }
}

static void config_defaults(struct ycx *cx, struct cd_config *c)
{
    apply_defaults(cx, global_fields, c);
    apply_defaults(cx, storage_fields, c);
    apply_defaults(cx, retention_fields, c);
    apply_defaults(cx, query_fields, c);
    apply_defaults(cx, limits_fields, c);
    static const struct cd_downsample_tier def[] = {{24 * 3600000LL, 3600000LL},
                                                    {7 * DAY_MS, DAY_MS}};
    c->storage.retention.downsample = malloc(sizeof(def));
    if (c->storage.retention.downsample == NULL) {
        cx_oom(cx);
        return;
    }
    memcpy(c->storage.retention.downsample, def, sizeof(def));
    c->storage.retention.n_downsample = 2;
}

static void storage_section(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
    parse_map(cx, v, kp, storage_fields, obj);
}

static void top_ignored(struct ycx *cx, yaml_node_t *v, const char *kp, void *obj)
{
}

static const struct field top_fields[] = {
    {"global", FT_CUSTOM, 0, NULL, 0, 0, 0, top_ignored, NULL},
    {"storage", FT_CUSTOM, 0, NULL, 0, 0, 0, top_ignored, NULL},
    {"query", FT_CUSTOM, 0, NULL, 0, 0, 0, top_ignored, NULL},
    {"limits", FT_CUSTOM, 0, NULL, 0, 0, 0, top_ignored, NULL},
    {"scrape_configs", FT_CUSTOM, 0, NULL, 0, 0, 0, top_ignored, NULL},
    {"object_storage", FT_REJECT, 0, NULL, 0, 0, 0, NULL,
     "Parca's object storage is not used: collectord keeps profiles in SQLite (see storage.path)"},
    {"rule_files", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "not used by collectord"},
    {"alerting", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "not used by collectord"},
    {"remote_write", FT_REJECT, 0, NULL, 0, 0, 0, NULL, "not used by collectord"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void parse_root(struct ycx *cx, yaml_node_t *root)
{
    struct cd_config *c = cx->cfg;
    if (is_null(root))
        return;
    struct kvs items;
    if (map_items(cx, root, "", &items) < 0) {
        free(items.v);
        return;
    }
    /* Sections in dependency order, whatever their order in the file: jobs inherit from
     * global and limits. */
    static const char *order[] = {"global", "storage", "query", "limits", "scrape_configs"};
    for (size_t i = 0; i < items.n; i++) {
        const struct field *f = NULL;
        for (const struct field *t = top_fields; t->key != NULL; t++) {
            if (strcmp(t->key, items.v[i].key) == 0)
                f = t;
        }
        if (f == NULL)
            unknown_key(cx, &items.v[i], "", top_fields);
        else if (f->type == FT_REJECT)
            cx_error(cx, items.v[i].k, items.v[i].key, "%s", f->why);
    }
    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
        yaml_node_t *v = NULL;
        for (size_t i = 0; i < items.n; i++) {
            if (strcmp(items.v[i].key, order[o]) == 0)
                v = items.v[i].v;
        }
        if (strcmp(order[o], "query") == 0) {
            if (v != NULL)
                parse_map(cx, v, "query", query_fields, c);
            check_query(cx, v != NULL ? v : root);
            continue;
        }
        if (v == NULL)
            continue;
        if (strcmp(order[o], "global") == 0)
            parse_map(cx, v, "global", global_fields, c);
        else if (strcmp(order[o], "storage") == 0)
            storage_section(cx, v, "storage", c);
        else if (strcmp(order[o], "limits") == 0)
            parse_map(cx, v, "limits", limits_fields, c);
        else
            parse_scrape_configs(cx, v, "scrape_configs");
    }
    free(items.v);
    /* retention cross-checks */
    struct cd_downsample_tier *t = c->storage.retention.downsample;
    for (size_t i = 0; i < c->storage.retention.n_downsample; i++) {
        if (c->storage.retention.max_age_ms > 0 &&
            t[i].after_ms >= c->storage.retention.max_age_ms) {
            char a[48], b[48];
            cd_config_fmt_duration(a, sizeof(a), t[i].after_ms);
            cd_config_fmt_duration(b, sizeof(b), c->storage.retention.max_age_ms);
            yaml_node_t *sn = map_get(cx, root, "storage", NULL);
            yaml_node_t *rn = map_get(cx, sn, "retention", NULL);
            yaml_node_t *dn = map_get(cx, rn, "downsample", NULL);
            cx_error(cx, dn ? dn : root, "storage.retention.downsample",
                     "a tier starting after %s never applies: max_age is %s", a, b);
        }
    }
}

/* check_query runs once after the query section (or with defaults when it is absent). */

void cd_config_free(struct cd_config *c)
{
    if (c == NULL)
        return;
    free(c->file);
    free(c->dir);
    cd_labels_free(&c->global.external_labels);
    free(c->storage.path);
    free(c->storage.retention.downsample);
    free(c->query.socket);
    free(c->query.socket_group);
    free(c->query.listen);
    free(c->query.token_file);
    free(c->query.token);
    for (size_t i = 0; i < c->n_jobs; i++)
        job_free(&c->jobs[i]);
    free(c->jobs);
    free(c);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *d;
    if (slash == NULL)
        d = cd_str_dup(".");
    else if (slash == path)
        d = cd_str_dup("/");
    else
        d = cd_str_ndup(path, (size_t)(slash - path));
    if (d == NULL || d[0] == '/')
        return d;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        free(d);
        return NULL;
    }
    char *abs = path_resolve(cwd, d);
    free(d);
    return abs;
}

int cd_config_parse(const char *name, const char *dir, const void *data, size_t len,
                    struct cd_config **out, struct cd_config_diag *diag, struct cd_err *err)
{
    struct cd_config_diag local_diag = {0};
    struct ycx cx;
    memset(&cx, 0, sizeof(cx));
    cx.name = name;
    cx.diag = diag != NULL ? diag : &local_diag;
    cx.err = err;
    cx.budget = CD_CONFIG_MAX_NODES;
    yaml_parser_t parser;
    bool parser_ok = false, doc_ok = false;
    int rc = 0;
    struct cd_config *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    cx.cfg = c;
    c->file = cd_str_dup(name);
    if (dir != NULL)
        c->dir = cd_str_dup(dir);
    else {
        char cwd[PATH_MAX];
        c->dir = cd_str_dup(getcwd(cwd, sizeof(cwd)) != NULL ? cwd : "/");
    }
    if (c->file == NULL || c->dir == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    cx.dir = c->dir;
    if (len > CD_CONFIG_MAX_FILE_BYTES) {
        cx_error(&cx, NULL, "", "the file is larger than %u bytes", CD_CONFIG_MAX_FILE_BYTES);
        rc = -EFBIG;
        goto out;
    }
    config_defaults(&cx, c);
    if (!yaml_parser_initialize(&parser)) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    parser_ok = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &cx.doc)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s:%zu:%zu: YAML syntax error: %s%s%s", name,
                 (size_t)parser.problem_mark.line + 1, (size_t)parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
                 parser.context ? parser.context : "");
        cd_err_set(err, -EINVAL, "%s", msg);
        char *line = cd_str_dup(msg);
        char **g = line ? realloc(cx.diag->lines, (cx.diag->n + 1) * sizeof(*g)) : NULL;
        if (g != NULL) {
            cx.diag->lines = g;
            cx.diag->lines[cx.diag->n++] = line;
        } else {
            free(line);
        }
        rc = -EINVAL;
        goto out;
    }
    doc_ok = true;
    yaml_node_t *root = yaml_document_get_root_node(&cx.doc);
    if (root != NULL) {
        /* A second document is almost certainly a mistake (a stray ---). */
        yaml_document_t extra;
        if (yaml_parser_load(&parser, &extra)) {
            if (yaml_document_get_root_node(&extra) != NULL)
                cx_error(&cx, yaml_document_get_root_node(&extra), "",
                         "the file holds more than one YAML document");
            yaml_document_delete(&extra);
        }
        if (root->type != YAML_MAPPING_NODE && !is_null(root))
            cx_error(&cx, root, "", "expected a mapping at the top, got %s", node_kind(root));
        else
            parse_root(&cx, root);
    } else {
        check_query(&cx, NULL);
    }
    if (cx.oom)
        rc = -ENOMEM;
    else if (cx.n_errors > 0)
        rc = -EINVAL;
out:
    if (doc_ok)
        yaml_document_delete(&cx.doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    cd_config_diag_free(&local_diag);
    if (rc < 0) {
        cd_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int cd_config_load_diag(const char *path, struct cd_config **out, struct cd_config_diag *diag,
                        struct cd_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return cd_err_set(err, -e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cd_err_set(err, -EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size > (off_t)CD_CONFIG_MAX_FILE_BYTES) {
        close(fd);
        return cd_err_set(err, -EFBIG, "%s: larger than %u bytes", path, CD_CONFIG_MAX_FILE_BYTES);
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    for (;;) {
        if (len == cap) {
            /* the file grew while we read it */
            close(fd);
            free(buf);
            return cd_err_set(err, -EAGAIN, "%s: changed while being read", path);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return cd_err_set(err, -e, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    char *dir = dir_of(path);
    if (dir == NULL) {
        free(buf);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    int rc = cd_config_parse(path, dir, buf, len, out, diag, err);
    free(dir);
    free(buf);
    return rc;
}

int cd_config_load(const char *path, struct cd_config **out, struct cd_err *err)
{
    return cd_config_load_diag(path, out, NULL, err);
}

const struct cd_job_conf *cd_config_job(const struct cd_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_jobs; i++) {
        if (c->jobs[i].name != NULL && strcmp(c->jobs[i].name, name) == 0)
            return &c->jobs[i];
    }
    return NULL;
}

void cd_config_parse_limits(const struct cd_config *c, struct cd_parse_limits *lim)
{
    cd_parse_limits_default(lim);
    uint64_t max_in = c->limits.max_body_bytes;
    for (size_t i = 0; i < c->n_jobs; i++) {
        if (c->jobs[i].body_size_limit > max_in)
            max_in = c->jobs[i].body_size_limit;
    }
    lim->max_input = (size_t)max_in;
    lim->max_decompressed = (size_t)c->limits.max_decompressed_bytes;
    lim->max_goroutines = (size_t)c->limits.max_goroutines;
    lim->max_memory = (size_t)c->limits.max_parse_memory;
}

/* ------------------------------------------------------------------------------------------ */
/* Reload check                                                                               */

static bool field_equal(const struct field *f, const void *a, const void *b)
{
    const char *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
    switch (f->type) {
    case FT_DUR:
        return *(const int64_t *)pa == *(const int64_t *)pb;
    case FT_SIZE:
        return *(const uint64_t *)pa == *(const uint64_t *)pb;
    case FT_INT:
        return *(const int *)pa == *(const int *)pb;
    case FT_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case FT_MODE:
        return *(const unsigned *)pa == *(const unsigned *)pb;
    case FT_STR:
    case FT_PATH:
        return cd_str_eq(*(char *const *)pa, *(char *const *)pb);
    default:
        return true;
    }
}

int cd_config_reload_check(const struct cd_config *cur, const struct cd_config *next,
                           struct cd_err *err)
{
    char keys[400];
    size_t o = 0;
    keys[0] = '\0';
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        for (const struct field *f = sections[s].fields; f->key != NULL; f++) {
            if (!(f->flags & F_RESTART) || field_equal(f, cur, next))
                continue;
            if (o < sizeof(keys))
                o += (size_t)snprintf(keys + o, sizeof(keys) - o, "%s%s.%s", o ? ", " : "",
                                      sections[s].name, f->key);
        }
    }
    if (o == 0)
        return 0;
    return cd_err_set(err, -EINVAL,
                      "%s changed: these keys take effect only when collectord restarts, so the "
                      "reload was rejected and the running configuration kept (restart, or "
                      "change them back)",
                      keys);
}

/* ------------------------------------------------------------------------------------------ */
/* Dump                                                                                       */

static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\x%02x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void put_labels(FILE *f, const struct cd_labels *l)
{
    fputc('{', f);
    for (size_t i = 0; i < l->n; i++) {
        fprintf(f, "%s%s: ", i ? ", " : "", l->v[i].name);
        put_str(f, l->v[i].value);
    }
    fputc('}', f);
}

static void put_params(FILE *f, const struct cd_params *p)
{
    fputc('{', f);
    bool first = true;
    for (size_t i = 0; i < p->n; i++) {
        bool seen_before = false;
        for (size_t k = 0; k < i; k++)
            seen_before = seen_before || strcmp(p->v[k].name, p->v[i].name) == 0;
        if (seen_before)
            continue;
        fputs(first ? "" : ", ", f);
        first = false;
        put_str(f, p->v[i].name);
        fputs(": [", f);
        bool f2 = true;
        for (size_t k = i; k < p->n; k++) {
            if (strcmp(p->v[k].name, p->v[i].name) != 0)
                continue;
            fputs(f2 ? "" : ", ", f);
            f2 = false;
            put_str(f, p->v[k].value);
        }
        fputc(']', f);
    }
    fputc('}', f);
}

static void put_strv(FILE *f, const struct cd_strv *v)
{
    fputc('[', f);
    for (size_t i = 0; i < v->n; i++) {
        fputs(i ? ", " : "", f);
        put_str(f, v->v[i]);
    }
    fputc(']', f);
}

static void dump_fields(FILE *f, const struct field *tab, const void *obj, int indent)
{
    for (const struct field *t = tab; t->key != NULL; t++) {
        const char *p = (const char *)obj + t->off;
        char b[64];
        if (t->type == FT_CUSTOM || t->type == FT_REJECT)
            continue;
        fprintf(f, "%*s%s: ", indent, "", t->key);
        switch (t->type) {
        case FT_DUR:
            cd_config_fmt_duration(b, sizeof(b), *(const int64_t *)p);
            fputs(b, f);
            break;
        case FT_SIZE:
            fmt_size(b, sizeof(b), *(const uint64_t *)p);
            fputs(b, f);
            break;
        case FT_INT:
            fprintf(f, "%d", *(const int *)p);
            break;
        case FT_BOOL:
            fputs(*(const bool *)p ? "true" : "false", f);
            break;
        case FT_MODE:
            fprintf(f, "\"%04o\"", *(const unsigned *)p);
            break;
        case FT_STR:
        case FT_PATH:
            put_str(f, *(char *const *)p);
            break;
        case FT_LABELS:
            put_labels(f, (const struct cd_labels *)p);
            break;
        default:
            break;
        }
        fputc('\n', f);
    }
}

static const char *dns_type_name(enum cd_dns_type t)
{
    return t == CD_DNS_A ? "A" : t == CD_DNS_AAAA ? "AAAA" : "SRV";
}

static void dump_kinds(FILE *f, const struct cd_job_conf *j, const struct cd_kind_conf *ks,
                       size_t n, bool gops, int indent)
{
    char b[64];
    for (size_t i = 0; i < n; i++) {
        const struct cd_kind_conf *k = &ks[i];
        fprintf(f, "%*s%s: {enabled: %s", indent, "", k->name, k->enabled ? "true" : "false");
        if (!gops) {
            /* the path without the job's prefix, so the dump loads back to the same paths */
            const char *path = k->path;
            size_t pl = j->path_prefix ? strlen(j->path_prefix) : 0;
            while (pl > 0 && j->path_prefix[pl - 1] == '/')
                pl--;
            if (pl > 0 && strncmp(path, j->path_prefix, pl) == 0)
                path += pl;
            fputs(", path: ", f);
            put_str(f, path);
            if (k->delta)
                fputs(", delta: true", f);
            if (!(k->delta && !k->seconds_set) && (k->seconds > 0 || k->seconds_set))
                fprintf(f, ", seconds: %d", k->seconds);
        }
        cd_config_fmt_duration(b, sizeof(b), k->interval_ms);
        fprintf(f, ", interval: %s", b);
        if (k->params.n > 0) {
            fputs(", params: ", f);
            put_params(f, &k->params);
        }
        if (k->n_keep_sample_type > 0) {
            fputs(", keep_sample_type: [", f);
            for (size_t s = 0; s < k->n_keep_sample_type; s++) {
                fputs(s ? ", {type: " : "{type: ", f);
                put_str(f, k->keep_sample_type[s].type);
                fputs(", unit: ", f);
                put_str(f, k->keep_sample_type[s].unit);
                fputc('}', f);
            }
            fputc(']', f);
        }
        cd_config_fmt_duration(b, sizeof(b), k->timeout_ms);
        fprintf(f, "}  # timeout %s", b);
        if (gops)
            fprintf(f, ", command 0x%02x", (unsigned)k->gops_cmd);
        else if (k->fixed_query != NULL)
            fprintf(f, ", query %s", k->fixed_query);
        fputc('\n', f);
    }
}

static void dump_job(FILE *f, const struct cd_job_conf *j)
{
    char b[64];
    fputs("  - job_name: ", f);
    put_str(f, j->name);
    cd_config_fmt_duration(b, sizeof(b), j->scrape_interval_ms);
    fprintf(f, "\n    scrape_interval: %s\n", b);
    cd_config_fmt_duration(b, sizeof(b), j->scrape_timeout_ms);
    fprintf(f, "    scrape_timeout: %s\n", b);
    fprintf(f, "    scheme: %s\n", cd_scheme_name(j->scheme));
    fputs("    params: ", f);
    put_params(f, &j->params);
    fprintf(f, "\n    honor_labels: %s\n", j->honor_labels ? "true" : "false");
    fprintf(f, "    honor_timestamps: %s\n", j->honor_timestamps ? "true" : "false");
    fprintf(f, "    normalized_addresses: %s\n", j->normalized_addresses ? "true" : "false");
    fprintf(f, "    follow_redirects: %s\n", j->follow_redirects ? "true" : "false");
    fprintf(f, "    enable_http2: %s\n", j->enable_http2 ? "true" : "false");
    fputs("    proxy_url: ", f);
    put_str(f, j->proxy_url);
    fmt_size(b, sizeof(b), j->body_size_limit);
    fprintf(f, "\n    body_size_limit: %s\n", b);
    if (j->auth.username != NULL) {
        fputs("    basic_auth: {username: ", f);
        put_str(f, j->auth.username);
        if (j->password_file != NULL) {
            fputs(", password_file: ", f);
            put_str(f, j->password_file);
        } else {
            fputs(", password: \"<secret>\"", f);
        }
        fputs("}\n", f);
    } else if (j->auth.bearer != NULL) {
        fputs("    authorization: {type: ", f);
        put_str(f, j->auth.auth_type);
        if (j->bearer_file != NULL) {
            fputs(", credentials_file: ", f);
            put_str(f, j->bearer_file);
        } else {
            fputs(", credentials: \"<secret>\"", f);
        }
        fputs("}\n", f);
    }
    if (j->tls.ca_file || j->tls.cert_file || j->tls.key_file || j->tls.server_name ||
        j->tls.insecure_skip_verify) {
        fputs("    tls_config: {ca_file: ", f);
        put_str(f, j->tls.ca_file);
        fputs(", cert_file: ", f);
        put_str(f, j->tls.cert_file);
        fputs(", key_file: ", f);
        put_str(f, j->tls.key_file);
        fputs(", server_name: ", f);
        put_str(f, j->tls.server_name);
        fprintf(f, ", insecure_skip_verify: %s}\n", j->tls.insecure_skip_verify ? "true" : "false");
    }
    fputs("    profiling_config:\n      path_prefix: ", f);
    put_str(f, j->path_prefix);
    fputs("\n      pprof_config:\n", f);
    dump_kinds(f, j, j->http_kinds, j->n_http_kinds, false, 8);
    fputs("    gops_config:\n", f);
    dump_kinds(f, j, j->gops_kinds, j->n_gops_kinds, true, 6);
    if (j->static_groups.n > 0) {
        fputs("    static_configs:\n", f);
        for (size_t i = 0; i < j->static_groups.n; i++) {
            const struct cd_group *g = &j->static_groups.v[i];
            fputs("      - targets: [", f);
            for (size_t k = 0; k < g->n; k++) {
                fputs(k ? ", " : "", f);
                put_str(f, g->v[k].address);
            }
            fputs("]\n        labels: ", f);
            put_labels(f, &g->labels);
            fputc('\n', f);
        }
    }
    if (j->n_file_sd > 0) {
        fputs("    file_sd_configs:\n", f);
        for (size_t i = 0; i < j->n_file_sd; i++) {
            fputs("      - files: ", f);
            put_strv(f, &j->file_sd[i].files);
            cd_config_fmt_duration(b, sizeof(b), j->file_sd[i].refresh_interval_ms);
            fprintf(f, "\n        refresh_interval: %s\n", b);
        }
    }
    if (j->n_dns_sd > 0) {
        fputs("    dns_sd_configs:\n", f);
        for (size_t i = 0; i < j->n_dns_sd; i++) {
            const struct cd_dns_sd_conf *d = &j->dns_sd[i];
            fputs("      - names: ", f);
            put_strv(f, &d->names);
            cd_config_fmt_duration(b, sizeof(b), d->refresh_interval_ms);
            fprintf(f, "\n        type: %s\n        port: %d\n        refresh_interval: %s\n",
                    dns_type_name(d->type), d->port, b);
        }
    }
    if (j->n_local_sd > 0) {
        fputs("    local_sd_configs:\n", f);
        for (size_t i = 0; i < j->n_local_sd; i++) {
            const struct cd_local_sd_conf *l = &j->local_sd[i];
            cd_config_fmt_duration(b, sizeof(b), l->refresh_interval_ms);
            fprintf(f, "      - gops: %s\n        pprof: %s\n        refresh_interval: %s\n",
                    l->gops ? "true" : "false", l->pprof ? "true" : "false", b);
            if (l->exe_set) {
                fputs("        exe: ", f);
                put_str(f, l->exe.src);
                fputc('\n', f);
            }
            cd_config_fmt_duration(b, sizeof(b), l->probe_timeout_ms);
            fprintf(f,
                    "        probe_timeout: %s\n        max_probes: %d\n"
                    "        max_processes: %d\n",
                    b, l->max_probes, l->max_processes);
        }
    }
    if (j->n_relabel > 0) {
        fputs("    relabel_configs:\n", f);
        for (size_t i = 0; i < j->n_relabel; i++) {
            const struct cd_relabel_rule *r = &j->relabel[i];
            fprintf(f, "      - action: %s\n", cd_relabel_action_name(r->action));
            if (r->source_labels_set) {
                fputs("        source_labels: [", f);
                for (size_t k = 0; k < r->n_source_labels; k++)
                    fprintf(f, "%s%s", k ? ", " : "", r->source_labels[k]);
                fputs("]\n", f);
            }
            fputs("        separator: ", f);
            put_str(f, r->separator ? r->separator : CD_RELABEL_DEFAULT_SEPARATOR);
            fputs("\n        regex: ", f);
            put_str(f, r->regex.src);
            fputc('\n', f);
            if (r->modulus != 0)
                fprintf(f, "        modulus: %llu\n", (unsigned long long)r->modulus);
            if (r->target_label != NULL) {
                fputs("        target_label: ", f);
                put_str(f, r->target_label);
                fputc('\n', f);
            }
            fputs("        replacement: ", f);
            put_str(f, r->replacement ? r->replacement : CD_RELABEL_DEFAULT_REPLACEMENT);
            fputc('\n', f);
        }
    }
}

int cd_config_dump(const struct cd_config *c, FILE *f)
{
    fprintf(f, "# effective configuration of collectord: defaults filled in, secrets redacted\n");
    fprintf(f, "# loaded from %s (relative paths resolved against %s)\n", c->file, c->dir);
    fputs("global:\n", f);
    dump_fields(f, global_fields, c, 2);
    fputs("storage:\n", f);
    dump_fields(f, storage_fields, c, 2);
    fputs("  retention:\n", f);
    dump_fields(f, retention_fields, c, 4);
    fputs("    downsample:", f);
    if (c->storage.retention.n_downsample == 0)
        fputs(" []", f);
    fputc('\n', f);
    for (size_t i = 0; i < c->storage.retention.n_downsample; i++) {
        char a[48], b[48];
        cd_config_fmt_duration(a, sizeof(a), c->storage.retention.downsample[i].after_ms);
        cd_config_fmt_duration(b, sizeof(b), c->storage.retention.downsample[i].keep_one_per_ms);
        fprintf(f, "      - {after: %s, keep_one_per: %s}\n", a, b);
    }
    fputs("query:\n", f);
    dump_fields(f, query_fields, c, 2);
    fputs("limits:\n", f);
    dump_fields(f, limits_fields, c, 2);
    fputs("scrape_configs:", f);
    if (c->n_jobs == 0)
        fputs(" []", f);
    fputc('\n', f);
    for (size_t i = 0; i < c->n_jobs; i++)
        dump_job(f, &c->jobs[i]);
    fflush(f);
    return ferror(f) ? -EIO : 0;
}
