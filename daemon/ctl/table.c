/* table — see table.h. */
#include "ctl/table.h"

#include "str.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid; *cp its code point. */
static size_t utf8_seq(const unsigned char *s, uint32_t *cpo)
{
    if (s[0] < 0x80) {
        *cpo = s[0];
        return 1;
    }
    size_t n;
    uint32_t cp;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cpo = cp;
    return n;
}

static size_t utf8_len(const unsigned char *s)
{
    uint32_t cp;
    return utf8_seq(s, &cp);
}

size_t cd_table_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = utf8_len(p);
        p += n ? n : 1;
        w++;
    }
    return w;
}

char *cd_table_sanitize(const char *s)
{
    if (s == NULL)
        s = "";
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p != '\0') {
        if (*p < 0x20 || *p == 0x7f) {
            out[o++] = *p == '\t' ? ' ' : '?';
            p++;
            continue;
        }
        uint32_t cp = 0;
        size_t n = utf8_seq(p, &cp);
        if (n == 0) {
            out[o++] = '?';
            p++;
            continue;
        }
        if (cp >= 0x80 && cp <= 0x9f) { /* C1 controls (CSI, OSC...) */
            out[o++] = '?';
            p += n;
            continue;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
    return out;
}

int cd_table_term_width(int fd)
{
    struct winsize ws;
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col < 40 ? 40 : ws.ws_col;
    return 80;
}

void cd_table_init(struct cd_table *t)
{
    memset(t, 0, sizeof(*t));
}

void cd_table_free(struct cd_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i].title);
    memset(t, 0, sizeof(*t));
}

int cd_table_add_col(struct cd_table *t, const char *title, enum cd_table_align align, int min,
                     int max)
{
    if (t->ncols >= CD_TABLE_MAX_COLS || t->nrows > 0)
        return -EINVAL;
    char *copy = cd_str_dup(title);
    if (copy == NULL)
        return -ENOMEM;
    t->cols[t->ncols++] = (struct cd_table_col){copy, align, min, max};
    return 0;
}

int cd_table_add_row(struct cd_table *t, const char *const *cells)
{
    if (t->ncols == 0)
        return -EINVAL;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (p == NULL)
            return -ENOMEM;
        t->cells = p;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = cd_table_sanitize(cells[i]);
        if (row[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(row[j]);
            return -ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

/* Writes s cut to w code points (with an ellipsis when cut), padded when pad. */
static void put_cell(FILE *f, const char *s, int w, enum cd_table_align align, bool pad)
{
    int sw = (int)cd_table_width(s);
    if (sw <= w) {
        if (align == CD_TABLE_RIGHT)
            fprintf(f, "%*s%s", w - sw, "", s);
        else
            fprintf(f, "%s%*s", s, pad ? w - sw : 0, "");
        return;
    }
    if (w <= 0)
        return;
    const unsigned char *p = (const unsigned char *)s;
    if (align == CD_TABLE_TAIL) {
        /* skip the code points that do not fit, keep the last w - 1 */
        for (int skip = sw - (w - 1); skip > 0 && *p != '\0'; skip--) {
            size_t n = utf8_len(p);
            p += n ? n : 1;
        }
        fputs("\xe2\x80\xa6", f);
        fputs((const char *)p, f);
        return;
    }
    for (int i = 0; i < w - 1 && *p != '\0'; i++) {
        size_t n = utf8_len(p);
        n = n ? n : 1;
        fwrite(p, 1, n, f);
        p += n;
    }
    fputs("\xe2\x80\xa6", f);
}

void cd_table_print(const struct cd_table *t, FILE *f, int width)
{
    int w[CD_TABLE_MAX_COLS];
    int total = 0;
    for (size_t c = 0; c < t->ncols; c++) {
        int cw = (int)cd_table_width(t->cols[c].title);
        for (size_t r = 0; r < t->nrows; r++) {
            int n = (int)cd_table_width(t->cells[r * t->ncols + c]);
            if (n > cw)
                cw = n;
        }
        if (t->cols[c].max > 0 && cw > t->cols[c].max)
            cw = t->cols[c].max;
        w[c] = cw;
        total += cw;
    }
    total += CD_TABLE_GAP * (int)(t->ncols > 0 ? t->ncols - 1 : 0);
    while (total > width) {
        int best = -1, slack = 0;
        for (size_t c = 0; c < t->ncols; c++) {
            int s = w[c] - (t->cols[c].min > 1 ? t->cols[c].min : 1);
            if (s > slack) {
                slack = s;
                best = (int)c;
            }
        }
        if (best < 0)
            break;
        w[best]--;
        total--;
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        /* Each line is built whole so trailing blanks (empty last cells) can be cut. */
        char *line = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&line, &len);
        if (m == NULL)
            return;
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->cols[c].title : t->cells[(r - 1) * t->ncols + c];
            bool last = c + 1 == t->ncols;
            put_cell(m, s, w[c], t->cols[c].align, !last);
            if (!last)
                fprintf(m, "%*s", CD_TABLE_GAP, "");
        }
        fclose(m);
        while (len > 0 && line[len - 1] == ' ')
            line[--len] = '\0';
        fprintf(f, "%s\n", line);
        free(line);
    }
}
