/* relabel — see relabel.h. */
#include "relabel.h"

#include "buf.h"
#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Regexes come from config files; these bound what one may cost. */
#define RX_MAX_SRC    4096
#define RX_MAX_GROUPS 64

static const char ere_special[] = ".[]()*+?{}|^$\\";

struct tr {
    struct cd_buf out;
    size_t posix_groups; /* '(' emitted so far, the anchoring group included */
    size_t *map;
    char **names;
    size_t n; /* RE2 capture groups */
    bool icase;
    struct cd_err *err;
};

static int emit(struct tr *t, const char *s)
{
    return cd_buf_append_str(&t->out, s);
}

static int emit_char(struct tr *t, char c)
{
    return cd_buf_append(&t->out, &c, 1);
}

static int emit_literal(struct tr *t, char c)
{
    if (c != '\0' && strchr(ere_special, c) != NULL) {
        int rc = emit_char(t, '\\');
        if (rc < 0)
            return rc;
    }
    return emit_char(t, c);
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

/* \xHH or \x{H...}: *i points at 'x'. ASCII only: POSIX classes here are byte-based. */
static int parse_hex(struct tr *t, const char *s, size_t *i, char *out)
{
    size_t p = *i + 1;
    unsigned v = 0;
    if (s[p] == '{') {
        p++;
        size_t digits = 0;
        while (s[p] != '}' && s[p] != '\0') {
            int h = hexval(s[p]);
            if (h < 0 || digits >= 6)
                return cd_err_set(t->err, -EINVAL, "bad \\x{...} escape");
            v = v * 16 + (unsigned)h;
            digits++;
            p++;
        }
        if (s[p] != '}' || digits == 0)
            return cd_err_set(t->err, -EINVAL, "bad \\x{...} escape");
        p++;
    } else {
        int h1 = hexval(s[p]), h2 = h1 >= 0 ? hexval(s[p + 1]) : -1;
        if (h1 < 0 || h2 < 0)
            return cd_err_set(t->err, -EINVAL, "bad \\x escape (expected two hex digits)");
        v = (unsigned)(h1 * 16 + h2);
        p += 2;
    }
    if (v == 0 || v > 0x7f)
        return cd_err_set(t->err, -EINVAL, "\\x escapes are supported for ASCII 0x01-0x7f only");
    *out = (char)v;
    *i = p;
    return 0;
}

/* Simple one-character escapes shared by both contexts; 0 when e is not one. */
static char simple_escape(char e)
{
    switch (e) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'f':
        return '\f';
    case 'v':
        return '\v';
    case 'a':
        return '\a';
    default:
        return 0;
    }
}

/* A bracket expression. *i points at '['; on return it points past the closing ']'. */
static int tr_class(struct tr *t, const char *s, size_t *i)
{
    size_t p = *i + 1;
    bool neg = false;
    bool single[256] = {false};
    struct {
        unsigned char lo, hi;
    } ranges[64];
    size_t n_ranges = 0;
    const char *classes[16];
    size_t n_classes = 0;
    if (s[p] == '^') {
        neg = true;
        p++;
    }
    bool first = true;
    while (s[p] != '\0' && (s[p] != ']' || first)) {
        first = false;
        unsigned char c;
        if (s[p] == '[' && s[p + 1] == ':') {
            static const char *known[] = {"alnum", "alpha", "ascii", "blank", "cntrl",
                                          "digit", "graph", "lower", "print", "punct",
                                          "space", "upper", "word",  "xdigit"};
            const char *end = strstr(s + p + 2, ":]");
            if (end == NULL)
                return cd_err_set(t->err, -EINVAL, "unterminated [:class:]");
            size_t len = (size_t)(end - (s + p + 2));
            const char *found = NULL;
            for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
                if (strlen(known[k]) == len && strncmp(known[k], s + p + 2, len) == 0)
                    found = known[k];
            }
            if (found == NULL)
                return cd_err_set(t->err, -EINVAL, "unknown character class [:%.*s:]", (int)len,
                                  s + p + 2);
            if (n_classes >= sizeof(classes) / sizeof(classes[0]))
                return cd_err_set(t->err, -EINVAL, "too many classes in [...]");
            if (strcmp(found, "word") == 0) {
                classes[n_classes++] = "alnum";
                single['_'] = true;
            } else if (strcmp(found, "ascii") == 0) {
                if (n_ranges >= sizeof(ranges) / sizeof(ranges[0]))
                    return cd_err_set(t->err, -EINVAL, "too many ranges in [...]");
                ranges[n_ranges].lo = 1;
                ranges[n_ranges].hi = 0x7f;
                n_ranges++;
            } else {
                classes[n_classes++] = found;
            }
            p = (size_t)(end - s) + 2;
            continue;
        }
        if (s[p] == '\\') {
            char e = s[p + 1];
            if (e == 'd' || e == 's' || e == 'w') {
                if (n_classes >= sizeof(classes) / sizeof(classes[0]))
                    return cd_err_set(t->err, -EINVAL, "too many classes in [...]");
                classes[n_classes++] = e == 'd' ? "digit" : e == 's' ? "space" : "alnum";
                if (e == 'w')
                    single['_'] = true;
                p += 2;
                continue;
            }
            if (e == 'x') {
                char v;
                size_t q = p + 1;
                int rc = parse_hex(t, s, &q, &v);
                if (rc < 0)
                    return rc;
                c = (unsigned char)v;
                p = q;
            } else if (simple_escape(e) != 0) {
                c = (unsigned char)simple_escape(e);
                p += 2;
            } else if (e != '\0' && !isalnum((unsigned char)e)) {
                c = (unsigned char)e;
                p += 2;
            } else {
                return cd_err_set(t->err, -EINVAL, "unsupported escape \\%c inside [...]",
                                  e ? e : ' ');
            }
        } else {
            c = (unsigned char)s[p++];
        }
        /* a range? */
        if (s[p] == '-' && s[p + 1] != ']' && s[p + 1] != '\0') {
            unsigned char hi;
            p++;
            if (s[p] == '\\') {
                char e = s[p + 1];
                if (e == 'x') {
                    char v;
                    size_t q = p + 1;
                    int rc = parse_hex(t, s, &q, &v);
                    if (rc < 0)
                        return rc;
                    hi = (unsigned char)v;
                    p = q;
                } else if (simple_escape(e) != 0) {
                    hi = (unsigned char)simple_escape(e);
                    p += 2;
                } else if (e != '\0' && !isalnum((unsigned char)e)) {
                    hi = (unsigned char)e;
                    p += 2;
                } else {
                    return cd_err_set(t->err, -EINVAL, "bad range end in [...]");
                }
            } else {
                hi = (unsigned char)s[p++];
            }
            if (hi < c)
                return cd_err_set(t->err, -EINVAL, "invalid range %c-%c in [...]", c, hi);
            if (c == ']' || c == '^' || c == '-' || c == '[' || hi == ']' || hi == '-' || hi == '[')
                return cd_err_set(t->err, -EINVAL,
                                  "ranges starting or ending in ] [ ^ - are not supported");
            if (n_ranges >= sizeof(ranges) / sizeof(ranges[0]))
                return cd_err_set(t->err, -EINVAL, "too many ranges in [...]");
            ranges[n_ranges].lo = c;
            ranges[n_ranges].hi = hi;
            n_ranges++;
            continue;
        }
        single[c] = true;
    }
    if (s[p] != ']')
        return cd_err_set(t->err, -EINVAL, "missing closing ]");
    p++;
    *i = p;

    /* A class holding nothing but '^' can't be written as [^]: use the escaped literal. */
    size_t n_single = 0;
    for (int c = 1; c < 256; c++)
        n_single += single[c];
    if (!neg && n_ranges == 0 && n_classes == 0 && n_single == 1 && single['^'])
        return emit(t, "\\^");

    int rc = emit(t, neg ? "[^" : "[");
    if (rc == 0 && single[']'])
        rc = emit_char(t, ']');
    bool started = single[']'];
    for (int c = 1; c < 256 && rc == 0; c++) {
        if (!single[c] || c == ']' || c == '^' || c == '-' || c == '[')
            continue;
        rc = emit_char(t, (char)c);
        started = true;
    }
    for (size_t k = 0; k < n_ranges && rc == 0; k++) {
        if (!started && !neg && ranges[k].lo == '^')
            return cd_err_set(t->err, -EINVAL, "unsupported [...] expression");
        char b[4] = {(char)ranges[k].lo, '-', (char)ranges[k].hi, '\0'};
        rc = emit(t, b);
        started = true;
    }
    for (size_t k = 0; k < n_classes && rc == 0; k++) {
        rc = emit(t, "[:");
        if (rc == 0)
            rc = emit(t, classes[k]);
        if (rc == 0)
            rc = emit(t, ":]");
        started = true;
    }
    if (rc == 0 && single['['])
        rc = emit_char(t, '[');
    if (rc == 0 && single['^'])
        rc = emit_char(t, '^');
    if (rc == 0 && single['-'])
        rc = emit_char(t, '-');
    if (rc == 0)
        rc = emit_char(t, ']');
    return rc;
}

static int add_group(struct tr *t, const char *name, size_t name_len)
{
    if (t->n + 1 >= RX_MAX_GROUPS)
        return cd_err_set(t->err, -EINVAL, "too many groups (at most %d)", RX_MAX_GROUPS - 1);
    if (t->map == NULL) {
        t->map = calloc(RX_MAX_GROUPS, sizeof(*t->map));
        t->names = calloc(RX_MAX_GROUPS, sizeof(*t->names));
        if (t->map == NULL || t->names == NULL)
            return -ENOMEM;
    }
    t->posix_groups++;
    t->n++;
    t->map[t->n] = t->posix_groups;
    if (name != NULL) {
        t->names[t->n] = cd_str_ndup(name, name_len);
        if (t->names[t->n] == NULL)
            return -ENOMEM;
    }
    return emit_char(t, '(');
}

static int tr_escape(struct tr *t, const char *s, size_t *i)
{
    char e = s[*i + 1];
    int rc;
    switch (e) {
    case 'd':
        *i += 2;
        return emit(t, "[0-9]");
    case 'D':
        *i += 2;
        return emit(t, "[^0-9]");
    case 's':
        *i += 2;
        return emit(t, "[[:space:]]");
    case 'S':
        *i += 2;
        return emit(t, "[^[:space:]]");
    case 'w':
        *i += 2;
        return emit(t, "[[:alnum:]_]");
    case 'W':
        *i += 2;
        return emit(t, "[^[:alnum:]_]");
    case 'b':
        *i += 2;
        return emit(t, "\\b");
    case 'B':
        *i += 2;
        return emit(t, "\\B");
    case 'A':
        *i += 2;
        return emit(t, "^");
    case 'z':
        *i += 2;
        return emit(t, "$");
    case 'x': {
        char v;
        size_t q = *i + 1;
        rc = parse_hex(t, s, &q, &v);
        if (rc < 0)
            return rc;
        *i = q;
        return emit_literal(t, v);
    }
    case 'Q': {
        size_t p = *i + 2;
        while (s[p] != '\0' && !(s[p] == '\\' && s[p + 1] == 'E')) {
            rc = emit_literal(t, s[p]);
            if (rc < 0)
                return rc;
            p++;
        }
        *i = s[p] == '\0' ? p : p + 2;
        return 0;
    }
    case 'E':
        *i += 2;
        return 0;
    case 'p':
    case 'P':
        return cd_err_set(t->err, -EINVAL, "Unicode classes \\%c are not supported", e);
    case '\0':
        return cd_err_set(t->err, -EINVAL, "trailing backslash");
    default:
        break;
    }
    if (simple_escape(e) != 0) {
        *i += 2;
        return emit_literal(t, simple_escape(e));
    }
    if (isdigit((unsigned char)e))
        return cd_err_set(t->err, -EINVAL, "backreferences (\\%c) are not supported", e);
    if (isalpha((unsigned char)e))
        return cd_err_set(t->err, -EINVAL, "unsupported escape \\%c", e);
    *i += 2;
    return emit_literal(t, e);
}

/* {n}, {n,}, {n,m}: copied; anything else is a literal '{' as in RE2. */
static int tr_brace(struct tr *t, const char *s, size_t *i)
{
    size_t p = *i + 1;
    size_t digits = 0;
    while (isdigit((unsigned char)s[p]))
        p++, digits++;
    if (digits > 0 && s[p] == ',') {
        p++;
        while (isdigit((unsigned char)s[p]))
            p++;
    }
    if (digits == 0 || s[p] != '}') {
        *i += 1;
        return emit(t, "\\{");
    }
    for (size_t k = *i; k <= p; k++) {
        int rc = emit_char(t, s[k]);
        if (rc < 0)
            return rc;
    }
    /* RE2 caps repetition counts at 1000; so do we (glibc would accept far more). */
    const char *q = s + *i + 1;
    while (*q != '}') {
        long v = 0;
        while (isdigit((unsigned char)*q)) {
            v = v * 10 + (*q - '0');
            if (v > 1000)
                return cd_err_set(t->err, -EINVAL, "repetition count above 1000");
            q++;
        }
        if (*q == ',')
            q++;
    }
    *i = p + 1;
    if (s[*i] == '?')
        return cd_err_set(t->err, -EINVAL, "lazy quantifiers ({n,m}?) are not supported");
    return 0;
}

static int translate(struct tr *t, const char *s)
{
    size_t i = 0;
    int rc = 0;
    if (strncmp(s, "(?i)", 4) == 0) {
        t->icase = true;
        i = 4;
    }
    while (s[i] != '\0' && rc == 0) {
        char c = s[i];
        switch (c) {
        case '\\':
            rc = tr_escape(t, s, &i);
            break;
        case '[':
            rc = tr_class(t, s, &i);
            break;
        case '{':
            rc = tr_brace(t, s, &i);
            break;
        case '(':
            if (s[i + 1] == '?') {
                if (s[i + 2] == ':') {
                    t->posix_groups++;
                    rc = emit_char(t, '(');
                    i += 3;
                } else if (s[i + 2] == '<' || (s[i + 2] == 'P' && s[i + 3] == '<')) {
                    size_t p = i + (s[i + 2] == '<' ? 3 : 4);
                    size_t start = p;
                    while (isalnum((unsigned char)s[p]) || s[p] == '_')
                        p++;
                    if (p == start || s[p] != '>')
                        return cd_err_set(t->err, -EINVAL, "bad group name");
                    rc = add_group(t, s + start, p - start);
                    i = p + 1;
                } else {
                    return cd_err_set(t->err, -EINVAL,
                                      "flags (?%c...) are not supported (only a leading (?i))",
                                      s[i + 2] ? s[i + 2] : ' ');
                }
            } else {
                rc = add_group(t, NULL, 0);
                i++;
            }
            break;
        case '*':
        case '+':
        case '?':
            rc = emit_char(t, c);
            i++;
            if (s[i] == '?')
                return cd_err_set(t->err, -EINVAL, "lazy quantifiers (%c?) are not supported", c);
            break;
        default:
            rc = emit_char(t, c);
            i++;
            break;
        }
    }
    return rc;
}

void cd_regex_free(struct cd_regex *rx)
{
    if (rx == NULL)
        return;
    if (rx->compiled)
        regfree(&rx->re);
    if (rx->group_names != NULL) {
        for (size_t i = 0; i < RX_MAX_GROUPS; i++)
            free(rx->group_names[i]);
    }
    free(rx->group_names);
    free(rx->group_map);
    free(rx->src);
    memset(rx, 0, sizeof(*rx));
}

int cd_regex_compile(struct cd_regex *rx, const char *src, struct cd_err *err)
{
    struct tr t;
    memset(&t, 0, sizeof(t));
    t.err = err;
    t.posix_groups = 1;
    int rc;
    char *full = NULL;
    if (strlen(src) > RX_MAX_SRC) {
        rc = cd_err_set(err, -EINVAL, "regex longer than %d bytes", RX_MAX_SRC);
        goto fail;
    }
    cd_buf_init(&t.out, 4 * RX_MAX_SRC + 64);
    rc = translate(&t, src);
    if (rc == 0)
        rc = cd_buf_terminate(&t.out);
    if (rc < 0) {
        if (rc == -ENOMEM || rc == -EFBIG)
            cd_err_set(err, rc, "regex too large");
        goto fail;
    }
    full = cd_str_printf("^(%s)$", t.out.data != NULL ? (char *)t.out.data : "");
    if (full == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    memset(rx, 0, sizeof(*rx));
    int flags = REG_EXTENDED | (t.icase ? REG_ICASE : 0);
    int r = regcomp(&rx->re, full, flags);
    if (r != 0) {
        char msg[160];
        regerror(r, &rx->re, msg, sizeof(msg));
        rc = cd_err_set(err, -EINVAL, "%s", msg);
        goto fail;
    }
    rx->compiled = true;
    rx->src = cd_str_dup(src);
    if (rx->src == NULL) {
        cd_regex_free(rx);
        rc = -ENOMEM;
        goto fail;
    }
    rx->n_posix_groups = t.posix_groups;
    rx->group_map = t.map;
    rx->group_names = t.names;
    rx->n_groups = t.n;
    t.map = NULL;
    t.names = NULL;
    rc = 0;
fail:
    if (t.names != NULL) {
        for (size_t i = 0; i < RX_MAX_GROUPS; i++)
            free(t.names[i]);
    }
    free(t.names);
    free(t.map);
    cd_buf_free(&t.out);
    free(full);
    return rc;
}

bool cd_regex_match(const struct cd_regex *rx, const char *s)
{
    return rx->compiled && regexec(&rx->re, s, 0, NULL, 0) == 0;
}

/* Like Go's Regexp.ExpandString on an anchored match: $1, ${1}, $name, ${name}, $$. */
static int expand(struct cd_buf *out, const char *tmpl, const struct cd_regex *rx, const char *src,
                  const regmatch_t *m)
{
    const char *p = tmpl;
    int rc = 0;
    while (*p != '\0' && rc == 0) {
        const char *d = strchr(p, '$');
        if (d == NULL)
            return cd_buf_append_str(out, p);
        rc = cd_buf_append(out, p, (size_t)(d - p));
        if (rc < 0)
            return rc;
        p = d + 1;
        if (*p == '$') {
            rc = cd_buf_append(out, "$", 1);
            p++;
            continue;
        }
        const char *name = p;
        size_t len = 0;
        bool braced = false;
        if (*p == '{') {
            braced = true;
            name = p + 1;
            while (isalnum((unsigned char)name[len]) || name[len] == '_')
                len++;
            if (len == 0 || name[len] != '}') {
                rc = cd_buf_append(out, "$", 1); /* malformed: the '$' is literal, as in Go */
                continue;
            }
        } else {
            while (isalnum((unsigned char)name[len]) || name[len] == '_')
                len++;
            if (len == 0) {
                rc = cd_buf_append(out, "$", 1);
                continue;
            }
        }
        p = name + len + (braced ? 1 : 0);
        bool numeric = true;
        for (size_t k = 0; k < len; k++)
            numeric = numeric && isdigit((unsigned char)name[k]);
        size_t pg = SIZE_MAX;
        if (numeric) {
            size_t idx = 0;
            for (size_t k = 0; k < len && idx <= RX_MAX_GROUPS; k++)
                idx = idx * 10 + (size_t)(name[k] - '0');
            if (idx == 0)
                pg = 0;
            else if (idx <= rx->n_groups)
                pg = rx->group_map[idx];
        } else if (rx->group_names != NULL) {
            for (size_t g = 1; g <= rx->n_groups; g++) {
                const char *gn = rx->group_names[g];
                if (gn != NULL && strlen(gn) == len && strncmp(gn, name, len) == 0) {
                    pg = rx->group_map[g];
                    break;
                }
            }
        }
        if (pg != SIZE_MAX && m[pg].rm_so >= 0)
            rc = cd_buf_append(out, src + m[pg].rm_so, (size_t)(m[pg].rm_eo - m[pg].rm_so));
    }
    return rc;
}

const char *cd_relabel_action_name(enum cd_relabel_action a)
{
    static const char *names[] = {"replace",   "keep",      "drop",     "keepequal",
                                  "dropequal", "hashmod",   "labelmap", "labeldrop",
                                  "labelkeep", "lowercase", "uppercase"};
    if ((size_t)a < sizeof(names) / sizeof(names[0]))
        return names[a];
    return "?";
}

int cd_relabel_action_parse(const char *s, enum cd_relabel_action *out)
{
    for (int a = CD_RELABEL_REPLACE; a <= CD_RELABEL_UPPERCASE; a++) {
        if (strcasecmp(s, cd_relabel_action_name((enum cd_relabel_action)a)) == 0) {
            *out = (enum cd_relabel_action)a;
            return 0;
        }
    }
    return -EINVAL;
}

bool cd_relabel_label_name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0' || isdigit((unsigned char)name[0]))
        return false;
    for (const char *p = name; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_') || (unsigned char)*p >= 0x80)
            return false;
    }
    return true;
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Prometheus's relabelTarget: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ */
static bool template_name_valid(const char *s)
{
    const char *p = s;
    if (*p == '\0')
        return false;
    while (*p != '\0') {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_') {
            p++;
        } else if (*p == '$') {
            p++;
            if (*p == '{') {
                p++;
                if (!is_word(*p))
                    return false;
                while (is_word(*p))
                    p++;
                if (*p != '}')
                    return false;
                p++;
            } else {
                if (!is_word(*p))
                    return false;
            }
        } else {
            return false;
        }
        while (is_word(*p))
            p++;
    }
    return true;
}

int cd_relabel_validate(struct cd_relabel_rule *r, struct cd_err *err)
{
    const char *act = cd_relabel_action_name(r->action);
    const char *tl = r->target_label;
    bool tl_set = tl != NULL && tl[0] != '\0';
    bool sep_default = r->separator == NULL || strcmp(r->separator, ";") == 0;
    bool repl_default = r->replacement == NULL || strcmp(r->replacement, "$1") == 0;
    if (!r->regex_set) {
        int rc = cd_regex_compile(&r->regex, CD_RELABEL_DEFAULT_REGEX, err);
        if (rc < 0)
            return rc;
    }
    switch (r->action) {
    case CD_RELABEL_HASHMOD:
        if (r->modulus == 0)
            return cd_err_set(err, -EINVAL, "hashmod requires a non-zero modulus");
        if (!tl_set)
            return cd_err_set(err, -EINVAL, "hashmod requires target_label");
        if (!cd_relabel_label_name_valid(tl))
            return cd_err_set(err, -EINVAL, "\"%s\" is not a valid target_label for hashmod", tl);
        break;
    case CD_RELABEL_REPLACE:
        if (!tl_set)
            return cd_err_set(err, -EINVAL, "replace requires target_label");
        if (strchr(tl, '$') == NULL ? !cd_relabel_label_name_valid(tl) : !template_name_valid(tl))
            return cd_err_set(err, -EINVAL, "\"%s\" is not a valid target_label for replace", tl);
        break;
    case CD_RELABEL_LOWERCASE:
    case CD_RELABEL_UPPERCASE:
    case CD_RELABEL_KEEPEQUAL:
    case CD_RELABEL_DROPEQUAL:
        if (!tl_set)
            return cd_err_set(err, -EINVAL, "%s requires target_label", act);
        if (!cd_relabel_label_name_valid(tl))
            return cd_err_set(err, -EINVAL, "\"%s\" is not a valid target_label for %s", tl, act);
        if (!repl_default)
            return cd_err_set(err, -EINVAL, "replacement can not be set for %s", act);
        if ((r->action == CD_RELABEL_KEEPEQUAL || r->action == CD_RELABEL_DROPEQUAL) &&
            (r->regex_set || r->modulus != 0 || !sep_default))
            return cd_err_set(err, -EINVAL,
                              "%s takes only source_labels and target_label, no other fields", act);
        break;
    case CD_RELABEL_LABELMAP:
        if (!template_name_valid(r->replacement != NULL ? r->replacement : "$1"))
            return cd_err_set(err, -EINVAL, "\"%s\" is not a valid replacement for labelmap",
                              r->replacement);
        break;
    case CD_RELABEL_LABELDROP:
    case CD_RELABEL_LABELKEEP:
        if (r->source_labels_set || tl_set || r->modulus != 0 || !sep_default || !repl_default)
            return cd_err_set(err, -EINVAL, "%s takes only regex, no other fields", act);
        break;
    default:
        break;
    }
    return 0;
}

void cd_relabel_rule_free(struct cd_relabel_rule *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_source_labels; i++)
        free(r->source_labels[i]);
    free(r->source_labels);
    free(r->separator);
    free(r->target_label);
    free(r->replacement);
    cd_regex_free(&r->regex);
    memset(r, 0, sizeof(*r));
}

static void labels_del(struct cd_labels *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, name) == 0) {
            free(l->v[i].name);
            free(l->v[i].value);
            memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
            l->n--;
            return;
        }
    }
}

/* Prometheus semantics: a label with an empty value does not exist. */
static int labels_put(struct cd_labels *l, const char *name, const char *value)
{
    if (value == NULL || value[0] == '\0') {
        labels_del(l, name);
        return 0;
    }
    return cd_labels_set(l, name, value);
}

static int apply_one(const struct cd_relabel_rule *r, struct cd_labels *l)
{
    struct cd_buf val, tmp, tmp2;
    cd_buf_init(&val, 0);
    cd_buf_init(&tmp, 0);
    cd_buf_init(&tmp2, 0);
    regmatch_t m[RX_MAX_GROUPS + 2];
    size_t nm = r->regex.n_posix_groups + 1;
    const char *sep = r->separator != NULL ? r->separator : CD_RELABEL_DEFAULT_SEPARATOR;
    const char *repl = r->replacement != NULL ? r->replacement : CD_RELABEL_DEFAULT_REPLACEMENT;
    int rc = 0;
    int keep = 1;
    for (size_t i = 0; i < r->n_source_labels && rc == 0; i++) {
        if (i > 0)
            rc = cd_buf_append_str(&val, sep);
        const char *v = cd_labels_get(l, r->source_labels[i]);
        if (rc == 0 && v != NULL)
            rc = cd_buf_append_str(&val, v);
    }
    if (rc == 0)
        rc = cd_buf_terminate(&val);
    if (rc < 0)
        goto out;
    const char *s = val.data != NULL ? (const char *)val.data : "";

    switch (r->action) {
    case CD_RELABEL_DROP:
        keep = !cd_regex_match(&r->regex, s);
        break;
    case CD_RELABEL_KEEP:
        keep = cd_regex_match(&r->regex, s);
        break;
    case CD_RELABEL_DROPEQUAL: {
        const char *t = cd_labels_get(l, r->target_label);
        keep = strcmp(t != NULL ? t : "", s) != 0;
        break;
    }
    case CD_RELABEL_KEEPEQUAL: {
        const char *t = cd_labels_get(l, r->target_label);
        keep = strcmp(t != NULL ? t : "", s) == 0;
        break;
    }
    case CD_RELABEL_REPLACE:
        if (regexec(&r->regex.re, s, nm, m, 0) != 0)
            break;
        rc = expand(&tmp, r->target_label, &r->regex, s, m);
        if (rc == 0)
            rc = cd_buf_terminate(&tmp);
        if (rc == 0)
            rc = expand(&tmp2, repl, &r->regex, s, m);
        if (rc == 0)
            rc = cd_buf_terminate(&tmp2);
        if (rc < 0)
            break;
        if (tmp.data == NULL || !cd_relabel_label_name_valid((const char *)tmp.data))
            break;
        rc = labels_put(l, (const char *)tmp.data, tmp2.data ? (const char *)tmp2.data : "");
        break;
    case CD_RELABEL_LOWERCASE:
    case CD_RELABEL_UPPERCASE: {
        char *c = cd_str_dup(s);
        if (c == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (char *p = c; *p; p++)
            *p = (char)(r->action == CD_RELABEL_LOWERCASE ? tolower((unsigned char)*p)
                                                          : toupper((unsigned char)*p));
        rc = labels_put(l, r->target_label, c);
        free(c);
        break;
    }
    case CD_RELABEL_HASHMOD: {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16) {
            rc = -EIO;
            break;
        }
        uint64_t h = 0;
        for (int i = 8; i < 16; i++)
            h = (h << 8) | md[i];
        char num[32];
        snprintf(num, sizeof(num), "%llu", (unsigned long long)(h % r->modulus));
        rc = labels_put(l, r->target_label, num);
        break;
    }
    case CD_RELABEL_LABELMAP: {
        /* Iterate over a snapshot: setting labels reorders the live set. */
        struct cd_labels snap = {0};
        rc = cd_labels_copy(&snap, l);
        for (size_t i = 0; i < snap.n && rc == 0; i++) {
            const char *name = snap.v[i].name;
            if (regexec(&r->regex.re, name, nm, m, 0) != 0)
                continue;
            cd_buf_reset(&tmp);
            rc = expand(&tmp, repl, &r->regex, name, m);
            if (rc == 0)
                rc = cd_buf_terminate(&tmp);
            if (rc == 0 && tmp.data != NULL && cd_relabel_label_name_valid((char *)tmp.data))
                rc = labels_put(l, (const char *)tmp.data, snap.v[i].value);
        }
        cd_labels_free(&snap);
        break;
    }
    case CD_RELABEL_LABELDROP:
    case CD_RELABEL_LABELKEEP:
        for (size_t i = l->n; i-- > 0;) {
            bool match = cd_regex_match(&r->regex, l->v[i].name);
            if (match == (r->action == CD_RELABEL_LABELDROP)) {
                char *name = cd_str_dup(l->v[i].name);
                if (name == NULL) {
                    rc = -ENOMEM;
                    break;
                }
                labels_del(l, name);
                free(name);
            }
        }
        break;
    }
out:
    cd_buf_free(&val);
    cd_buf_free(&tmp);
    cd_buf_free(&tmp2);
    return rc < 0 ? rc : keep;
}

int cd_relabel_apply(const struct cd_relabel_rule *rules, size_t n, struct cd_labels *labels)
{
    for (size_t i = 0; i < n; i++) {
        int rc = apply_one(&rules[i], labels);
        if (rc <= 0)
            return rc;
    }
    return 1;
}

bool cd_relabel_uses_label(const struct cd_relabel_rule *rules, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const struct cd_relabel_rule *r = &rules[i];
        for (size_t k = 0; k < r->n_source_labels; k++) {
            if (strcmp(r->source_labels[k], name) == 0)
                return true;
        }
        if (r->target_label != NULL && strcmp(r->target_label, name) == 0)
            return true;
    }
    return false;
}
