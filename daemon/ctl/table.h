/*
 * table — collectorctl's text tables: columns sized to their content, shrunk (widest slack
 * first, never below a column's minimum) to fit the terminal (80 columns when not a terminal),
 * cells cut with an ellipsis. Every cell is sanitized first: text from targets (error messages,
 * labels) may hold terminal escape sequences, which are shown as '?'. Widths count UTF-8 code
 * points. collectorctl's thread; a table owns its cell copies.
 */
#ifndef CD_TABLE_H
#define CD_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define CD_TABLE_MAX_COLS 12
#define CD_TABLE_GAP      2

enum cd_table_align {
    CD_TABLE_LEFT = 0,
    CD_TABLE_RIGHT,
    CD_TABLE_TAIL, /* left-aligned, but a cut keeps the end: "…/pkg.(*T).Method" (Go names) */
};

struct cd_table_col {
    char *title;
    enum cd_table_align align;
    int min; /* never narrower than this (unless the title/content is) */
    int max; /* never wider (0 = no cap) */
};

struct cd_table {
    size_t ncols;
    struct cd_table_col cols[CD_TABLE_MAX_COLS];
    char **cells; /* nrows * ncols */
    size_t nrows;
    size_t cap;
};

void cd_table_init(struct cd_table *t);
void cd_table_free(struct cd_table *t);
int cd_table_add_col(struct cd_table *t, const char *title, enum cd_table_align align, int min,
                     int max);
/* ncols cells (NULL prints empty). */
int cd_table_add_row(struct cd_table *t, const char *const *cells);
/* Prints header and rows within width columns. */
void cd_table_print(const struct cd_table *t, FILE *f, int width);

/* Code points in s (invalid bytes count one each). */
size_t cd_table_width(const char *s);
/* A copy with control characters and invalid UTF-8 replaced by '?'. NULL on ENOMEM. */
char *cd_table_sanitize(const char *s);
/* The terminal's width when fd is a terminal (at least 40), else 80. */
int cd_table_term_width(int fd);

#endif
