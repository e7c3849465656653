/*
 * ptest — helpers shared by the parser tests: a tiny protobuf writer for hand-made (and
 * deliberately broken) profiles, gzip through libdeflate, the pprof MANIFEST.md table of the
 * shared test data, and lookups in summary JSON. Test-only code; single-threaded.
 */
#ifndef PTEST_H
#define PTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer that aborts the test on allocation failure. */
struct pb {
    uint8_t *d;
    size_t len, cap;
};

void pb_raw(struct pb *b, const void *p, size_t n);
void pb_varint(struct pb *b, uint64_t v);
void pb_tag(struct pb *b, uint32_t field, unsigned wire_type);
void pb_uint(struct pb *b, uint32_t field, uint64_t v);               /* varint field */
void pb_bytes(struct pb *b, uint32_t field, const void *p, size_t n); /* length-delimited */
void pb_str(struct pb *b, uint32_t field, const char *s);
void pb_msg(struct pb *b, uint32_t field, const struct pb *m); /* a nested message */
void pb_packed(struct pb *b, uint32_t field, const uint64_t *v, size_t n);
void pb_free(struct pb *b);

/* gzip (one member, libdeflate level 6); malloc'd. */
uint8_t *ptest_gzip(const uint8_t *d, size_t n, size_t *out_len);

/* One row of testdata/pprof/MANIFEST.md (main table or agpl-pyroscope/). */
struct ptest_row {
    char file[256];  /* relative to testdata/pprof */
    char kind[256];  /* "Profile type" column */
    char types[512]; /* "sample types" column */
    long samples;    /* -1 when empty */
    char notes[512];
};
/* Reads the manifest under `shared`/testdata/pprof; malloc'd rows. 0 or -errno. */
int ptest_manifest(const char *shared, struct ptest_row **rows, size_t *n);
/* Legacy / text / pprof, as the row says. */
bool ptest_row_is_legacy(const struct ptest_row *r);
bool ptest_row_is_text(const struct ptest_row *r);

/* The sample_types entry of a pprof summary with this type, or NULL. */
json_t *ptest_sample_type(json_t *summary, const char *type);
/* The row of a top table for this function, or NULL. */
json_t *ptest_table_row(json_t *table, const char *function);
/* A series value of a summary; fails the test when absent. */
struct cd_summary;
double ptest_series(const struct cd_summary *s, const char *name);
bool ptest_has_series(const struct cd_summary *s, const char *name);

/* `go tool pprof -top` output: the total and every row (flat, cum, name without " (inline)"). */
struct ptest_top_row {
    char *name;
    double flat, cum;
};

struct ptest_top {
    double total;
    bool has_total;
    struct ptest_top_row *rows;
    size_t n, cap;
};

void ptest_parse_top(char *out, struct ptest_top *t);
void ptest_top_free(struct ptest_top *t);
bool ptest_near(double a, double b); /* equal within rounding of printed integers */
/* Runs `$CD_GO tool pprof -symbolize=none -top -nodecount=0 -nodefraction=0` with
 * -sample_index=index (or `extra` instead) and -unit=unit (when not NULL) on path; its stdout,
 * malloc'd. Fails the test when the tool fails. */
char *ptest_run_pprof(const char *path, size_t index, const char *unit, const char *extra);
/* Compares every sample type of our summary of path (taken with top_n covering every function)
 * with go tool pprof's: totals and every function's flat and cum. Fails the test on a
 * difference; returns the rows compared. Rows pprof names after a binary ("[app]",
 * "<unknown>": frames without function info, which we name by address) are skipped. */
size_t ptest_pprof_matches(const char *label, const char *path, const struct cd_summary *s);

#endif
