/* apiwire — see apiwire.h. */
#include "apiwire.h"

#include "buf.h"
#include "kind.h"
#include "snapshot.h"
#include "str.h"
#include "units.h"

#include <collectord/api.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- query parameters ----------------------------------------------------------------- */

void cd_apiwire_params_init(struct cd_apiwire_params *p)
{
    p->n = 0;
}

void cd_apiwire_params_free(struct cd_apiwire_params *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].key);
        free(p->v[i].value);
    }
    p->n = 0;
}

int cd_apiwire_params_add(struct cd_apiwire_params *p, const char *key, const char *value,
                          struct cd_err *err)
{
    if (value == NULL)
        value = "";
    size_t klen = strlen(key);
    if (klen == 0)
        return cd_err_set(err, -EINVAL, "empty query parameter name");
    if (klen > CD_APIWIRE_MAX_KEY)
        return cd_err_set(err, -EINVAL, "query parameter name longer than %d bytes",
                          CD_APIWIRE_MAX_KEY);
    if (strlen(value) > CD_APIWIRE_MAX_VALUE)
        return cd_err_set(err, -EINVAL, "query parameter '%s' longer than %d bytes", key,
                          CD_APIWIRE_MAX_VALUE);
    if (p->n >= CD_APIWIRE_MAX_PARAMS)
        return cd_err_set(err, -E2BIG, "more than %d query parameters", CD_APIWIRE_MAX_PARAMS);
    char *k = cd_str_dup(key);
    char *v = cd_str_dup(value);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    p->v[p->n].key = k;
    p->v[p->n].value = v;
    p->n++;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into a fresh string; NUL bytes are refused. */
static int pct_decode(const char *s, size_t len, char **out)
{
    char *d = malloc(len + 1);
    if (d == NULL)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len) {
                free(d);
                return -EINVAL;
            }
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(d);
                return -EINVAL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0') {
            free(d);
            return -EINVAL;
        }
        d[o++] = c;
    }
    d[o] = '\0';
    *out = d;
    return 0;
}

int cd_apiwire_params_parse(const char *qs, size_t len, struct cd_apiwire_params *p,
                            struct cd_err *err)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && qs[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && qs[eq] != '=')
                eq++;
            char *k = NULL, *v = NULL;
            int rc = pct_decode(qs + i, eq - i, &k);
            if (rc == 0)
                rc = pct_decode(qs + (eq < end ? eq + 1 : end), eq < end ? end - eq - 1 : 0, &v);
            if (rc != 0) {
                free(k);
                free(v);
                if (rc == -ENOMEM)
                    return cd_err_set(err, rc, "out of memory");
                return cd_err_set(err, -EINVAL, "malformed percent-encoding in the query");
            }
            rc = cd_apiwire_params_add(p, k, v, err);
            free(k);
            free(v);
            if (rc != 0)
                return rc;
        }
        i = end + 1;
    }
    return 0;
}

const char *cd_apiwire_params_get(const struct cd_apiwire_params *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].key, key) == 0)
            return p->v[i].value;
    }
    return NULL;
}

/* The list of allowed names for an error message: "a, b, c". */
static void allowed_list(const char *const *allowed, char *dst, size_t size)
{
    size_t o = 0;
    dst[0] = '\0';
    for (size_t i = 0; allowed[i] != NULL && o < size; i++)
        o += (size_t)snprintf(dst + o, size - o, "%s%s", i ? ", " : "", allowed[i]);
}

int cd_apiwire_params_check(const struct cd_apiwire_params *p, const char *const *allowed,
                            struct cd_err *err)
{
    for (size_t i = 0; i < p->n; i++) {
        bool ok = false;
        for (size_t a = 0; allowed[a] != NULL; a++) {
            if (strcmp(p->v[i].key, allowed[a]) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            char list[512];
            allowed_list(allowed, list, sizeof(list));
            if (list[0] == '\0')
                return cd_err_set(err, -EINVAL, "unknown query parameter '%s' (none expected)",
                                  p->v[i].key);
            return cd_err_set(err, -EINVAL, "unknown query parameter '%s' (expected one of: %s)",
                              p->v[i].key, list);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->v[i].key, p->v[j].key) == 0)
                return cd_err_set(err, -EINVAL, "query parameter '%s' given twice", p->v[i].key);
        }
    }
    return 0;
}

/* ---- cursors ---------------------------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_val(char c)
{
    const char *p = c != '\0' ? strchr(b64url, c) : NULL;
    return p == NULL ? -1 : (int)(p - b64url);
}

int cd_apiwire_cursor_encode(int64_t time_ms, int64_t id, char *dst, size_t size)
{
    char plain[48];
    int n = snprintf(plain, sizeof(plain), "%lld.%lld", (long long)time_ms, (long long)id);
    if (n <= 0 || (size_t)n >= sizeof(plain))
        return -EINVAL;
    size_t need = ((size_t)n * 4 + 2) / 3 + 1;
    if (need > size)
        return -ENOSPC;
    size_t o = 0;
    for (int i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)plain[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(uint8_t)plain[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(uint8_t)plain[i + 2];
        dst[o++] = b64url[(v >> 18) & 63];
        dst[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n)
            dst[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < n)
            dst[o++] = b64url[v & 63];
    }
    dst[o] = '\0';
    return 0;
}

int cd_apiwire_cursor_decode(const char *s, int64_t *time_ms, int64_t *id)
{
    size_t len = strlen(s);
    if (len == 0 || len > CD_APIWIRE_CURSOR_MAX || len % 4 == 1)
        return -EINVAL;
    char plain[CD_APIWIRE_CURSOR_MAX];
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val(s[i]);
        if (v < 0)
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            plain[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* Leftover bits must be zero, or two encodings would decode alike. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return -EINVAL;
    plain[o] = '\0';
    char *dot = strchr(plain, '.');
    if (dot == NULL)
        return -EINVAL;
    *dot = '\0';
    int64_t t, i64;
    if (cd_str_to_i64(plain, &t) != 0 || cd_str_to_i64(dot + 1, &i64) != 0 || i64 <= 0)
        return -EINVAL;
    *time_ms = t;
    *id = i64;
    return 0;
}

/* ---- route arguments -------------------------------------------------------------------- */

int cd_apiwire_parse_id(const char *s, int64_t *id)
{
    if (s == NULL || *s < '1' || *s > '9')
        return -EINVAL;
    int64_t v;
    if (cd_str_to_i64(s, &v) != 0 || v <= 0 || v >= (INT64_C(1) << 53))
        return -EINVAL;
    *id = v;
    return 0;
}

bool cd_apiwire_incident_name_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > CD_API_INCIDENT_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int cd_apiwire_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes"};
    static const char *const no[] = {"0", "false", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* A printable, bounded identifier-ish string from a client (job, target, label value). */
static bool plain_string_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CD_APIWIRE_MAX_STRING)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    }
    return true;
}

static int get_string_param(const struct cd_apiwire_params *p, const char *key, const char **out,
                            struct cd_err *err)
{
    const char *v = cd_apiwire_params_get(p, key);
    if (v != NULL && !plain_string_ok(v))
        return cd_err_set(err, -EINVAL, "parameter '%s' must be 1..%d printable characters", key,
                          CD_APIWIRE_MAX_STRING);
    *out = v;
    return 0;
}

static int get_time_param(const struct cd_apiwire_params *p, const char *key, int64_t now_ms,
                          int64_t absent, int64_t *out, struct cd_err *err)
{
    const char *v = cd_apiwire_params_get(p, key);
    if (v == NULL) {
        *out = absent;
        return 0;
    }
    if (cd_units_parse_time(v, now_ms, out) != 0)
        return cd_err_set(err, -EINVAL,
                          "parameter '%s': '%s' is not a time (RFC 3339, Unix seconds or ms, or "
                          "a duration back from now such as 15m)",
                          key, v);
    return 0;
}

static int get_limit_param(const struct cd_apiwire_params *p, int def, int max, int *out,
                           struct cd_err *err)
{
    const char *v = cd_apiwire_params_get(p, "limit");
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (cd_str_to_int(v, 1, max, out) != 0)
        return cd_err_set(err, -EINVAL, "parameter 'limit' must be an integer 1..%d", max);
    return 0;
}

static int check_range(int64_t since, int64_t until, struct cd_err *err)
{
    if (since != INT64_MIN && until != INT64_MAX && until <= since)
        return cd_err_set(err, -EINVAL, "'until' must be after 'since'");
    return 0;
}

int cd_apiwire_targets_parse(const struct cd_apiwire_params *p, struct cd_apiwire_targets *q,
                             struct cd_err *err)
{
    static const char *const allowed[] = {"job", "health", NULL};
    struct cd_apiwire_targets r = {0};
    int rc = cd_apiwire_params_check(p, allowed, err);
    if (rc == 0)
        rc = get_string_param(p, "job", &r.job, err);
    if (rc == 0)
        rc = get_string_param(p, "health", &r.health, err);
    if (rc != 0)
        return rc;
    if (r.health != NULL && strcmp(r.health, "up") != 0 && strcmp(r.health, "down") != 0 &&
        strcmp(r.health, "unknown") != 0)
        return cd_err_set(err, -EINVAL, "parameter 'health' must be up, down or unknown");
    *q = r;
    return 0;
}

int cd_apiwire_snapshots_parse(const struct cd_apiwire_params *p, int64_t now_ms,
                               struct cd_apiwire_snapshots *q, struct cd_err *err)
{
    static const char *const allowed[] = {"target",   "job",    "kind",  "status",
                                          "incident", "pinned", "since", "until",
                                          "limit",    "cursor", NULL};
    struct cd_apiwire_snapshots r = {0};
    r.pinned = -1;
    int rc = cd_apiwire_params_check(p, allowed, err);
    if (rc == 0)
        rc = get_string_param(p, "target", &r.target, err);
    if (rc == 0)
        rc = get_string_param(p, "job", &r.job, err);
    if (rc == 0)
        rc = get_string_param(p, "kind", &r.kind, err);
    if (rc == 0)
        rc = get_string_param(p, "status", &r.status, err);
    if (rc == 0)
        rc = get_string_param(p, "incident", &r.incident, err);
    if (rc == 0)
        rc = get_time_param(p, "since", now_ms, INT64_MIN, &r.since_ms, err);
    if (rc == 0)
        rc = get_time_param(p, "until", now_ms, INT64_MAX, &r.until_ms, err);
    if (rc == 0)
        rc = check_range(r.since_ms, r.until_ms, err);
    if (rc == 0)
        rc = get_limit_param(p, CD_API_DEFAULT_LIST_LIMIT, CD_API_MAX_LIST_LIMIT, &r.limit, err);
    if (rc != 0)
        return rc;
    if (r.kind != NULL) {
        if (!cd_kind_name_valid(r.kind))
            return cd_err_set(err, -EINVAL, "parameter 'kind': '%s' is not a kind name", r.kind);
        r.kind = cd_kind_canonical(r.kind);
    }
    if (r.status != NULL) {
        enum cd_snap_status st;
        if (cd_snap_status_parse(r.status, &st) != 0)
            return cd_err_set(err, -EINVAL,
                              "parameter 'status': '%s' is not a snapshot status (ok, invalid, "
                              "http_error, busy, timeout, connect_error, too_large, error)",
                              r.status);
    }
    if (r.incident != NULL && !cd_apiwire_incident_name_valid(r.incident))
        return cd_err_set(err, -EINVAL, "parameter 'incident': '%s' is not an incident name",
                          r.incident);
    const char *pinned = cd_apiwire_params_get(p, "pinned");
    if (pinned != NULL) {
        bool b;
        if (cd_apiwire_parse_bool(pinned, &b) != 0)
            return cd_err_set(err, -EINVAL, "parameter 'pinned' must be 0 or 1");
        r.pinned = b ? 1 : 0;
    }
    const char *cursor = cd_apiwire_params_get(p, "cursor");
    if (cursor != NULL) {
        if (cd_apiwire_cursor_decode(cursor, &r.cursor_time_ms, &r.cursor_id) != 0)
            return cd_err_set(err, -EINVAL,
                              "parameter 'cursor' is not a cursor from a previous page");
        r.has_cursor = true;
    }
    *q = r;
    return 0;
}

static bool series_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CD_APIWIRE_SERIES_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':'))
            return false;
    }
    return true;
}

int cd_apiwire_series_parse(const struct cd_apiwire_params *p, int64_t now_ms,
                            struct cd_apiwire_series *q, struct cd_err *err)
{
    static const char *const allowed[] = {"target", "name", "since", "until", "limit", NULL};
    struct cd_apiwire_series r = {0};
    int rc = cd_apiwire_params_check(p, allowed, err);
    if (rc == 0)
        rc = get_string_param(p, "target", &r.target, err);
    if (rc == 0)
        rc = get_string_param(p, "name", &r.name, err);
    if (rc == 0)
        rc = get_time_param(p, "since", now_ms, INT64_MIN, &r.since_ms, err);
    if (rc == 0)
        rc = get_time_param(p, "until", now_ms, INT64_MAX, &r.until_ms, err);
    if (rc == 0)
        rc = check_range(r.since_ms, r.until_ms, err);
    if (rc == 0)
        rc = get_limit_param(p, CD_API_DEFAULT_SERIES_POINTS, CD_API_MAX_SERIES_POINTS, &r.limit,
                             err);
    if (rc != 0)
        return rc;
    if (r.name == NULL)
        return cd_err_set(err, -EINVAL,
                          "parameter 'name' is required (a series such as goroutine.count)");
    if (!series_name_ok(r.name))
        return cd_err_set(err, -EINVAL, "parameter 'name': '%s' is not a series name", r.name);
    *q = r;
    return 0;
}

/* ---- request bodies --------------------------------------------------------------------- */

void cd_apiwire_selector_free(struct cd_apiwire_selector *s)
{
    if (s == NULL)
        return;
    free(s->job);
    free(s->target);
    cd_labels_free(&s->labels);
    memset(s, 0, sizeof(*s));
}

static bool label_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CD_APIWIRE_MAX_KEY)
        return false;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    }
    return true;
}

static int json_plain_string(const json_t *v, const char *what, char **out, struct cd_err *err)
{
    if (!json_is_string(v))
        return cd_err_set(err, -EINVAL, "%s must be a string", what);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !plain_string_ok(s))
        return cd_err_set(err, -EINVAL, "%s must be 1..%d printable characters", what,
                          CD_APIWIRE_MAX_STRING);
    char *d = cd_str_dup(s);
    if (d == NULL)
        return cd_err_set(err, -ENOMEM, "out of memory");
    *out = d;
    return 0;
}

int cd_apiwire_selector_from_json(const json_t *o, struct cd_apiwire_selector *out,
                                  struct cd_err *err)
{
    struct cd_apiwire_selector s = {0};
    int rc = 0;
    if (!json_is_object(o)) {
        rc = cd_err_set(err, -EINVAL, "\"selector\" must be an object");
        goto fail;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        if (strcmp(key, "job") == 0) {
            rc = json_plain_string(v, "selector.job", &s.job, err);
        } else if (strcmp(key, "target") == 0) {
            rc = json_plain_string(v, "selector.target", &s.target, err);
        } else if (strcmp(key, "all") == 0) {
            if (!json_is_boolean(v))
                rc = cd_err_set(err, -EINVAL, "selector.all must be true or false");
            else
                s.all = json_is_true(v);
        } else if (strcmp(key, "labels") == 0) {
            if (!json_is_object(v)) {
                rc = cd_err_set(err, -EINVAL, "selector.labels must be an object of strings");
                goto fail;
            }
            if (json_object_size(v) > CD_API_CAPTURE_MAX_LABELS) {
                rc = cd_err_set(err, -EINVAL, "selector.labels: more than %d labels",
                                CD_API_CAPTURE_MAX_LABELS);
                goto fail;
            }
            const char *lk;
            json_t *lv;
            json_object_foreach(v, lk, lv)
            {
                char *val = NULL;
                if (!label_name_ok(lk)) {
                    rc = cd_err_set(err, -EINVAL, "selector.labels: '%s' is not a label name", lk);
                    goto fail;
                }
                rc = json_plain_string(lv, "a selector label value", &val, err);
                if (rc != 0)
                    goto fail;
                rc = cd_labels_set(&s.labels, lk, val);
                free(val);
                if (rc != 0) {
                    rc = cd_err_set(err, rc, "out of memory");
                    goto fail;
                }
            }
        } else {
            rc = cd_err_set(err, -EINVAL,
                            "selector: unknown member \"%s\" (expected job, target, labels, all)",
                            key);
        }
        if (rc != 0)
            goto fail;
    }
    if (s.job == NULL && s.target == NULL && s.labels.n == 0 && !s.all) {
        rc = cd_err_set(err, -EINVAL,
                        "the selector is empty: give job, target or labels, or \"all\": true to "
                        "mean every target");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    cd_apiwire_selector_free(&s);
    return rc;
}

char *cd_apiwire_selector_describe(const struct cd_apiwire_selector *s)
{
    struct cd_buf b;
    cd_buf_init(&b, 4096);
    int rc = 0;
    if (s->all)
        rc = cd_buf_append_str(&b, "all");
    if (rc == 0 && s->job != NULL)
        rc = cd_buf_printf(&b, "%sjob=%s", b.len ? " " : "", s->job);
    if (rc == 0 && s->target != NULL)
        rc = cd_buf_printf(&b, "%starget=%s", b.len ? " " : "", s->target);
    for (size_t i = 0; rc == 0 && i < s->labels.n; i++)
        rc = cd_buf_printf(&b, "%s%s=%s", b.len ? " " : "", s->labels.v[i].name,
                           s->labels.v[i].value);
    if (rc == 0)
        rc = cd_buf_terminate(&b);
    if (rc != 0) {
        cd_buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)cd_buf_steal(&b, &len);
}

void cd_apiwire_capture_free(struct cd_apiwire_capture *c)
{
    if (c == NULL)
        return;
    cd_apiwire_selector_free(&c->selector);
    for (size_t i = 0; i < c->n_kinds; i++)
        free(c->kinds[i]);
    free(c->kinds);
    free(c->incident);
    memset(c, 0, sizeof(*c));
}

static int parse_kinds(const json_t *v, struct cd_apiwire_capture *c, struct cd_err *err)
{
    if (!json_is_array(v))
        return cd_err_set(err, -EINVAL, "\"kinds\" must be an array of kind names");
    size_t n = json_array_size(v);
    if (n > CD_API_CAPTURE_MAX_KINDS)
        return cd_err_set(err, -EINVAL, "\"kinds\": more than %d kinds", CD_API_CAPTURE_MAX_KINDS);
    if (n == 0)
        return 0;
    c->kinds = calloc(n, sizeof(char *));
    if (c->kinds == NULL)
        return cd_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *k = json_array_get(v, i);
        const char *name = json_string_value(k);
        if (name == NULL || strlen(name) != json_string_length(k) || !cd_kind_name_valid(name))
            return cd_err_set(err, -EINVAL, "\"kinds\"[%zu] is not a kind name ([a-z0-9_-]{1,48})",
                              i);
        const char *canon = cd_kind_canonical(name);
        bool dup = false;
        for (size_t j = 0; j < c->n_kinds; j++)
            dup = dup || strcmp(c->kinds[j], canon) == 0;
        if (dup)
            continue;
        c->kinds[c->n_kinds] = cd_str_dup(canon);
        if (c->kinds[c->n_kinds] == NULL)
            return cd_err_set(err, -ENOMEM, "out of memory");
        c->n_kinds++;
    }
    return 0;
}

static json_t *load_object(const char *body, size_t len, const char *what, struct cd_err *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        cd_err_set(err, -EINVAL, "%s is not valid JSON: %s (line %d, column %d)", what, jerr.text,
                   jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        cd_err_set(err, -EINVAL, "%s must be a JSON object", what);
        return NULL;
    }
    return doc;
}

int cd_apiwire_capture_parse(const char *body, size_t len, struct cd_apiwire_capture *out,
                             struct cd_err *err)
{
    struct cd_apiwire_capture c = {0};
    int rc = 0;
    json_t *doc = load_object(body, len, "the capture request", err);
    if (doc == NULL) {
        rc = err != NULL && err->code != 0 ? err->code : -EINVAL;
        goto fail;
    }
    bool have_selector = false;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "selector") == 0) {
            rc = cd_apiwire_selector_from_json(v, &c.selector, err);
            have_selector = rc == 0;
        } else if (strcmp(key, "kinds") == 0) {
            rc = parse_kinds(v, &c, err);
        } else if (strcmp(key, "incident") == 0) {
            if (json_is_null(v))
                continue;
            const char *name = json_string_value(v);
            if (name == NULL || strlen(name) != json_string_length(v) ||
                !cd_apiwire_incident_name_valid(name)) {
                rc = cd_err_set(err, -EINVAL,
                                "\"incident\" must be 1..%d of [A-Za-z0-9._-], not starting "
                                "with '.'",
                                CD_API_INCIDENT_NAME_MAX);
            } else if ((c.incident = cd_str_dup(name)) == NULL) {
                rc = cd_err_set(err, -ENOMEM, "out of memory");
            }
        } else if (strcmp(key, "timeout_ms") == 0) {
            json_int_t t = json_integer_value(v);
            if (!json_is_integer(v) || t < 1000 || t > CD_API_MAX_CAPTURE_MS)
                rc = cd_err_set(err, -EINVAL, "\"timeout_ms\" must be an integer 1000..%d",
                                CD_API_MAX_CAPTURE_MS);
            else
                c.timeout_ms = (int64_t)t;
        } else {
            rc = cd_err_set(
                err, -EINVAL,
                "unknown member \"%s\" (expected selector, kinds, incident, timeout_ms)", key);
        }
        if (rc != 0)
            goto fail;
    }
    if (!have_selector) {
        rc = cd_err_set(err, -EINVAL,
                        "\"selector\" is required, e.g. {\"selector\": {\"job\": \"api\"}}");
        goto fail;
    }
    json_decref(doc);
    *out = c;
    return 0;
fail:
    json_decref(doc);
    cd_apiwire_capture_free(&c);
    return rc;
}

int cd_apiwire_pin_parse(const char *body, size_t len, char **incident, struct cd_err *err)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i == len) {
        *incident = NULL;
        return 0;
    }
    json_t *doc = load_object(body, len, "the pin request", err);
    if (doc == NULL)
        return err != NULL && err->code != 0 ? err->code : -EINVAL;
    int rc = 0;
    char *name = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "incident") != 0) {
            rc = cd_err_set(err, -EINVAL, "unknown member \"%s\" (expected incident)", key);
            break;
        }
        if (json_is_null(v))
            continue;
        const char *s = json_string_value(v);
        if (s == NULL || strlen(s) != json_string_length(v) || !cd_apiwire_incident_name_valid(s)) {
            rc = cd_err_set(err, -EINVAL,
                            "\"incident\" must be 1..%d of [A-Za-z0-9._-], not starting with '.'",
                            CD_API_INCIDENT_NAME_MAX);
            break;
        }
        free(name);
        name = cd_str_dup(s);
        if (name == NULL) {
            rc = cd_err_set(err, -ENOMEM, "out of memory");
            break;
        }
    }
    json_decref(doc);
    if (rc != 0) {
        free(name);
        return rc;
    }
    *incident = name;
    return 0;
}

/* ---- responses -------------------------------------------------------------------------- */

bool cd_apiwire_is_secret_key(const char *key)
{
    static const char *const exact[] = {
        "password",
        "passwd",
        "secret",
        "client_secret",
        "bearer",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "credentials",
        "basic_auth",
        "private_key",
        "cookie",
        "set-cookie",
        "refresh_token",
        "session",
        "bearer_token",
        "proxy-authorization",
    };
    static const char *const suffixes[] = {"_password", "_secret", "_token", "_credentials"};
    char low[CD_APIWIRE_MAX_KEY + 1];
    size_t n = strlen(key);
    if (n > CD_APIWIRE_MAX_KEY)
        n = CD_APIWIRE_MAX_KEY;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)key[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (strcmp(low, exact[i]) == 0)
            return true;
    }
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (cd_str_has_suffix(low, suffixes[i]))
            return true;
    }
    return false;
}

char *cd_apiwire_strip_userinfo(const char *s)
{
    const char *p = strstr(s, "://");
    bool any = false;
    while (p != NULL) {
        const char *a = p + 3;
        const char *at = NULL;
        for (const char *q = a; *q != '\0' && *q != '/' && *q != '?' && *q != '#' &&
                                !isspace((unsigned char)*q) && *q != '"';
             q++) {
            if (*q == '@')
                at = q;
        }
        if (at != NULL) {
            any = true;
            break;
        }
        p = strstr(a, "://");
    }
    if (!any)
        return NULL;
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    const char *cur = s;
    while ((p = strstr(cur, "://")) != NULL) {
        const char *a = p + 3;
        memcpy(out + o, cur, (size_t)(a - cur));
        o += (size_t)(a - cur);
        const char *at = NULL;
        const char *q = a;
        for (; *q != '\0' && *q != '/' && *q != '?' && *q != '#' && !isspace((unsigned char)*q) &&
               *q != '"';
             q++) {
            if (*q == '@')
                at = q;
        }
        cur = at != NULL ? at + 1 : a;
    }
    size_t rest = strlen(cur);
    memcpy(out + o, cur, rest);
    out[o + rest] = '\0';
    return out;
}

static size_t normalize_value(json_t *v, int depth);

static size_t normalize_object(json_t *o, int depth)
{
    size_t removed = 0;
    const char *key;
    json_t *v;
    void *tmp;
    json_t *twins = NULL;
    json_object_foreach_safe(o, tmp, key, v)
    {
        if (cd_apiwire_is_secret_key(key)) {
            json_object_del(o, key);
            removed++;
            continue;
        }
        if (depth >= CD_APIWIRE_JSON_DEPTH && (json_is_object(v) || json_is_array(v))) {
            json_object_set_new(o, key, json_null());
            continue;
        }
        removed += normalize_value(v, depth + 1);
        if (json_is_string(v)) {
            char *clean = cd_apiwire_strip_userinfo(json_string_value(v));
            if (clean != NULL) {
                /* v is freed by the replacement: look at the new value from here on. */
                json_object_set_new(o, key, json_string(clean));
                free(clean);
                removed++;
                v = json_object_get(o, key);
            }
        }
        size_t klen = strlen(key);
        static const char sfx[] = "_unix_ms";
        if (klen > sizeof(sfx) - 1 && cd_str_has_suffix(key, sfx) &&
            (json_is_integer(v) || json_is_null(v))) {
            char twin[256];
            size_t tl = klen - (sizeof(sfx) - 1);
            if (tl >= sizeof(twin) || json_object_get(o, key) == NULL)
                continue;
            memcpy(twin, key, tl);
            twin[tl] = '\0';
            if (json_object_get(o, twin) != NULL)
                continue;
            if (twins == NULL)
                twins = json_object();
            if (twins == NULL)
                continue;
            if (json_is_null(v)) {
                json_object_set_new(twins, twin, json_null());
            } else {
                char ts[40];
                cd_units_fmt_rfc3339(ts, sizeof(ts), (int64_t)json_integer_value(v));
                json_object_set_new(twins, twin, json_string(ts));
            }
        }
    }
    if (twins != NULL) {
        json_object_update_missing(o, twins);
        json_decref(twins);
    }
    return removed;
}

static size_t normalize_value(json_t *v, int depth)
{
    size_t removed = 0;
    if (json_is_object(v))
        return normalize_object(v, depth);
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            if (depth >= CD_APIWIRE_JSON_DEPTH && (json_is_object(e) || json_is_array(e))) {
                json_array_set_new(v, i, json_null());
                continue;
            }
            removed += normalize_value(e, depth + 1);
            if (json_is_string(e)) {
                char *clean = cd_apiwire_strip_userinfo(json_string_value(e));
                if (clean != NULL) {
                    json_array_set_new(v, i, json_string(clean));
                    free(clean);
                    removed++;
                }
            }
        }
    }
    return removed;
}

size_t cd_apiwire_normalize(json_t *doc)
{
    return normalize_value(doc, 0);
}

int cd_apiwire_http_status(int rc)
{
    switch (rc) {
    case 0:
        return 200;
    case -EINVAL:
    case -ERANGE:
    case -EDOM:
    case -EILSEQ:
        return 400;
    case -EACCES:
    case -EPERM:
        return 403;
    case -ENOENT:
    case -ENODATA:
    case -ESRCH:
        return 404;
    case -EEXIST:
    case -EALREADY:
    case -ENOTEMPTY:
        return 409;
    case -EFBIG:
    case -E2BIG:
    case -EMSGSIZE:
        return 413;
    case -EAGAIN:
    case -EUSERS:
        return 429;
    case -ENOSYS:
    case -EOPNOTSUPP:
        return 501;
    case -EBUSY:
    case -ESHUTDOWN:
    case -ECANCELED:
    case -ENOBUFS:
        return 503;
    case -ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

const char *cd_apiwire_status_code(int http_status)
{
    switch (http_status) {
    case 400:
        return CD_API_CODE_BAD_REQUEST;
    case 401:
        return CD_API_CODE_UNAUTHORIZED;
    case 403:
        return CD_API_CODE_FORBIDDEN;
    case 404:
        return CD_API_CODE_NOT_FOUND;
    case 405:
        return CD_API_CODE_METHOD;
    case 409:
        return CD_API_CODE_CONFLICT;
    case 413:
        return CD_API_CODE_TOO_LARGE;
    case 429:
        return CD_API_CODE_TOO_MANY;
    case 501:
        return CD_API_CODE_NOT_IMPLEMENTED;
    case 503:
        return CD_API_CODE_UNAVAILABLE;
    case 504:
        return CD_API_CODE_TIMEOUT;
    default:
        return CD_API_CODE_INTERNAL;
    }
}

char *cd_apiwire_safe_name(char *dst, size_t size, const char *s)
{
    size_t o = 0;
    if (size == 0)
        return dst;
    for (size_t i = 0; s != NULL && s[i] != '\0' && o + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = isalnum(c) || c == '.' || c == '_' || c == '-';
        dst[o++] = ok ? (char)c : '_';
    }
    if (o == 0 && size > 1)
        dst[o++] = '_';
    dst[o] = '\0';
    if (dst[0] == '.')
        dst[0] = '_';
    return dst;
}

static bool looks_gzip(const uint8_t *h, size_t n)
{
    return n >= 2 && h[0] == 0x1f && h[1] == 0x8b;
}

static bool looks_text(const uint8_t *h, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n && i < 64; i++) {
        if (h[i] < 0x09 || (h[i] > 0x0d && h[i] < 0x20) || h[i] == 0x7f)
            return false;
    }
    return true;
}

static const char *member_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

const char *cd_apiwire_snapshot_ext(const json_t *meta, const uint8_t *head, size_t head_len)
{
    const char *status = member_str(meta, "status");
    if (status != NULL && strcmp(status, "http_error") == 0)
        return ".txt";
    const char *kind = member_str(meta, "kind");
    const struct cd_kind_info *info = kind != NULL ? cd_kind_lookup(kind) : NULL;
    enum cd_format fmt = info != NULL ? info->format : CD_FORMAT_PPROF;
    switch (fmt) {
    case CD_FORMAT_TRACE:
        return ".trace";
    case CD_FORMAT_GOROUTINE_TEXT:
    case CD_FORMAT_GOPS_MEMSTATS:
    case CD_FORMAT_GOPS_STATS:
    case CD_FORMAT_GOPS_VERSION:
    case CD_FORMAT_HEAP_TEXT:
        return ".txt";
    default:
        break;
    }
    /* Without the bytes at hand, trust Go: its pprof handlers always gzip. */
    if (head_len == 0 || looks_gzip(head, head_len))
        return ".pb.gz";
    if (looks_text(head, head_len))
        return ".txt";
    return ".pb";
}

char *cd_apiwire_snapshot_filename(const json_t *meta, const uint8_t *head, size_t head_len,
                                   bool with_id)
{
    char job[64], inst[96], kind[64], when[32] = "unknown";
    cd_apiwire_safe_name(job, sizeof(job), member_str(meta, "job"));
    cd_apiwire_safe_name(inst, sizeof(inst), member_str(meta, "instance"));
    cd_apiwire_safe_name(kind, sizeof(kind), member_str(meta, "kind"));
    json_t *t = json_object_get(meta, "time_unix_ms");
    if (json_is_integer(t)) {
        time_t secs = (time_t)(json_integer_value(t) / 1000);
        struct tm tm;
        if (gmtime_r(&secs, &tm) != NULL)
            strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
    }
    const char *ext = cd_apiwire_snapshot_ext(meta, head, head_len);
    json_int_t id = json_integer_value(json_object_get(meta, "id"));
    if (with_id)
        return cd_str_printf("%s-%s-%s-%s-%lld%s", job, inst, kind, when, (long long)id, ext);
    return cd_str_printf("%s-%s-%s-%s%s", job, inst, kind, when, ext);
}
