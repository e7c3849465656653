/* targets — see targets.h. */
#include "targets.h"

#include "buf.h"
#include "hash.h"
#include "relabel.h"
#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A set of strings by hash, for duplicate ids (sets can hold a million targets). */
struct idset {
    uint64_t *h;
    const char **s;
    size_t cap;
    size_t n;
};

static void idset_free(struct idset *set)
{
    free(set->h);
    free(set->s);
    memset(set, 0, sizeof(*set));
}

static int idset_grow(struct idset *set)
{
    size_t cap = set->cap ? set->cap * 2 : 64;
    uint64_t *h = calloc(cap, sizeof(*h));
    const char **s = calloc(cap, sizeof(*s));
    if (h == NULL || s == NULL) {
        free(h);
        free(s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < set->cap; i++) {
        if (set->s[i] == NULL)
            continue;
        size_t at = set->h[i] & (cap - 1);
        while (s[at] != NULL)
            at = (at + 1) & (cap - 1);
        h[at] = set->h[i];
        s[at] = set->s[i];
    }
    free(set->h);
    free(set->s);
    set->h = h;
    set->s = s;
    set->cap = cap;
    return 0;
}

/* 1 when added, 0 when already present, -ENOMEM. The string must outlive the set. */
static int idset_add(struct idset *set, const char *str)
{
    if ((set->n + 1) * 2 > set->cap && idset_grow(set) < 0)
        return -ENOMEM;
    uint64_t h = cd_hash_fnv1a64_str(str);
    size_t at = h & (set->cap - 1);
    while (set->s[at] != NULL) {
        if (set->h[at] == h && strcmp(set->s[at], str) == 0)
            return 0;
        at = (at + 1) & (set->cap - 1);
    }
    set->h[at] = h;
    set->s[at] = str;
    set->n++;
    return 1;
}

static void note(struct cd_targets_stats *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct cd_targets_stats *st, const char *fmt, ...)
{
    if (st == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->last_error, sizeof(st->last_error), fmt, ap);
    va_end(ap);
}

static void labels_del(struct cd_labels *l, size_t i)
{
    free(l->v[i].name);
    free(l->v[i].value);
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
    l->n--;
}

/* Sets name only when the label is absent (Prometheus: discovered labels win). */
static int set_default(struct cd_labels *l, const char *name, const char *value)
{
    const char *v = cd_labels_get(l, name);
    if (v != NULL && v[0] != '\0')
        return 0;
    return cd_labels_set(l, name, value);
}

/* ---- query strings ------------------------------------------------------------------------ */

static int params_remove(struct cd_params *p, const char *name)
{
    size_t o = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].name, name) == 0) {
            free(p->v[i].name);
            free(p->v[i].value);
            continue;
        }
        p->v[o++] = p->v[i];
    }
    p->n = o;
    return 0;
}

static bool params_has(const struct cd_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].name, name) == 0)
            return true;
    }
    return false;
}

/* Replaces every value of name with values (all of src's entries called name). */
static int params_override(struct cd_params *dst, const struct cd_params *src)
{
    for (size_t i = 0; i < src->n; i++) {
        bool first = true;
        for (size_t k = 0; k < i; k++)
            first = first && strcmp(src->v[k].name, src->v[i].name) != 0;
        if (first)
            params_remove(dst, src->v[i].name);
    }
    for (size_t i = 0; i < src->n; i++) {
        if (cd_params_add(dst, src->v[i].name, src->v[i].value) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int url_escape(struct cd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = cd_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = cd_buf_append(b, e, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmp_param(const void *a, const void *b)
{
    return strcmp(((const struct cd_param *)a)->name, ((const struct cd_param *)b)->name);
}

/* Sorted by name as Go's url.Values.Encode; values of one name keep their order. */
static char *encode_query(struct cd_params *p)
{
    /* insertion sort: stable, and lists are short */
    for (size_t i = 1; i < p->n; i++) {
        struct cd_param x = p->v[i];
        size_t k = i;
        while (k > 0 && cmp_param(&p->v[k - 1], &x) > 0) {
            p->v[k] = p->v[k - 1];
            k--;
        }
        p->v[k] = x;
    }
    struct cd_buf b;
    cd_buf_init(&b, 64 * 1024);
    int rc = 0;
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        if (i > 0)
            rc = cd_buf_append(&b, "&", 1);
        if (rc == 0)
            rc = url_escape(&b, p->v[i].name);
        if (rc == 0)
            rc = cd_buf_append(&b, "=", 1);
        if (rc == 0)
            rc = url_escape(&b, p->v[i].value);
    }
    if (rc == 0)
        rc = cd_buf_terminate(&b);
    if (rc < 0) {
        cd_buf_free(&b);
        return NULL;
    }
    if (b.data == NULL)
        return cd_str_dup("");
    size_t len;
    return (char *)cd_buf_steal(&b, &len);
}

/* "debug=2&x=y" into params (our own constant text from kind.h). */
static int parse_fixed(struct cd_params *p, const char *q)
{
    while (q != NULL && *q != '\0') {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        char *name = cd_str_ndup(q, eq ? (size_t)(eq - q) : len);
        char *value = eq ? cd_str_ndup(eq + 1, len - (size_t)(eq - q) - 1) : cd_str_dup("");
        int rc = name && value ? 0 : -ENOMEM;
        if (rc == 0)
            rc = params_remove(p, name);
        if (rc == 0)
            rc = cd_params_add(p, name, value);
        free(name);
        free(value);
        if (rc < 0)
            return rc;
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

static char *kind_query(const struct cd_params *base, const struct cd_kind_conf *k)
{
    struct cd_params p = {0};
    char *out = NULL;
    char secs[16];
    if (params_override(&p, base) < 0 || params_override(&p, &k->params) < 0)
        goto out;
    if (k->seconds > 0) {
        snprintf(secs, sizeof(secs), "%d", k->seconds);
        params_remove(&p, "seconds");
        if (cd_params_add(&p, "seconds", secs) < 0)
            goto out;
    }
    if (k->fixed_query != NULL && parse_fixed(&p, k->fixed_query) < 0)
        goto out;
    out = encode_query(&p);
out:
    cd_params_free(&p);
    return out;
}

/* ---- building ----------------------------------------------------------------------------- */

static int str_or_null_dup(char **dst, const char *src)
{
    if (src == NULL) {
        *dst = NULL;
        return 0;
    }
    *dst = cd_str_dup(src);
    return *dst != NULL ? 0 : -ENOMEM;
}

static int copy_auth_tls(struct cd_target *t, const struct cd_auth *a, const struct cd_tls *tls)
{
    if (str_or_null_dup(&t->auth.username, a->username) < 0 ||
        str_or_null_dup(&t->auth.password, a->password) < 0 ||
        str_or_null_dup(&t->auth.bearer, a->bearer) < 0 ||
        str_or_null_dup(&t->auth.auth_type, a->auth_type) < 0 ||
        str_or_null_dup(&t->tls.ca_file, tls->ca_file) < 0 ||
        str_or_null_dup(&t->tls.cert_file, tls->cert_file) < 0 ||
        str_or_null_dup(&t->tls.key_file, tls->key_file) < 0 ||
        str_or_null_dup(&t->tls.server_name, tls->server_name) < 0)
        return -ENOMEM;
    t->tls.insecure_skip_verify = tls->insecure_skip_verify;
    return 0;
}

/* The labels every kind of an entry starts from, before relabeling. */
static int base_labels(const struct cd_job_conf *job, const struct cd_group *g,
                       const struct cd_group_entry *e, struct cd_labels *l)
{
    char b[48];
    const char *addr = e->address;
    const char *scheme = NULL;
    static const char *prefixes[] = {"http://", "https://", "gops://"};
    for (size_t i = 0; i < 3; i++) {
        size_t pl = strlen(prefixes[i]);
        if (strncasecmp(addr, prefixes[i], pl) == 0) {
            addr += pl;
            scheme = i == 0 ? "http" : i == 1 ? "https" : "gops";
        }
    }
    if (cd_labels_copy(l, &g->labels) < 0 || cd_labels_copy(l, &e->labels) < 0 ||
        cd_labels_set(l, "__address__", addr) < 0)
        return -ENOMEM;
    if (scheme != NULL && cd_labels_set(l, "__scheme__", scheme) < 0)
        return -ENOMEM;
    if (set_default(l, "job", job->name) < 0 ||
        set_default(l, "__scheme__", cd_scheme_name(job->scheme)) < 0)
        return -ENOMEM;
    cd_config_fmt_duration(b, sizeof(b), job->scrape_interval_ms);
    if (set_default(l, "__scrape_interval__", b) < 0)
        return -ENOMEM;
    cd_config_fmt_duration(b, sizeof(b), job->scrape_timeout_ms);
    if (set_default(l, "__scrape_timeout__", b) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < job->params.n; i++) {
        char *name = cd_str_printf("__param_%s", job->params.v[i].name);
        if (name == NULL)
            return -ENOMEM;
        int rc = set_default(l, name, job->params.v[i].value);
        free(name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct kind_pick {
    const struct cd_kind_conf *k;
    char *path; /* from __profile_path__ after per-kind relabeling; NULL = the configured one */
};

static int build_entry(const struct cd_config *cfg, const struct cd_job_conf *job,
                       const struct cd_group *g, const struct cd_group_entry *e,
                       struct cd_target_set *out, struct cd_targets_stats *st)
{
    struct cd_labels base = {0}, l = {0};
    struct cd_params params = {0};
    struct kind_pick *picks = NULL;
    size_t n_picks = 0;
    char *address = NULL;
    int rc = 0;
    enum cd_scheme scheme0, scheme;
    const struct cd_kind_conf *kinds;
    size_t n_kinds;
    (void)cfg;

    rc = base_labels(job, g, e, &base);
    if (rc < 0)
        goto out;
    if (cd_scheme_parse(cd_labels_get(&base, "__scheme__"), &scheme0) < 0) {
        note(st, "%s: unknown scheme \"%s\"", e->address, cd_labels_get(&base, "__scheme__"));
        goto invalid;
    }
    kinds = scheme0 == CD_SCHEME_GOPS ? job->gops_kinds : job->http_kinds;
    n_kinds = scheme0 == CD_SCHEME_GOPS ? job->n_gops_kinds : job->n_http_kinds;
    picks = calloc(n_kinds ? n_kinds : 1, sizeof(*picks));
    if (picks == NULL) {
        rc = -ENOMEM;
        goto out;
    }

    if (!job->relabel_per_kind) {
        rc = cd_labels_copy(&l, &base);
        if (rc == 0)
            rc = cd_relabel_apply(job->relabel, job->n_relabel, &l);
        if (rc < 0)
            goto out;
        if (rc == 0)
            goto dropped;
        rc = 0;
        for (size_t i = 0; i < n_kinds; i++) {
            if (kinds[i].enabled)
                picks[n_picks++].k = &kinds[i];
        }
    } else {
        /* Parca relabels one target per profile type: run the rules once per kind, with
         * __name__ and __profile_path__ set, and keep the kinds that survive. The target's
         * labels are those of its first surviving kind. */
        bool have = false;
        for (size_t i = 0; i < n_kinds; i++) {
            if (!kinds[i].enabled)
                continue;
            struct cd_labels kl = {0};
            rc = cd_labels_copy(&kl, &base);
            if (rc == 0)
                rc = cd_labels_set(&kl, "__name__", kinds[i].name);
            if (rc == 0 && kinds[i].path != NULL)
                rc = cd_labels_set(&kl, "__profile_path__", kinds[i].path);
            if (rc == 0)
                rc = cd_relabel_apply(job->relabel, job->n_relabel, &kl);
            if (rc < 0) {
                cd_labels_free(&kl);
                goto out;
            }
            if (rc == 1) {
                struct kind_pick *p = &picks[n_picks++];
                p->k = &kinds[i];
                const char *pp = cd_labels_get(&kl, "__profile_path__");
                if (kinds[i].path != NULL && pp != NULL && strcmp(pp, kinds[i].path) != 0) {
                    p->path = cd_str_dup(pp);
                    if (p->path == NULL) {
                        cd_labels_free(&kl);
                        rc = -ENOMEM;
                        goto out;
                    }
                }
                if (!have) {
                    l = kl;
                    memset(&kl, 0, sizeof(kl));
                    have = true;
                }
            }
            cd_labels_free(&kl);
        }
        rc = 0;
        if (!have)
            goto dropped;
    }

    const char *addr = cd_labels_get(&l, "__address__");
    if (addr == NULL || addr[0] == '\0')
        goto dropped;
    const char *scheme_s = cd_labels_get(&l, "__scheme__");
    if (scheme_s == NULL || cd_scheme_parse(scheme_s, &scheme) < 0) {
        note(st, "%s: __scheme__ \"%s\" after relabeling (expected http, https or gops)", addr,
             scheme_s ? scheme_s : "");
        goto invalid;
    }
    const char *why = NULL;
    enum cd_scheme parsed;
    rc = cd_config_parse_address(addr, scheme, &parsed, &address, &why);
    if (rc == -ENOMEM)
        goto out;
    if (rc < 0) {
        rc = 0;
        note(st, "\"%s\" (job %s) is not a valid target: %s", addr, job->name, why);
        goto invalid;
    }
    scheme = parsed;
    if ((scheme == CD_SCHEME_GOPS) != (scheme0 == CD_SCHEME_GOPS)) {
        note(st, "%s (job %s): relabeling switched between gops and http(s); not supported", addr,
             job->name);
        goto invalid;
    }
    if (n_picks == 0) {
        note(st, "%s (job %s): no enabled kind for a %s target", address, job->name,
             cd_scheme_name(scheme));
        goto invalid;
    }
    if (set_default(&l, "instance", address) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    /* __param_<name> labels override the first value of the job's parameter */
    if (params_override(&params, &job->params) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (strncmp(l.v[i].name, "__param_", 8) != 0 || l.v[i].name[8] == '\0')
            continue;
        const char *pn = l.v[i].name + 8;
        bool replaced = false;
        for (size_t k = 0; k < params.n && !replaced; k++) {
            if (strcmp(params.v[k].name, pn) == 0) {
                if (cd_str_replace(&params.v[k].value, l.v[i].value) < 0) {
                    rc = -ENOMEM;
                    goto out;
                }
                replaced = true;
            }
        }
        if (!replaced && !params_has(&params, pn) && cd_params_add(&params, pn, l.v[i].value) < 0) {
            rc = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = l.n; i-- > 0;) {
        if (strncmp(l.v[i].name, "__", 2) == 0)
            labels_del(&l, i);
    }
    if (l.n > CD_CONFIG_MAX_LABELS) {
        note(st, "%s (job %s): %zu labels, at most %d", address, job->name, l.n,
             CD_CONFIG_MAX_LABELS);
        goto invalid;
    }

    struct cd_target *t = cd_target_set_add(out);
    if (t == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    t->job = cd_str_dup(job->name);
    t->scheme = scheme;
    t->address = address;
    address = NULL;
    t->labels = l;
    memset(&l, 0, sizeof(l));
    t->max_body_bytes = job->body_size_limit;
    t->no_follow_redirects = !job->follow_redirects;
    t->no_http2 = !job->enable_http2;
    t->kinds = calloc(n_picks, sizeof(*t->kinds));
    if (t->job == NULL || t->kinds == NULL || copy_auth_tls(t, &job->auth, &job->tls) < 0 ||
        (job->proxy_url != NULL && job->proxy_url[0] != '\0' &&
         (t->proxy_url = cd_str_dup(job->proxy_url)) == NULL)) {
        rc = -ENOMEM;
        goto drop_last;
    }
    for (size_t i = 0; i < n_picks; i++) {
        const struct cd_kind_conf *k = picks[i].k;
        struct cd_kind_spec *ks = &t->kinds[t->n_kinds++];
        ks->name = cd_str_dup(k->kind);
        if (ks->name == NULL) {
            rc = -ENOMEM;
            goto drop_last;
        }
        ks->seconds = k->seconds;
        ks->interval_ms = k->interval_ms;
        ks->timeout_ms = k->timeout_ms;
        ks->exclusive = k->exclusive;
        if (scheme == CD_SCHEME_GOPS) {
            ks->gops_cmd = k->gops_cmd;
            continue;
        }
        ks->path = cd_str_dup(picks[i].path != NULL ? picks[i].path : k->path);
        ks->query = kind_query(&params, k);
        if (ks->path == NULL || ks->query == NULL) {
            rc = -ENOMEM;
            goto drop_last;
        }
    }
    rc = cd_target_finish(t);
    if (rc < 0)
        goto drop_last;
    if (st != NULL)
        st->built++;
    goto out;

drop_last:
    cd_target_free(&out->v[out->n - 1]);
    out->n--;
    goto out;
dropped:
    if (st != NULL)
        st->dropped++;
    goto out;
invalid:
    if (st != NULL)
        st->invalid++;
out:
    for (size_t i = 0; i < n_picks; i++)
        free(picks[i].path);
    free(picks);
    free(address);
    cd_params_free(&params);
    cd_labels_free(&base);
    cd_labels_free(&l);
    return rc < 0 ? rc : 0;
}

int cd_targets_build(const struct cd_config *cfg, const struct cd_job_conf *job,
                     const struct cd_groups *groups, struct cd_target_set *out,
                     struct cd_targets_stats *st)
{
    for (size_t i = 0; i < groups->n; i++) {
        const struct cd_group *g = &groups->v[i];
        for (size_t k = 0; k < g->n; k++) {
            int rc = build_entry(cfg, job, g, &g->v[k], out, st);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* ---- copies, merges ----------------------------------------------------------------------- */

int cd_target_copy(struct cd_target *dst, const struct cd_target *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->scheme = src->scheme;
    dst->port = src->port;
    dst->max_body_bytes = src->max_body_bytes;
    dst->fingerprint = src->fingerprint;
    dst->no_follow_redirects = src->no_follow_redirects;
    dst->no_http2 = src->no_http2;
    if (str_or_null_dup(&dst->id, src->id) < 0 || str_or_null_dup(&dst->job, src->job) < 0 ||
        str_or_null_dup(&dst->address, src->address) < 0 ||
        str_or_null_dup(&dst->host, src->host) < 0 ||
        str_or_null_dup(&dst->process_key, src->process_key) < 0 ||
        str_or_null_dup(&dst->proxy_url, src->proxy_url) < 0 ||
        cd_labels_copy(&dst->labels, &src->labels) < 0 ||
        copy_auth_tls(dst, &src->auth, &src->tls) < 0)
        return -ENOMEM;
    if (src->n_kinds > 0) {
        dst->kinds = calloc(src->n_kinds, sizeof(*dst->kinds));
        if (dst->kinds == NULL)
            return -ENOMEM;
    }
    for (size_t i = 0; i < src->n_kinds; i++) {
        const struct cd_kind_spec *s = &src->kinds[i];
        struct cd_kind_spec *d = &dst->kinds[dst->n_kinds++];
        *d = *s;
        d->name = d->path = d->query = NULL;
        if (str_or_null_dup(&d->name, s->name) < 0 || str_or_null_dup(&d->path, s->path) < 0 ||
            str_or_null_dup(&d->query, s->query) < 0)
            return -ENOMEM;
    }
    return 0;
}

int cd_targets_merge(const struct cd_target_set *const *parts, size_t n, size_t max_targets,
                     struct cd_target_set *out, struct cd_targets_stats *st)
{
    struct idset ids = {0};
    int rc = 0;
    for (size_t p = 0; p < n && rc == 0; p++) {
        if (parts[p] == NULL)
            continue;
        for (size_t i = 0; i < parts[p]->n; i++) {
            const struct cd_target *src = &parts[p]->v[i];
            rc = idset_add(&ids, src->id);
            if (rc < 0)
                break;
            if (rc == 0) {
                if (st != NULL)
                    st->duplicates++;
                continue;
            }
            rc = 0;
            if (max_targets > 0 && out->n >= max_targets) {
                if (st != NULL)
                    st->over_limit++;
                continue;
            }
            struct cd_target *t = cd_target_set_add(out);
            if (t == NULL) {
                rc = -ENOMEM;
                break;
            }
            rc = cd_target_copy(t, src);
            if (rc < 0)
                break;
        }
    }
    idset_free(&ids);
    return rc;
}

bool cd_targets_same(const struct cd_target_set *a, const struct cd_target_set *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].fingerprint != b->v[i].fingerprint || !cd_str_eq(a->v[i].id, b->v[i].id))
            return false;
    }
    return true;
}

int cd_targets_print(const struct cd_target_set *set, FILE *f)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct cd_target *t = &set->v[i];
        char *labels = cd_labels_to_json(&t->labels);
        fprintf(f, "%s\n  labels %s\n", t->id, labels ? labels : "{}");
        free(labels);
        if (t->auth.username != NULL)
            fprintf(f, "  basic auth as %s\n", t->auth.username);
        else if (t->auth.bearer != NULL)
            fprintf(f, "  authorization: %s <secret>\n", t->auth.auth_type);
        for (size_t k = 0; k < t->n_kinds; k++) {
            const struct cd_kind_spec *ks = &t->kinds[k];
            char *req = cd_target_request(t, ks);
            char iv[48], to[48];
            cd_config_fmt_duration(iv, sizeof(iv), ks->interval_ms);
            cd_config_fmt_duration(to, sizeof(to), ks->timeout_ms);
            fprintf(f, "  %-15s every %-6s timeout %-6s %s\n", ks->name, iv, to, req ? req : "?");
            free(req);
        }
    }
    fflush(f);
    return ferror(f) ? -EIO : 0;
}
