/* promtext — see promtext.h. */
#include "promtext.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cd_promtext_metric_name_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 200)
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

bool cd_promtext_label_name_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 200 || strncmp(s, "__", 2) == 0)
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

int cd_promtext_escape(struct cd_buf *out, const char *s, bool quote_escape)
{
    int rc = 0;
    for (const char *p = s; *p != '\0' && rc == 0; p++) {
        if (*p == '\\')
            rc = cd_buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = cd_buf_append(out, "\\n", 2);
        else if (*p == '"' && quote_escape)
            rc = cd_buf_append(out, "\\\"", 2);
        else
            rc = cd_buf_append(out, p, 1);
    }
    return rc;
}

/* Shortest text that reads back as the same double; integers without a fraction. */
static void fmt_double(char *dst, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(dst, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(dst, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(dst, size, "%.*g", prec, v);
        if (strtod(dst, NULL) == v)
            return;
    }
}

/* A sample value: a number, or "+Inf"/"-Inf"/"NaN". -EINVAL otherwise. */
static int value_text(const json_t *v, char *dst, size_t size, double *as_double)
{
    if (json_is_integer(v)) {
        snprintf(dst, size, "%lld", (long long)json_integer_value(v));
        if (as_double != NULL)
            *as_double = (double)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        fmt_double(dst, size, json_real_value(v));
        if (as_double != NULL)
            *as_double = json_real_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (s != NULL && (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0)) {
        snprintf(dst, size, "%s", s);
        if (as_double != NULL)
            *as_double = strcmp(s, "NaN") == 0 ? NAN : (s[0] == '+' ? INFINITY : -INFINITY);
        return 0;
    }
    return -EINVAL;
}

/* "{a="x",b="y"" plus an optional extra label, then "}" — or nothing when no labels at all. */
static int write_labels(struct cd_buf *out, const json_t *labels, const char *extra_name,
                        const char *extra_value, const char *family, struct cd_err *err)
{
    size_t n = labels != NULL ? json_object_size(labels) : 0;
    if (labels != NULL && !json_is_object(labels))
        return cd_err_set(err, -EINVAL, "metric %s: \"labels\" must be an object", family);
    if (n > CD_PROMTEXT_MAX_LABELS)
        return cd_err_set(err, -EINVAL, "metric %s: more than %d labels", family,
                          CD_PROMTEXT_MAX_LABELS);
    if (n == 0 && extra_name == NULL)
        return 0;
    int rc = cd_buf_append(out, "{", 1);
    bool first = true;
    const char *k;
    json_t *v;
    if (labels != NULL) {
        json_object_foreach((json_t *)labels, k, v)
        {
            if (!cd_promtext_label_name_ok(k) || (extra_name != NULL && strcmp(k, extra_name) == 0))
                return cd_err_set(err, -EINVAL, "metric %s: bad label name '%s'", family, k);
            const char *s = json_string_value(v);
            if (s == NULL)
                return cd_err_set(err, -EINVAL, "metric %s: label '%s' is not a string", family, k);
            if (rc == 0)
                rc = cd_buf_printf(out, "%s%s=\"", first ? "" : ",", k);
            if (rc == 0)
                rc = cd_promtext_escape(out, s, true);
            if (rc == 0)
                rc = cd_buf_append(out, "\"", 1);
            first = false;
        }
    }
    if (rc == 0 && extra_name != NULL)
        rc = cd_buf_printf(out, "%s%s=\"%s\"", first ? "" : ",", extra_name, extra_value);
    if (rc == 0)
        rc = cd_buf_append(out, "}", 1);
    if (rc != 0)
        return cd_err_set(err, rc, "metrics text larger than the response limit");
    return 0;
}

static int write_line(struct cd_buf *out, const char *name, const char *suffix,
                      const json_t *labels, const char *extra_name, const char *extra_value,
                      const char *value, const char *family, struct cd_err *err)
{
    int rc = cd_buf_printf(out, "%s%s", name, suffix);
    if (rc != 0)
        return cd_err_set(err, rc, "metrics text larger than the response limit");
    rc = write_labels(out, labels, extra_name, extra_value, family, err);
    if (rc != 0)
        return rc;
    rc = cd_buf_printf(out, " %s\n", value);
    if (rc != 0)
        return cd_err_set(err, rc, "metrics text larger than the response limit");
    return 0;
}

static int render_histogram(struct cd_buf *out, const char *name, const json_t *s,
                            struct cd_err *err)
{
    const json_t *labels = json_object_get(s, "labels");
    const json_t *buckets = json_object_get(s, "buckets");
    char count[64], sum[64];
    double count_d = 0;
    if (!json_is_array(buckets) ||
        value_text(json_object_get(s, "count"), count, sizeof(count), &count_d) != 0 ||
        value_text(json_object_get(s, "sum"), sum, sizeof(sum), NULL) != 0)
        return cd_err_set(err, -EINVAL,
                          "metric %s: a histogram sample needs \"buckets\", \"sum\" and "
                          "\"count\"",
                          name);
    double last_le = -INFINITY, last_count = 0;
    bool saw_inf = false;
    for (size_t i = 0; i < json_array_size(buckets); i++) {
        const json_t *b = json_array_get(buckets, i);
        char le[64], c[64];
        double le_d, c_d;
        if (!json_is_array(b) || json_array_size(b) != 2 ||
            value_text(json_array_get(b, 0), le, sizeof(le), &le_d) != 0 ||
            value_text(json_array_get(b, 1), c, sizeof(c), &c_d) != 0 || isnan(le_d))
            return cd_err_set(err, -EINVAL, "metric %s: bucket %zu is not [le, count]", name, i);
        if (le_d <= last_le || c_d < last_count)
            return cd_err_set(err, -EINVAL,
                              "metric %s: buckets must be sorted by le with cumulative counts",
                              name);
        last_le = le_d;
        last_count = c_d;
        saw_inf = isinf(le_d) && le_d > 0;
        int rc = write_line(out, name, "_bucket", labels, "le", le, c, name, err);
        if (rc != 0)
            return rc;
    }
    if (!saw_inf) {
        if (count_d < last_count)
            return cd_err_set(err, -EINVAL, "metric %s: count below the last bucket", name);
        int rc = write_line(out, name, "_bucket", labels, "le", "+Inf", count, name, err);
        if (rc != 0)
            return rc;
    }
    int rc = write_line(out, name, "_sum", labels, NULL, NULL, sum, name, err);
    if (rc == 0)
        rc = write_line(out, name, "_count", labels, NULL, NULL, count, name, err);
    return rc;
}

static int render_family(struct cd_buf *out, const json_t *f, struct cd_err *err)
{
    const char *name = json_string_value(json_object_get(f, "name"));
    const char *type = json_string_value(json_object_get(f, "type"));
    const char *help = json_string_value(json_object_get(f, "help"));
    const json_t *samples = json_object_get(f, "samples");
    if (!cd_promtext_metric_name_ok(name))
        return cd_err_set(err, -EINVAL, "metric family with a bad name '%s'",
                          name != NULL ? name : "(none)");
    if (type == NULL)
        type = "untyped";
    bool hist = strcmp(type, "histogram") == 0;
    if (!hist && strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0 &&
        strcmp(type, "untyped") != 0)
        return cd_err_set(err, -EINVAL, "metric %s: unsupported type '%s'", name, type);
    if (samples != NULL && !json_is_array(samples))
        return cd_err_set(err, -EINVAL, "metric %s: \"samples\" must be an array", name);
    int rc = 0;
    if (help != NULL) {
        rc = cd_buf_printf(out, "# HELP %s ", name);
        if (rc == 0)
            rc = cd_promtext_escape(out, help, false);
        if (rc == 0)
            rc = cd_buf_append(out, "\n", 1);
    }
    if (rc == 0)
        rc = cd_buf_printf(out, "# TYPE %s %s\n", name, type);
    if (rc != 0)
        return cd_err_set(err, rc, "metrics text larger than the response limit");
    for (size_t i = 0; i < json_array_size(samples); i++) {
        const json_t *s = json_array_get(samples, i);
        if (!json_is_object(s))
            return cd_err_set(err, -EINVAL, "metric %s: sample %zu is not an object", name, i);
        if (hist) {
            rc = render_histogram(out, name, s, err);
        } else {
            char v[64];
            if (value_text(json_object_get(s, "value"), v, sizeof(v), NULL) != 0)
                return cd_err_set(err, -EINVAL, "metric %s: sample %zu has no numeric value", name,
                                  i);
            rc = write_line(out, name, "", json_object_get(s, "labels"), NULL, NULL, v, name, err);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cd_promtext_render(const json_t *doc, struct cd_buf *out, struct cd_err *err)
{
    const json_t *fams = json_is_array(doc) ? doc : json_object_get(doc, "metrics");
    if (!json_is_array(fams))
        return cd_err_set(err, -EINVAL, "metrics: expected {\"metrics\": [...]}");
    size_t n = json_array_size(fams);
    if (n > CD_PROMTEXT_MAX_FAMILIES)
        return cd_err_set(err, -E2BIG, "metrics: more than %d families", CD_PROMTEXT_MAX_FAMILIES);
    for (size_t i = 0; i < n; i++) {
        const json_t *f = json_array_get(fams, i);
        if (!json_is_object(f))
            return cd_err_set(err, -EINVAL, "metrics: family %zu is not an object", i);
        const char *name = json_string_value(json_object_get(f, "name"));
        for (size_t j = 0; name != NULL && j < i; j++) {
            const char *other = json_string_value(json_object_get(json_array_get(fams, j), "name"));
            if (other != NULL && strcmp(other, name) == 0)
                return cd_err_set(err, -EINVAL, "metrics: family %s given twice", name);
        }
        int rc = render_family(out, f, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
