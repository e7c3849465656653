/* target — see target.h. */
#include "target.h"

#include "hash.h"
#include "str.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cd_labels_free(struct cd_labels *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].value);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int cd_labels_set(struct cd_labels *l, const char *name, const char *value)
{
    size_t at = 0;
    while (at < l->n) {
        int c = strcmp(l->v[at].name, name);
        if (c == 0)
            return cd_str_replace(&l->v[at].value, value);
        if (c > 0)
            break;
        at++;
    }
    char *n = cd_str_dup(name);
    char *v = cd_str_dup(value);
    struct cd_label *grown = realloc(l->v, (l->n + 1) * sizeof(*grown));
    if (n == NULL || v == NULL || grown == NULL) {
        free(n);
        free(v);
        if (grown != NULL)
            l->v = grown;
        return -ENOMEM;
    }
    l->v = grown;
    memmove(&l->v[at + 1], &l->v[at], (l->n - at) * sizeof(*l->v));
    l->v[at].name = n;
    l->v[at].value = v;
    l->n++;
    return 0;
}

const char *cd_labels_get(const struct cd_labels *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, name) == 0)
            return l->v[i].value;
    }
    return NULL;
}

int cd_labels_copy(struct cd_labels *dst, const struct cd_labels *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int rc = cd_labels_set(dst, src->v[i].name, src->v[i].value);
        if (rc < 0)
            return rc;
    }
    return 0;
}

char *cd_labels_to_json(const struct cd_labels *l)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (json_object_set_new(o, l->v[i].name, json_string(l->v[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

const char *cd_scheme_name(enum cd_scheme s)
{
    switch (s) {
    case CD_SCHEME_HTTPS:
        return "https";
    case CD_SCHEME_GOPS:
        return "gops";
    default:
        return "http";
    }
}

int cd_scheme_parse(const char *s, enum cd_scheme *out)
{
    if (strcmp(s, "http") == 0)
        *out = CD_SCHEME_HTTP;
    else if (strcmp(s, "https") == 0)
        *out = CD_SCHEME_HTTPS;
    else if (strcmp(s, "gops") == 0)
        *out = CD_SCHEME_GOPS;
    else
        return -EINVAL;
    return 0;
}

static void kind_spec_free(struct cd_kind_spec *k)
{
    free(k->name);
    free(k->path);
    free(k->query);
}

void cd_target_free(struct cd_target *t)
{
    if (t == NULL)
        return;
    free(t->id);
    free(t->job);
    free(t->address);
    free(t->host);
    cd_labels_free(&t->labels);
    free(t->process_key);
    for (size_t i = 0; i < t->n_kinds; i++)
        kind_spec_free(&t->kinds[i]);
    free(t->kinds);
    free(t->auth.username);
    free(t->auth.password);
    free(t->auth.bearer);
    free(t->auth.auth_type);
    free(t->tls.ca_file);
    free(t->tls.cert_file);
    free(t->tls.key_file);
    free(t->tls.server_name);
    free(t->proxy_url);
    memset(t, 0, sizeof(*t));
}

void cd_target_set_free(struct cd_target_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        cd_target_free(&set->v[i]);
    free(set->v);
    set->v = NULL;
    set->n = 0;
    set->cap = 0;
}

struct cd_target *cd_target_set_add(struct cd_target_set *set)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct cd_target *v = realloc(set->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        set->v = v;
        set->cap = cap;
    }
    struct cd_target *t = &set->v[set->n++];
    memset(t, 0, sizeof(*t));
    return t;
}

struct cd_target *cd_target_set_find(const struct cd_target_set *set, const char *id)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->v[i].id != NULL && strcmp(set->v[i].id, id) == 0)
            return &set->v[i];
    }
    return NULL;
}

int cd_target_split_address(const char *address, char **host, int *port)
{
    const char *colon;
    const char *hs = address;
    size_t hl;
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        hs = address + 1;
        hl = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(address, ':');
        if (colon == NULL || strchr(address, ':') != colon)
            return -EINVAL;
        hl = (size_t)(colon - address);
    }
    if (hl == 0)
        return -EINVAL;
    int p;
    if (cd_str_to_int(colon + 1, 1, 65535, &p) < 0)
        return -EINVAL;
    char *h = cd_str_ndup(hs, hl);
    if (h == NULL)
        return -ENOMEM;
    *host = h;
    *port = p;
    return 0;
}

/* Fingerprint input: fields separated by a byte that can't occur in them. */
static void fp_add(uint64_t *h, const char *s)
{
    static const uint8_t sep = 0x1f;
    if (s != NULL) {
        uint64_t x = cd_hash_fnv1a64(s, strlen(s));
        *h = (*h ^ x) * 1099511628211ULL;
    }
    *h = (*h ^ sep) * 1099511628211ULL;
}

static void fp_add_int(uint64_t *h, int64_t v)
{
    char b[32];
    snprintf(b, sizeof(b), "%lld", (long long)v);
    fp_add(h, b);
}

int cd_target_finish(struct cd_target *t)
{
    if (t->job == NULL || t->address == NULL)
        return -EINVAL;
    free(t->host);
    t->host = NULL;
    int rc = cd_target_split_address(t->address, &t->host, &t->port);
    if (rc < 0)
        return rc;
    free(t->id);
    t->id = cd_str_printf("%s/%s://%s", t->job, cd_scheme_name(t->scheme), t->address);
    const char *pid = cd_labels_get(&t->labels, "pid");
    free(t->process_key);
    t->process_key = pid != NULL ? cd_str_printf("%s#%s", t->host, pid) : cd_str_dup(t->host);
    if (t->id == NULL || t->process_key == NULL)
        return -ENOMEM;

    uint64_t h = 14695981039346656037ULL;
    fp_add(&h, t->id);
    for (size_t i = 0; i < t->labels.n; i++) {
        fp_add(&h, t->labels.v[i].name);
        fp_add(&h, t->labels.v[i].value);
    }
    fp_add(&h, t->process_key);
    for (size_t i = 0; i < t->n_kinds; i++) {
        const struct cd_kind_spec *k = &t->kinds[i];
        fp_add(&h, k->name);
        fp_add(&h, k->path);
        fp_add(&h, k->query);
        fp_add_int(&h, k->gops_cmd);
        fp_add_int(&h, k->seconds);
        fp_add_int(&h, k->interval_ms);
        fp_add_int(&h, k->timeout_ms);
        fp_add_int(&h, k->exclusive);
    }
    fp_add(&h, t->auth.username);
    fp_add(&h, t->auth.password);
    fp_add(&h, t->auth.bearer);
    fp_add(&h, t->auth.auth_type);
    fp_add(&h, t->tls.ca_file);
    fp_add(&h, t->tls.cert_file);
    fp_add(&h, t->tls.key_file);
    fp_add(&h, t->tls.server_name);
    fp_add_int(&h, t->tls.insecure_skip_verify);
    fp_add_int(&h, t->no_follow_redirects);
    fp_add_int(&h, t->no_http2);
    fp_add(&h, t->proxy_url);
    fp_add_int(&h, (int64_t)t->max_body_bytes);
    t->fingerprint = h;
    return 0;
}

char *cd_target_request(const struct cd_target *t, const struct cd_kind_spec *k)
{
    if (t->scheme == CD_SCHEME_GOPS)
        return cd_str_printf("gops://%s 0x%02x", t->address, (unsigned)k->gops_cmd);
    const char *q = k->query != NULL && k->query[0] != '\0' ? k->query : NULL;
    return cd_str_printf("%s://%s%s%s%s", cd_scheme_name(t->scheme), t->address,
                         k->path != NULL ? k->path : "", q ? "?" : "", q ? q : "");
}
