/*
 * collectorctl — the command-line client of collectord's query socket: status, targets,
 * snapshots, summaries, downloads, capture now, pins, incident bundles, retention, and offline
 * inspection of local files. Talks HTTP over the Unix socket (or TCP with a token) through the
 * client library; prints tables that fit the terminal, or the API's JSON unchanged (-o json).
 * Exit codes: 0 ok, 1 error, 2 usage. Single-threaded.
 */
#include <collectord/api.h>
#include <collectord/client.h>
#include <collectord/version.h>

#include "ctl/inspect.h"
#include "ctl/render.h"
#include "ctl/table.h"
#include "err.h"
#include "str.h"
#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK    0
#define EXIT_ERR   1
#define EXIT_USAGE 2

#define START_HINT "sudo systemctl start collectord"

enum out_mode {
    OUT_TABLE = 0,
    OUT_JSON,
};

struct ctl {
    const char *endpoint;
    const char *token_file;
    enum out_mode out;
    int progress; /* -1: when stderr is a terminal */
    int width;
    int64_t now_ms;
    struct cd_client *client;
    const char *cmd;
};

struct command {
    const char *name;
    int (*run)(struct ctl *ctl, int argc, char **argv);
    const char *summary; /* one line for the command list */
    const char *synopsis;
    const char *help;
};

static const struct command *find_command(const char *name);

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage_error(struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(struct ctl *ctl, const char *fmt, ...)
{
    fprintf(stderr, "collectorctl%s%s: ", ctl->cmd ? " " : "", ctl->cmd ? ctl->cmd : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    const struct command *c = ctl->cmd ? find_command(ctl->cmd) : NULL;
    if (c != NULL)
        fprintf(stderr, "\nusage: collectorctl %s\n(collectorctl %s --help tells more)\n",
                c->synopsis, c->name);
    else
        fprintf(stderr, "\n(collectorctl --help lists the commands)\n");
    return EXIT_USAGE;
}

static const char *mstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t mint(const json_t *o, const char *key, int64_t def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static bool has_int(const json_t *o, const char *key)
{
    return json_is_integer(json_object_get(o, key));
}

static const char *or_dash(const char *s)
{
    return s != NULL && *s != '\0' ? s : "-";
}

/* Prints outsider text (labels, errors) without letting it drive the terminal. */
static void put_clean(FILE *f, const char *s)
{
    char *c = cd_table_sanitize(s);
    fputs(c != NULL ? c : "?", f);
    free(c);
}

static int parse_id(struct ctl *ctl, const char *s, int64_t *id)
{
    if (s == NULL)
        return usage_error(ctl, "%s", "a snapshot ID is required");
    if (cd_str_to_i64(s, id) != 0 || *id <= 0)
        return usage_error(ctl, "'%s' is not a snapshot ID (a positive number)", s);
    return 0;
}

static int parse_output(struct ctl *ctl, const char *v)
{
    if (strcmp(v, "json") == 0)
        ctl->out = OUT_JSON;
    else if (strcmp(v, "table") == 0)
        ctl->out = OUT_TABLE;
    else
        return usage_error(ctl, "-o takes table or json, not '%s'", v);
    return 0;
}

static bool want_progress(const struct ctl *ctl)
{
    return ctl->progress > 0 || (ctl->progress < 0 && isatty(STDERR_FILENO));
}

/* A line above a table saying what it holds and what its columns mean, wrapped to the width. */
static void caption(const struct ctl *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void caption(const struct ctl *ctl, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *clean = cd_table_sanitize(buf);
    cd_render_wrapped(stdout, "", "  ", clean != NULL ? clean : "", ctl->width);
    free(clean);
}

/* ---- talking to the daemon ------------------------------------------------------------------- */

static void transport_message(struct ctl *ctl, int rc, const struct cd_err *err)
{
    const char *ep = ctl->client != NULL ? cd_client_endpoint(ctl->client) : "?";
    bool on_unix = ctl->client != NULL && cd_client_is_unix(ctl->client);
    if (on_unix && rc == -ENOENT)
        fprintf(stderr,
                "collectorctl: collectord is not running (no socket at %s); start it with: "
                "%s\n",
                ep, START_HINT);
    else if (on_unix && rc == -ECONNREFUSED)
        fprintf(stderr,
                "collectorctl: collectord is not running (nothing listens on %s); start it "
                "with: %s\n",
                ep, START_HINT);
    else if (on_unix && rc == -EACCES)
        fprintf(stderr,
                "collectorctl: permission denied on %s: run as root or as a member of the "
                "socket's group\n",
                ep);
    else if (!on_unix && rc == -ECONNREFUSED)
        fprintf(stderr,
                "collectorctl: cannot connect to %s: connection refused (is collectord "
                "listening there? see query.listen)\n",
                ep);
    else
        fprintf(stderr, "collectorctl: %s\n", cd_err_msg(err));
}

static int connect_daemon(struct ctl *ctl)
{
    if (ctl->client != NULL)
        return 0;
    struct cd_err err;
    cd_err_init(&err);
    char *token = NULL;
    const char *tf = ctl->token_file;
    if (tf == NULL)
        tf = getenv("COLLECTORCTL_TOKEN_FILE");
    if (tf != NULL && *tf != '\0' && cd_client_read_token_file(tf, &token, &err) != 0) {
        fprintf(stderr, "collectorctl: %s\n", cd_err_msg(&err));
        return EXIT_ERR;
    }
    struct cd_client_options o = {
        .endpoint = ctl->endpoint,
        .token = token,
        .timeout_ms = 0,
    };
    int rc = cd_client_new(&o, &ctl->client, &err);
    if (token != NULL) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (rc != 0) {
        fprintf(stderr, "collectorctl: %s\n", cd_err_msg(&err));
        return EXIT_ERR;
    }
    return 0;
}

/* One request whose answer must be 2xx. On failure prints why and returns EXIT_ERR; with -o json
 * an error body is passed through to stdout as well. */
static int request(struct ctl *ctl, const char *method, const char *path, const char *const *query,
                   const json_t *body, struct cd_client_response *resp)
{
    if (connect_daemon(ctl) != 0)
        return EXIT_ERR;
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_client_call(ctl->client, method, path, query, body, resp, &err);
    if (rc != 0) {
        transport_message(ctl, rc, &err);
        return EXIT_ERR;
    }
    if (cd_client_check(resp, &err) != 0) {
        if (ctl->out == OUT_JSON && resp->json != NULL)
            fwrite(resp->body, 1, resp->len, stdout);
        fprintf(stderr, "collectorctl: ");
        put_clean(stderr, cd_err_msg(&err));
        fputc('\n', stderr);
        cd_client_response_free(resp);
        return EXIT_ERR;
    }
    if (resp->json == NULL &&
        (resp->content_type == NULL || cd_str_has_prefix(resp->content_type, "application/json"))) {
        fprintf(stderr, "collectorctl: %s answered %s with something other than JSON\n",
                cd_client_endpoint(ctl->client), path);
        cd_client_response_free(resp);
        return EXIT_ERR;
    }
    return 0;
}

static void print_body(const struct cd_client_response *r)
{
    fwrite(r->body, 1, r->len, stdout);
    if (r->len > 0 && r->body[r->len - 1] != '\n')
        fputc('\n', stdout);
}

/* A request whose answer -o json prints as it is: -1 when the caller renders r (and frees it),
 * else the exit code to return (r already freed). */
static int request_table(struct ctl *ctl, const char *method, const char *path,
                         const char *const *query, const json_t *body, struct cd_client_response *r)
{
    int rc = request(ctl, method, path, query, body, r);
    if (rc != 0)
        return rc;
    if (ctl->out != OUT_JSON)
        return -1;
    print_body(r);
    cd_client_response_free(r);
    return EXIT_OK;
}

/* ---- progress ---------------------------------------------------------------------------------
 */

struct progress {
    const char *label;
    bool tty;
    int64_t last_sec;
    uint64_t last_bytes;
    bool shown;
    bool bytes;
};

static void on_progress(void *ctx, uint64_t bytes, uint64_t total, int64_t elapsed_ms)
{
    struct progress *p = ctx;
    int64_t sec = elapsed_ms / 1000;
    if (sec == p->last_sec && (!p->tty || bytes == p->last_bytes))
        return;
    if (!p->tty && sec == p->last_sec)
        return;
    p->last_sec = sec;
    p->last_bytes = bytes;
    char line[160], b[32], t[32];
    int n = snprintf(line, sizeof(line), "%s %llds", p->label, (long long)sec);
    if (p->bytes && n > 0 && (size_t)n < sizeof(line)) {
        cd_units_fmt_size(b, sizeof(b), bytes);
        if (total > 0)
            snprintf(line + n, sizeof(line) - (size_t)n, ", %s of %s", b,
                     cd_units_fmt_size(t, sizeof(t), total));
        else
            snprintf(line + n, sizeof(line) - (size_t)n, ", %s", b);
    }
    if (p->tty)
        fprintf(stderr, "\r%s\033[K", line);
    else
        fprintf(stderr, "%s\n", line);
    p->shown = true;
}

static void progress_begin(struct ctl *ctl, struct progress *p, const char *label, bool bytes)
{
    memset(p, 0, sizeof(*p));
    p->label = label;
    p->bytes = bytes;
    p->last_sec = -1;
    p->tty = isatty(STDERR_FILENO);
    if (want_progress(ctl) && ctl->client != NULL)
        cd_client_set_progress(ctl->client, on_progress, p);
}

static void progress_end(struct ctl *ctl, struct progress *p)
{
    if (ctl->client != NULL)
        cd_client_set_progress(ctl->client, NULL, NULL);
    if (p->shown && p->tty)
        fprintf(stderr, "\r\033[K");
}

/* ---- option parsing ------------------------------------------------------------------------- */

/* Runs getopt_long over a command's arguments; returns the option, -1 at the end, or
 * EXIT_USAGE + 1000 after printing a usage error. */
static int next_opt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
                    const struct option *longopts)
{
    opterr = 0;
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == '?') {
        const char *bad = argv[optind - 1];
        if (optopt != 0 && strchr(shortopts, optopt) != NULL)
            usage_error(ctl, "option '%s' needs a value", bad);
        else
            usage_error(ctl, "unknown option '%s'", bad);
        return 1000 + EXIT_USAGE;
    }
    return c;
}

/* The synopsis, wrapped only between bracketed groups, under "usage: collectorctl". */
static void print_synopsis(const char *synopsis, int width)
{
    const char *lead = "usage: collectorctl ";
    int col = (int)strlen(lead);
    fputs(lead, stdout);
    const char *p = synopsis;
    while (*p != '\0') {
        /* the next unit: up to a space outside brackets */
        int depth = 0;
        size_t n = 0;
        while (p[n] != '\0' && !(p[n] == ' ' && depth == 0)) {
            depth += p[n] == '[' ? 1 : p[n] == ']' ? -1 : 0;
            n++;
        }
        if (col > 24 && col + 1 + (int)n > width) {
            fputs("\n                        ", stdout);
            col = 24;
        } else if (p != synopsis) {
            fputc(' ', stdout);
            col++;
        }
        fwrite(p, 1, n, stdout);
        col += (int)n;
        p += n;
        while (*p == ' ')
            p++;
    }
    fputc('\n', stdout);
}

static int command_help(const char *name)
{
    const struct command *c = find_command(name);
    int width = cd_table_term_width(STDOUT_FILENO);
    print_synopsis(c->synopsis, width);
    putchar('\n');
    /* The help text is one paragraph; its line breaks are only for the source. */
    char *text = cd_str_dup(c->help);
    if (text == NULL)
        return EXIT_ERR;
    for (char *q = text; *q != '\0'; q++) {
        if (*q == '\n')
            *q = ' ';
    }
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == ' ')
        text[--n] = '\0';
    cd_render_wrapped(stdout, "", "", text, width);
    free(text);
    return EXIT_OK;
}

/* Options every daemon command takes: -o table|json, -h. */
#define COMMON_LONGOPTS                                                                            \
    {"output", required_argument, NULL, 'o'},                                                      \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* ---- status ------------------------------------------------------------------------------ */

static void status_line(const char *label, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void status_line(const char *label, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char first[64];
    snprintf(first, sizeof(first), "%-11s ", label);
    char *clean = cd_table_sanitize(buf);
    cd_render_wrapped(stdout, first, "            ", clean != NULL ? clean : "?",
                      cd_table_term_width(STDOUT_FILENO));
    free(clean);
}

/* A duration as "took ..." reads it: "<1ms" rather than "0s". */
static char *fmt_took(char *dst, size_t size, int64_t ms)
{
    if (ms <= 0) {
        snprintf(dst, size, "<1ms");
        return dst;
    }
    return cd_units_fmt_duration(dst, size, ms);
}

static void print_status(struct ctl *ctl, const json_t *s)
{
    char a[96], b[96], c[96];
    const char *ver = mstr(s, "version");
    printf("collectord %s", or_dash(ver));
    if (has_int(s, "pid"))
        printf(" (pid %lld)", (long long)mint(s, "pid", 0));
    if (has_int(s, "uptime_ms"))
        printf(", up %s", cd_units_fmt_duration(a, sizeof(a), mint(s, "uptime_ms", 0)));
    putchar('\n');
    if (has_int(s, "started_unix_ms"))
        status_line("started", "%s",
                    cd_render_time(b, sizeof(b), mint(s, "started_unix_ms", 0), ctl->now_ms));
    if (mstr(s, "config_file") != NULL) {
        if (has_int(s, "config_loaded_unix_ms"))
            status_line(
                "config", "%s (loaded %s)", mstr(s, "config_file"),
                cd_render_ago(a, sizeof(a), mint(s, "config_loaded_unix_ms", 0), ctl->now_ms));
        else
            status_line("config", "%s", mstr(s, "config_file"));
    }
    const json_t *db = json_object_get(s, "database");
    if (json_is_object(db)) {
        char pinned[64] = "";
        if (has_int(db, "pinned"))
            snprintf(pinned, sizeof(pinned), " (%lld pinned)", (long long)mint(db, "pinned", 0));
        char raw[64] = "";
        if (has_int(db, "raw_bytes"))
            snprintf(raw, sizeof(raw), " holding %s of raw dumps",
                     cd_units_fmt_size(c, sizeof(c), (uint64_t)mint(db, "raw_bytes", 0)));
        status_line("database", "%s", or_dash(mstr(db, "path")));
        status_line("", "%s on disk, %lld snapshots%s%s",
                    cd_units_fmt_size(a, sizeof(a), (uint64_t)mint(db, "size_bytes", 0)),
                    (long long)mint(db, "snapshots", 0), pinned, raw);
        if (has_int(db, "oldest_unix_ms") && has_int(db, "newest_unix_ms"))
            status_line("", "oldest %s, newest %s",
                        cd_render_ago(b, sizeof(b), mint(db, "oldest_unix_ms", 0), ctl->now_ms),
                        cd_render_ago(c, sizeof(c), mint(db, "newest_unix_ms", 0), ctl->now_ms));
        if (json_is_true(json_object_get(db, "disk_full")))
            status_line("", "%s", "DISK FULL: new snapshots are being dropped");
        if (mstr(db, "last_error") != NULL)
            status_line("", "last error: %s", mstr(db, "last_error"));
    }
    const json_t *t = json_object_get(s, "targets");
    if (json_is_object(t))
        status_line("targets", "%lld: %lld up, %lld down, %lld not scraped yet",
                    (long long)mint(t, "total", 0), (long long)mint(t, "up", 0),
                    (long long)mint(t, "down", 0), (long long)mint(t, "unknown", 0));
    if (has_int(s, "incidents"))
        status_line("incidents", "%lld", (long long)mint(s, "incidents", 0));
    const json_t *sc = json_object_get(s, "scrapes");
    if (json_is_object(sc)) {
        char extra[128] = "";
        if (has_int(sc, "invalid"))
            snprintf(extra, sizeof(extra), ", %lld unparsable", (long long)mint(sc, "invalid", 0));
        status_line("scrapes", "%lld total, %lld failed, %lld dropped%s; %lld running now",
                    (long long)mint(sc, "total", 0), (long long)mint(sc, "failed", 0),
                    (long long)mint(sc, "dropped", 0), extra, (long long)mint(sc, "in_flight", 0));
        if (has_int(sc, "captures"))
            status_line("", "%lld on-demand capture%s since start",
                        (long long)mint(sc, "captures", 0),
                        mint(sc, "captures", 0) == 1 ? "" : "s");
    }
    const json_t *qs = json_object_get(s, "queues");
    if (json_array_size(qs) > 0) {
        char line[400] = "";
        size_t o = 0;
        for (size_t i = 0; i < json_array_size(qs) && o < sizeof(line); i++) {
            const json_t *q = json_array_get(qs, i);
            o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s %lld of %lld", i ? ", " : "",
                                  or_dash(mstr(q, "name")), (long long)mint(q, "depth", 0),
                                  (long long)mint(q, "capacity", 0));
        }
        status_line("queues", "%s", line);
    }
    const json_t *r = json_object_get(s, "retention");
    if (json_is_object(r) && has_int(r, "last_run_unix_ms"))
        status_line("retention", "last run %s: %lld snapshots, %s deleted",
                    cd_render_ago(a, sizeof(a), mint(r, "last_run_unix_ms", 0), ctl->now_ms),
                    (long long)mint(r, "last_deleted_snapshots", 0),
                    cd_units_fmt_size(b, sizeof(b), (uint64_t)mint(r, "last_deleted_bytes", 0)));
    else if (json_object_get(s, "retention") != NULL)
        status_line("retention", "%s", "not run yet");
    if (json_is_object(r) && has_int(r, "next_run_unix_ms"))
        status_line("", "next run %s",
                    cd_render_ago(a, sizeof(a), mint(r, "next_run_unix_ms", 0), ctl->now_ms));
    const json_t *q = json_object_get(s, "query");
    if (json_is_object(q)) {
        if (mstr(q, "unix_socket") != NULL)
            status_line("query", "%s", mstr(q, "unix_socket"));
        if (mstr(q, "tcp") != NULL)
            status_line(mstr(q, "unix_socket") != NULL ? "" : "query", "tcp %s", mstr(q, "tcp"));
        if (has_int(q, "connections"))
            status_line(mstr(q, "unix_socket") != NULL || mstr(q, "tcp") != NULL ? "" : "query",
                        "%lld open connection%s (this one included)",
                        (long long)mint(q, "connections", 0),
                        mint(q, "connections", 0) == 1 ? "" : "s");
    }
}

/* Commands that take -o and nothing else: -1 when the arguments parsed, else the exit code. */
static int output_only_args(struct ctl *ctl, int argc, char **argv, const char *cmd)
{
    static const struct option lo[] = {COMMON_LONGOPTS, {0}};
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:h", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help(cmd);
        if (c == 'o' && parse_output(ctl, optarg) != 0)
            return EXIT_USAGE;
    }
    if (optind < argc)
        return usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    return -1;
}

static int cmd_status(struct ctl *ctl, int argc, char **argv)
{
    int done = output_only_args(ctl, argc, argv, "status");
    if (done >= 0)
        return done;
    struct cd_client_response r = {0};
    done = request_table(ctl, "GET", "/status", NULL, NULL, &r);
    if (done >= 0)
        return done;
    print_status(ctl, r.json);
    cd_client_response_free(&r);
    return EXIT_OK;
}

/* ---- list (targets) ------------------------------------------------------------------------ */

/* The newest scrape of a target: its own member, else the newest of its kinds. */
static int64_t target_last_scrape(const json_t *tg)
{
    int64_t last = mint(tg, "last_scrape_unix_ms", INT64_MIN);
    const json_t *kinds = json_object_get(tg, "kinds");
    for (size_t k = 0; k < json_array_size(kinds); k++) {
        int64_t v = mint(json_array_get(kinds, k), "last_scrape_unix_ms", INT64_MIN);
        if (v > last)
            last = v;
    }
    return last;
}

/* The table of targets, then every last error in full (errors are long; a column would cut
 * them). */
static void print_targets(struct ctl *ctl, const json_t *list, bool filtered)
{
    size_t n = json_array_size(list), up = 0, down = 0, errors = 0;
    for (size_t i = 0; i < n; i++) {
        const char *h = mstr(json_array_get(list, i), "health");
        up += h != NULL && strcmp(h, "up") == 0;
        down += h != NULL && strcmp(h, "down") == 0;
        errors += mstr(json_array_get(list, i), "last_error") != NULL;
    }
    if (n == 0) {
        printf("%s\n", filtered ? "no targets match"
                                : "no targets yet (none configured, or discovery found none)");
        return;
    }
    caption(ctl, "%zu target%s: %zu up, %zu down, %zu not scraped yet", n, n == 1 ? "" : "s", up,
            down, n - up - down);
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "JOB", CD_TABLE_LEFT, 6, 24);
    cd_table_add_col(&t, "INSTANCE", CD_TABLE_LEFT, 10, 40);
    cd_table_add_col(&t, "SCHEME", CD_TABLE_LEFT, 4, 6);
    cd_table_add_col(&t, "HEALTH", CD_TABLE_LEFT, 6, 7);
    cd_table_add_col(&t, "SNAPSHOTS", CD_TABLE_RIGHT, 5, 9);
    cd_table_add_col(&t, "STORED", CD_TABLE_RIGHT, 6, 10);
    cd_table_add_col(&t, "LAST SCRAPE", CD_TABLE_LEFT, 8, 12);
    for (size_t i = 0; i < n; i++) {
        const json_t *tg = json_array_get(list, i);
        int64_t last = target_last_scrape(tg);
        char ago[32] = "never", snaps[24] = "-", size[32] = "-";
        if (last != INT64_MIN)
            cd_render_ago(ago, sizeof(ago), last, ctl->now_ms);
        if (has_int(tg, "snapshots"))
            snprintf(snaps, sizeof(snaps), "%lld", (long long)mint(tg, "snapshots", 0));
        if (has_int(tg, "size_bytes"))
            cd_units_fmt_size(size, sizeof(size), (uint64_t)mint(tg, "size_bytes", 0));
        const char *cells[] = {or_dash(mstr(tg, "job")),
                               or_dash(mstr(tg, "instance")),
                               or_dash(mstr(tg, "scheme")),
                               or_dash(mstr(tg, "health")),
                               snaps,
                               size,
                               ago};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, stdout, ctl->width);
    cd_table_free(&t);
    if (errors == 0)
        return;
    printf("\nlast errors:\n");
    for (size_t i = 0; i < n; i++) {
        const json_t *tg = json_array_get(list, i);
        if (mstr(tg, "last_error") == NULL)
            continue;
        char when[48] = "";
        if (has_int(tg, "last_error_time_unix_ms")) {
            char ago[32];
            snprintf(when, sizeof(when), " (%s)",
                     cd_render_ago(ago, sizeof(ago), mint(tg, "last_error_time_unix_ms", 0),
                                   ctl->now_ms));
        }
        char line[1200];
        snprintf(line, sizeof(line), "%s %s %s%s: %s", or_dash(mstr(tg, "job")),
                 or_dash(mstr(tg, "instance")), or_dash(mstr(tg, "scheme")), when,
                 mstr(tg, "last_error"));
        char *clean = cd_table_sanitize(line);
        cd_render_wrapped(stdout, "  ", "    ", clean != NULL ? clean : "?", ctl->width);
        free(clean);
    }
}

static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"job", required_argument, NULL, 'j'},
                                       {"health", required_argument, NULL, 'H'},
                                       {0}};
    const char *job = NULL, *health = NULL;
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:hj:H:", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help("list");
        if (c == 'o' && parse_output(ctl, optarg) != 0)
            return EXIT_USAGE;
        if (c == 'j')
            job = optarg;
        if (c == 'H')
            health = optarg;
    }
    if (optind < argc)
        return usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    const char *q[] = {"job", job, "health", health, NULL};
    struct cd_client_response r = {0};
    int done = request_table(ctl, "GET", "/targets", q, NULL, &r);
    if (done >= 0)
        return done;
    print_targets(ctl, json_object_get(r.json, "targets"), job != NULL || health != NULL);
    cd_client_response_free(&r);
    return EXIT_OK;
}

/* ---- snapshots ----------------------------------------------------------------------------- */

static void snapshot_table(struct ctl *ctl, const json_t *list, bool with_caption)
{
    size_t n = json_array_size(list);
    if (with_caption) {
        if (n == 0) {
            printf("no snapshots match\n");
            return;
        }
        char a[40], b[40];
        cd_render_clock(a, sizeof(a), mint(json_array_get(list, n - 1), "time_unix_ms", 0),
                        ctl->now_ms);
        cd_render_clock(b, sizeof(b), mint(json_array_get(list, 0), "time_unix_ms", 0),
                        ctl->now_ms);
        caption(ctl, "%zu snapshot%s, newest first, taken %s .. %s", n, n == 1 ? "" : "s", a, b);
    }
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "ID", CD_TABLE_RIGHT, 2, 12);
    cd_table_add_col(&t, "AGE", CD_TABLE_LEFT, 6, 10);
    cd_table_add_col(&t, "JOB", CD_TABLE_LEFT, 5, 20);
    cd_table_add_col(&t, "INSTANCE", CD_TABLE_LEFT, 8, 32);
    cd_table_add_col(&t, "KIND", CD_TABLE_LEFT, 6, 16);
    cd_table_add_col(&t, "STATUS", CD_TABLE_LEFT, 6, 14);
    cd_table_add_col(&t, "SIZE", CD_TABLE_RIGHT, 6, 10);
    cd_table_add_col(&t, "PIN", CD_TABLE_LEFT, 3, 20);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(list, i);
        char id[24], ago[32], size[32];
        snprintf(id, sizeof(id), "%lld", (long long)mint(s, "id", 0));
        cd_render_ago(ago, sizeof(ago), mint(s, "time_unix_ms", 0), ctl->now_ms);
        cd_units_fmt_size(size, sizeof(size), (uint64_t)mint(s, "size_bytes", 0));
        const char *pin = json_is_true(json_object_get(s, "pinned"))
                              ? (mstr(s, "incident") != NULL ? mstr(s, "incident") : "yes")
                              : "";
        const char *cells[] = {id,
                               ago,
                               or_dash(mstr(s, "job")),
                               or_dash(mstr(s, "instance")),
                               or_dash(mstr(s, "kind")),
                               or_dash(mstr(s, "status")),
                               size,
                               pin};
        cd_table_add_row(&t, cells);
    }
    if (n > 0)
        cd_table_print(&t, stdout, ctl->width);
    cd_table_free(&t);
}

static int cmd_snapshots(struct ctl *ctl, int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"job", required_argument, NULL, 'j'},
                                       {"target", required_argument, NULL, 't'},
                                       {"kind", required_argument, NULL, 'k'},
                                       {"status", required_argument, NULL, 'S'},
                                       {"incident", required_argument, NULL, 'i'},
                                       {"pinned", no_argument, NULL, 'p'},
                                       {"since", required_argument, NULL, 's'},
                                       {"until", required_argument, NULL, 'u'},
                                       {"limit", required_argument, NULL, 'n'},
                                       {"cursor", required_argument, NULL, 'c'},
                                       {"all", no_argument, NULL, 'a'},
                                       {0}};
    const char *job = NULL, *target = NULL, *kind = NULL, *status = NULL, *incident = NULL;
    const char *pinned = NULL, *since = NULL, *until = NULL, *limit = NULL, *cursor = NULL;
    bool all = false;
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:hj:t:k:i:n:a", lo)) != -1) {
        switch (c) {
        case 'h':
            return command_help("snapshots");
        case 'o':
            if (parse_output(ctl, optarg) != 0)
                return EXIT_USAGE;
            break;
        case 'j':
            job = optarg;
            break;
        case 't':
            target = optarg;
            break;
        case 'k':
            kind = optarg;
            break;
        case 'S':
            status = optarg;
            break;
        case 'i':
            incident = optarg;
            break;
        case 'p':
            pinned = "1";
            break;
        case 's':
            since = optarg;
            break;
        case 'u':
            until = optarg;
            break;
        case 'n':
            limit = optarg;
            break;
        case 'c':
            cursor = optarg;
            break;
        case 'a':
            all = true;
            break;
        default:
            return c >= 1000 ? c - 1000 : EXIT_USAGE;
        }
    }
    if (optind < argc)
        return usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    char *next = cursor != NULL ? cd_str_dup(cursor) : NULL;
    json_t *rows = json_array();
    int rc = EXIT_OK;
    for (int page = 0; page < 100000; page++) {
        const char *q[] = {"job",   job,        "target", target,   "kind",   kind,    "status",
                           status,  "incident", incident, "pinned", pinned,   "since", since,
                           "until", until,      "limit",  limit,    "cursor", next,    NULL};
        struct cd_client_response r = {0};
        rc = request(ctl, "GET", "/snapshots", q, NULL, &r);
        if (rc != 0)
            break;
        const char *nc = mstr(r.json, "next_cursor");
        free(next);
        next = nc != NULL ? cd_str_dup(nc) : NULL;
        if (ctl->out == OUT_JSON) {
            print_body(&r);
        } else {
            const json_t *list = json_object_get(r.json, "snapshots");
            for (size_t i = 0; i < json_array_size(list); i++)
                json_array_append(rows, json_array_get(list, i));
        }
        cd_client_response_free(&r);
        if (!all || next == NULL)
            break;
    }
    if (rc == EXIT_OK && ctl->out == OUT_TABLE) {
        snapshot_table(ctl, rows, true);
        fflush(stdout); /* the hint follows the table, also when both go to one pipe */
        /* On stderr, so pipes get the table alone; a blank line sets it off in a terminal. */
        if (next != NULL)
            fprintf(stderr, "\nmore: add --cursor %s (or --all)\n", next);
    }
    json_decref(rows);
    free(next);
    return rc;
}

/* ---- show / top ------------------------------------------------------------------------------ */

static void print_snapshot_meta(struct ctl *ctl, const json_t *s)
{
    char a[96], b[64], d[64];
    int64_t id = mint(s, "id", 0);
    printf("snapshot %lld: ", (long long)id);
    put_clean(stdout, or_dash(mstr(s, "kind")));
    printf(" from ");
    put_clean(stdout, or_dash(mstr(s, "job")));
    putchar(' ');
    put_clean(stdout, or_dash(mstr(s, "instance")));
    printf(", ");
    put_clean(stdout, or_dash(mstr(s, "status")));
    putchar('\n');
    status_line("  target", "%s", or_dash(mstr(s, "target")));
    const json_t *labels = json_object_get(s, "labels");
    if (json_is_object(labels) && json_object_size(labels) > 0) {
        char line[512] = "";
        size_t o = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)labels, k, v)
        {
            if (o < sizeof(line))
                o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s=%s", o ? ", " : "", k,
                                      or_dash(json_string_value(v)));
        }
        status_line("  labels", "%s", line);
    }
    if (has_int(s, "time_unix_ms"))
        status_line("  taken", "%s, took %s",
                    cd_render_time(a, sizeof(a), mint(s, "time_unix_ms", 0), ctl->now_ms),
                    fmt_took(b, sizeof(b), mint(s, "duration_ms", 0)));
    if (mstr(s, "request") != NULL)
        status_line("  request", "%s", mstr(s, "request"));
    if (mstr(s, "error") != NULL) {
        char http[32] = "";
        if (has_int(s, "http_status") && mint(s, "http_status", 0) != 200)
            snprintf(http, sizeof(http), " (HTTP %lld)", (long long)mint(s, "http_status", 0));
        status_line("  error", "%s%s", mstr(s, "error"), http);
    }
    status_line("  size", "%s received, %s stored%s%.16s%s",
                cd_units_fmt_size(a, sizeof(a), (uint64_t)mint(s, "size_bytes", 0)),
                cd_units_fmt_size(b, sizeof(b), (uint64_t)mint(s, "stored_bytes", 0)),
                mstr(s, "sha256") ? ", sha256 " : "", mstr(s, "sha256") ? mstr(s, "sha256") : "",
                mstr(s, "sha256") ? "…" : "");
    if (json_is_true(json_object_get(s, "pinned")))
        status_line("  pinned", "yes%s%s%s", mstr(s, "incident") ? " (incident " : "",
                    mstr(s, "incident") ? mstr(s, "incident") : "", mstr(s, "incident") ? ")" : "");
    else
        status_line("  pinned", "no");
    if (mstr(s, "parse_error") != NULL)
        status_line("  parse", "failed: %s", mstr(s, "parse_error"));
    const char *fmt = or_dash(mstr(s, "format"));
    const char *status = or_dash(mstr(s, "status"));
    if (mint(s, "size_bytes", 0) > 0) {
        const char *tool = strcmp(fmt, "trace") == 0   ? "go tool trace FILE"
                           : strcmp(fmt, "pprof") == 0 ? "go tool pprof -http=: FILE"
                                                       : "less FILE";
        if (strcmp(status, "ok") != 0)
            tool = "less FILE (what the target answered instead)";
        snprintf(d, sizeof(d), "%lld", (long long)id);
        status_line("  open", "collectorctl fetch %s -o FILE, then %s", d, tool);
    }
}

static int get_snapshot(struct ctl *ctl, int64_t id, struct cd_client_response *r)
{
    char path[64];
    snprintf(path, sizeof(path), "/snapshots/%lld", (long long)id);
    return request(ctl, "GET", path, NULL, NULL, r);
}

/* show and top take the same options and one snapshot ID: -1 when they parsed, else the exit
 * code to return. */
static int summary_args(struct ctl *ctl, int argc, char **argv, const char *cmd,
                        struct cd_render_opts *ro, int64_t *id)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"top", required_argument, NULL, 'n'},
                                       {"sample-type", required_argument, NULL, 'T'},
                                       {"cum", no_argument, NULL, 'C'},
                                       {0}};
    cd_render_opts_default(ro);
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:hn:", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help(cmd);
        if (c == 'o' && parse_output(ctl, optarg) != 0)
            return EXIT_USAGE;
        if (c == 'n') {
            int n;
            if (cd_str_to_int(optarg, 1, 10000, &n) != 0)
                return usage_error(ctl, "--top takes 1..10000, not '%s'", optarg);
            ro->top_n = (size_t)n;
        }
        if (c == 'T')
            ro->sample_type = optarg;
        if (c == 'C')
            ro->cum = true;
    }
    if (optind + 1 != argc)
        return usage_error(ctl, "%s", "one snapshot ID is required");
    if (parse_id(ctl, argv[optind], id) != 0)
        return EXIT_USAGE;
    return -1;
}

static int cmd_show(struct ctl *ctl, int argc, char **argv)
{
    struct cd_render_opts ro;
    int64_t id;
    int done = summary_args(ctl, argc, argv, "show", &ro, &id);
    if (done >= 0)
        return done;
    struct cd_client_response r = {0};
    int rc = get_snapshot(ctl, id, &r);
    if (rc != 0)
        return rc;
    if (ctl->out == OUT_JSON) {
        print_body(&r);
    } else {
        ro.width = ctl->width;
        ro.now_ms = ctl->now_ms;
        print_snapshot_meta(ctl, r.json);
        putchar('\n');
        cd_render_summary(stdout, mstr(r.json, "format"), json_object_get(r.json, "summary"), &ro);
    }
    cd_client_response_free(&r);
    return EXIT_OK;
}

static int cmd_top(struct ctl *ctl, int argc, char **argv)
{
    struct cd_render_opts ro;
    int64_t id;
    int done = summary_args(ctl, argc, argv, "top", &ro, &id);
    if (done >= 0)
        return done;
    struct cd_client_response r = {0};
    int rc = get_snapshot(ctl, id, &r);
    if (rc != 0)
        return rc;
    if (ctl->out == OUT_JSON) {
        print_body(&r);
        cd_client_response_free(&r);
        return EXIT_OK;
    }
    ro.width = ctl->width;
    ro.now_ms = ctl->now_ms;
    int n = cd_render_top(stdout, mstr(r.json, "format"), json_object_get(r.json, "summary"), &ro);
    if (n == 0) {
        fprintf(stderr,
                "collectorctl: snapshot %lld (%s) has no top table; try: collectorctl "
                "show %lld\n",
                (long long)id, or_dash(mstr(r.json, "kind")), (long long)id);
        rc = EXIT_ERR;
    }
    cd_client_response_free(&r);
    return rc;
}

/* ---- downloads (fetch, export) ------------------------------------------------------------ */

/* Downloads path into dest ("-" = stdout, NULL = the server's file name in the current
 * directory) through a temporary file renamed at the end, so a failed download leaves nothing
 * behind. */
static int download(struct ctl *ctl, const char *path, const char *dest, bool force,
                    const char *label, char **written, uint64_t *bytes)
{
    if (connect_daemon(ctl) != 0)
        return EXIT_ERR;
    bool to_stdout = dest != NULL && strcmp(dest, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "collectorctl: not writing binary data to a terminal; use -o FILE\n");
        return EXIT_ERR;
    }
    if (dest != NULL && !to_stdout && !force && access(dest, F_OK) == 0) {
        fprintf(stderr, "collectorctl: '%s' exists; use --force to replace it\n", dest);
        return EXIT_ERR;
    }
    char tmp[4096];
    int fd = STDOUT_FILENO;
    if (!to_stdout) {
        const char *dir = ".";
        char dbuf[4096];
        if (dest != NULL && strchr(dest, '/') != NULL) {
            cd_str_copy(dbuf, dest, sizeof(dbuf));
            *strrchr(dbuf, '/') = '\0';
            dir = dbuf[0] ? dbuf : "/";
        }
        snprintf(tmp, sizeof(tmp), "%s/.collectorctl-XXXXXX", dir);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "collectorctl: cannot create a file in '%s': %s\n", dir,
                    strerror(errno));
            return EXIT_ERR;
        }
        fchmod(fd, 0644);
    }
    struct progress p;
    progress_begin(ctl, &p, label, true);
    struct cd_client_response r = {0};
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_client_download(ctl->client, path, NULL, fd, &r, &err);
    progress_end(ctl, &p);
    int ret = EXIT_OK;
    if (rc != 0) {
        transport_message(ctl, rc, &err);
        ret = EXIT_ERR;
    } else if (cd_client_check(&r, &err) != 0) {
        fprintf(stderr, "collectorctl: ");
        put_clean(stderr, cd_err_msg(&err));
        fputc('\n', stderr);
        ret = EXIT_ERR;
    }
    if (!to_stdout) {
        if (ret == EXIT_OK && fsync(fd) != 0) {
            fprintf(stderr, "collectorctl: writing '%s': %s\n", tmp, strerror(errno));
            ret = EXIT_ERR;
        }
        struct stat st;
        if (ret == EXIT_OK && fstat(fd, &st) == 0)
            *bytes = (uint64_t)st.st_size;
        close(fd);
        char *final = NULL;
        if (ret == EXIT_OK) {
            final = cd_str_dup(dest != NULL ? dest : r.filename != NULL ? r.filename : "download");
            if (final == NULL)
                ret = EXIT_ERR;
        }
        if (ret == EXIT_OK && dest == NULL && !force && access(final, F_OK) == 0) {
            fprintf(stderr, "collectorctl: '%s' exists; use -o FILE or --force\n", final);
            ret = EXIT_ERR;
        }
        if (ret == EXIT_OK && rename(tmp, final) != 0) {
            fprintf(stderr, "collectorctl: rename to '%s': %s\n", final, strerror(errno));
            ret = EXIT_ERR;
        }
        if (ret != EXIT_OK) {
            unlink(tmp);
            free(final);
        } else {
            *written = final;
        }
    } else if (ret == EXIT_OK) {
        *written = cd_str_dup("-");
    }
    cd_client_response_free(&r);
    return ret;
}

/* What a download wrote: a line for people, or {"file", "size_bytes"} with -o json. */
static void report_written(const struct ctl *ctl, const char *file, uint64_t bytes, bool tarball)
{
    if (ctl->out == OUT_JSON) {
        json_t *o = json_pack("{s:s, s:I}", "file", file, "size_bytes", (json_int_t)bytes);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", text != NULL ? text : "null");
        free(text);
        json_decref(o);
        return;
    }
    char sz[32];
    cd_units_fmt_size(sz, sizeof(sz), bytes);
    if (tarball)
        printf("wrote %s (%s)\nunpack it with: tar -xzf %s\n", file, sz, file);
    else
        printf("wrote %s (%s)\n", file, sz);
}

/* fetch and export: -o FILE|-, --force, and one argument (what names it). -1 when they parsed,
 * else the exit code to return. */
static int download_args(struct ctl *ctl, int argc, char **argv, const char *cmd, const char *what,
                         const char **dest, bool *force)
{
    static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
    *dest = NULL;
    *force = false;
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:fh", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help(cmd);
        if (c == 'o')
            *dest = optarg;
        if (c == 'f')
            *force = true;
    }
    if (optind + 1 != argc)
        return usage_error(ctl, "one %s is required", what);
    return -1;
}

static int cmd_fetch(struct ctl *ctl, int argc, char **argv)
{
    const char *dest;
    bool force;
    int done = download_args(ctl, argc, argv, "fetch", "snapshot ID", &dest, &force);
    if (done >= 0)
        return done;
    int64_t id;
    if (parse_id(ctl, argv[optind], &id) != 0)
        return EXIT_USAGE;
    char path[64];
    snprintf(path, sizeof(path), "/snapshots/%lld/raw", (long long)id);
    char *written = NULL;
    uint64_t bytes = 0;
    int rc = download(ctl, path, dest, force, "fetch:", &written, &bytes);
    if (rc == EXIT_OK && strcmp(written, "-") != 0)
        report_written(ctl, written, bytes, false);
    free(written);
    return rc;
}

static int cmd_export(struct ctl *ctl, int argc, char **argv)
{
    const char *dest;
    bool force;
    int done = download_args(ctl, argc, argv, "export", "incident name", &dest, &force);
    if (done >= 0)
        return done;
    const char *name = argv[optind];
    char safe[CD_API_INCIDENT_NAME_MAX + 2];
    if (strlen(name) > CD_API_INCIDENT_NAME_MAX || strchr(name, '/') != NULL)
        return usage_error(ctl, "'%s' is not an incident name", name);
    cd_str_copy(safe, name, sizeof(safe));
    char path[128];
    snprintf(path, sizeof(path), "/incidents/%s/bundle", safe);
    char *written = NULL;
    uint64_t bytes = 0;
    int rc = download(ctl, path, dest, force, "export:", &written, &bytes);
    if (rc == EXIT_OK && strcmp(written, "-") != 0)
        report_written(ctl, written, bytes, true);
    free(written);
    return rc;
}

/* ---- capture -------------------------------------------------------------------------------- */

/* "job" and "instance" of a capture item; skipped items carry only the target id
 * ("job/scheme://address"). */
static void capture_who(const json_t *it, char *job, size_t jsize, char *inst, size_t isize)
{
    snprintf(job, jsize, "%s", or_dash(mstr(it, "job")));
    snprintf(inst, isize, "%s", or_dash(mstr(it, "instance")));
    const char *tid = mstr(it, "target");
    if (mstr(it, "job") != NULL || tid == NULL)
        return;
    const char *sep = strstr(tid, "://");
    const char *slash = strchr(tid, '/');
    if (slash != NULL && sep != NULL && slash < sep) {
        snprintf(job, jsize, "%.*s", (int)(slash - tid), tid);
        snprintf(inst, isize, "%s", sep + 3);
    } else {
        snprintf(inst, isize, "%s", tid);
    }
}

static void print_capture(struct ctl *ctl, const json_t *res)
{
    const json_t *list = json_object_get(res, "snapshots");
    size_t n = json_array_size(list);
    /* statuses in order of first appearance, with counts */
    const char *names[16];
    size_t counts[16], nn = 0, problems = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(list, i);
        const char *st = or_dash(mstr(it, "status"));
        problems += strcmp(st, "ok") != 0 && mstr(it, "error") != NULL;
        size_t k = 0;
        while (k < nn && strcmp(names[k], st) != 0)
            k++;
        if (k == nn && nn < 16) {
            names[nn] = st;
            counts[nn++] = 0;
        }
        if (k < nn)
            counts[k]++;
    }
    char tally[256] = "";
    size_t o = 0;
    for (size_t k = 0; k < nn && o < sizeof(tally); k++)
        o += (size_t)snprintf(tally + o, sizeof(tally) - o, "%s%zu %s", k ? ", " : "", counts[k],
                              names[k]);
    char d[32];
    const char *inc = mstr(res, "incident");
    long long matched = (long long)mint(res, "matched_targets", 0);
    caption(ctl, "captured %zu snapshot%s from %lld target%s in %s%s%s%s%s", n, n == 1 ? "" : "s",
            matched, matched == 1 ? "" : "s", fmt_took(d, sizeof(d), mint(res, "duration_ms", 0)),
            n > 0 ? ": " : "", tally, inc != NULL ? "; pinned to incident " : "",
            inc != NULL ? inc : "");
    if (n == 0)
        return;
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "ID", CD_TABLE_RIGHT, 2, 12);
    cd_table_add_col(&t, "JOB", CD_TABLE_LEFT, 5, 20);
    cd_table_add_col(&t, "INSTANCE", CD_TABLE_LEFT, 8, 32);
    cd_table_add_col(&t, "KIND", CD_TABLE_LEFT, 6, 16);
    cd_table_add_col(&t, "STATUS", CD_TABLE_LEFT, 6, 14);
    cd_table_add_col(&t, "TOOK", CD_TABLE_RIGHT, 4, 8);
    cd_table_add_col(&t, "SIZE", CD_TABLE_RIGHT, 6, 10);
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(list, i);
        char id[24] = "-", size[32] = "-", took[32] = "-", job[128], inst[256];
        if (has_int(it, "id"))
            snprintf(id, sizeof(id), "%lld", (long long)mint(it, "id", 0));
        if (has_int(it, "size_bytes") && has_int(it, "id"))
            cd_units_fmt_size(size, sizeof(size), (uint64_t)mint(it, "size_bytes", 0));
        if (has_int(it, "duration_ms"))
            fmt_took(took, sizeof(took), mint(it, "duration_ms", 0));
        capture_who(it, job, sizeof(job), inst, sizeof(inst));
        const char *cells[] = {
            id, job, inst, or_dash(mstr(it, "kind")), or_dash(mstr(it, "status")), took, size};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, stdout, ctl->width);
    cd_table_free(&t);
    if (problems == 0)
        return;
    printf("\nnot captured:\n");
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(list, i);
        if (strcmp(or_dash(mstr(it, "status")), "ok") == 0 || mstr(it, "error") == NULL)
            continue;
        char job[128], inst[256], line[1200];
        capture_who(it, job, sizeof(job), inst, sizeof(inst));
        snprintf(line, sizeof(line), "%s %s %s (%s): %s", job, inst, or_dash(mstr(it, "kind")),
                 or_dash(mstr(it, "status")), mstr(it, "error"));
        char *clean = cd_table_sanitize(line);
        cd_render_wrapped(stdout, "  ", "    ", clean != NULL ? clean : "?", ctl->width);
        free(clean);
    }
}

static int cmd_capture(struct ctl *ctl, int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"kind", required_argument, NULL, 'k'},
                                       {"incident", required_argument, NULL, 'i'},
                                       {"timeout", required_argument, NULL, 'T'},
                                       {0}};
    json_t *kinds = json_array();
    const char *incident = NULL;
    int64_t timeout_ms = 0;
    int c, rc = EXIT_OK;
    while ((c = next_opt(ctl, argc, argv, "o:hk:i:", lo)) != -1) {
        if (c >= 1000) {
            json_decref(kinds);
            return c - 1000;
        }
        if (c == 'h') {
            json_decref(kinds);
            return command_help("capture");
        }
        if (c == 'o' && parse_output(ctl, optarg) != 0) {
            json_decref(kinds);
            return EXIT_USAGE;
        }
        if (c == 'k') {
            /* --kind cpu --kind heap, or --kind cpu,heap */
            char *list = cd_str_dup(optarg), *save = NULL;
            for (char *k = list ? strtok_r(list, ",", &save) : NULL; k != NULL;
                 k = strtok_r(NULL, ",", &save))
                json_array_append_new(kinds, json_string(k));
            free(list);
        }
        if (c == 'i')
            incident = optarg;
        if (c == 'T' && (cd_units_parse_duration(optarg, &timeout_ms) != 0 || timeout_ms < 1000 ||
                         timeout_ms > CD_API_MAX_CAPTURE_MS)) {
            json_decref(kinds);
            return usage_error(ctl, "--timeout takes a duration from 1s to 10m, not '%s'", optarg);
        }
    }
    json_t *sel = NULL;
    struct cd_err err;
    cd_err_init(&err);
    if (optind >= argc) {
        json_decref(kinds);
        return usage_error(ctl, "%s",
                           "a selector is required: job=NAME, target=ID|ADDRESS, LABEL=VALUE "
                           "or all");
    }
    if (cd_client_selector_parse(argc - optind, argv + optind, &sel, &err) != 0) {
        json_decref(kinds);
        return usage_error(ctl, "%s", cd_err_msg(&err));
    }
    json_t *body = json_pack("{s:o}", "selector", sel);
    if (json_array_size(kinds) > 0)
        json_object_set(body, "kinds", kinds);
    json_decref(kinds);
    if (incident != NULL)
        json_object_set_new(body, "incident", json_string(incident));
    if (timeout_ms > 0)
        json_object_set_new(body, "timeout_ms", json_integer(timeout_ms));
    if (connect_daemon(ctl) != 0) {
        json_decref(body);
        return EXIT_ERR;
    }
    struct progress p;
    progress_begin(ctl, &p,
                   "capture: waiting for the targets (CPU profiles and traces take their "
                   "seconds)...",
                   false);
    struct cd_client_response r = {0};
    rc = request(ctl, "POST", "/capture", NULL, body, &r);
    progress_end(ctl, &p);
    json_decref(body);
    if (rc != 0)
        return rc;
    const json_t *list = json_object_get(r.json, "snapshots");
    size_t n = json_array_size(list), ok = 0;
    for (size_t i = 0; i < n; i++) {
        const char *st = mstr(json_array_get(list, i), "status");
        if (st != NULL && strcmp(st, "ok") == 0)
            ok++;
    }
    if (ctl->out == OUT_JSON)
        print_body(&r);
    else
        print_capture(ctl, r.json);
    cd_client_response_free(&r);
    /* A capture that got nothing is a failure; partial results are not. */
    return ok > 0 ? EXIT_OK : EXIT_ERR;
}

/* ---- pin / unpin --------------------------------------------------------------------------- */

static int pin_common(struct ctl *ctl, int argc, char **argv, bool pin)
{
    static const struct option lo[] = {
        COMMON_LONGOPTS, {"incident", required_argument, NULL, 'i'}, {0}};
    const char *incident = NULL;
    int c;
    while ((c = next_opt(ctl, argc, argv, pin ? "o:hi:" : "o:h", pin ? lo : lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help(pin ? "pin" : "unpin");
        if (c == 'o' && parse_output(ctl, optarg) != 0)
            return EXIT_USAGE;
        if (c == 'i') {
            if (!pin)
                return usage_error(ctl, "%s", "unpin takes no --incident");
            incident = optarg;
        }
    }
    int64_t id;
    if (optind + 1 != argc)
        return usage_error(ctl, "%s", "one snapshot ID is required");
    if (parse_id(ctl, argv[optind], &id) != 0)
        return EXIT_USAGE;
    char path[64];
    snprintf(path, sizeof(path), "/snapshots/%lld/pin", (long long)id);
    json_t *body = incident != NULL ? json_pack("{s:s}", "incident", incident) : NULL;
    struct cd_client_response r = {0};
    int rc = request(ctl, pin ? "POST" : "DELETE", path, NULL, body, &r);
    json_decref(body);
    if (rc != 0)
        return rc;
    if (ctl->out == OUT_JSON) {
        print_body(&r);
    } else if (json_is_true(json_object_get(r.json, "pinned"))) {
        printf("snapshot %lld is pinned", (long long)id);
        if (mstr(r.json, "incident") != NULL) {
            printf(" (incident ");
            put_clean(stdout, mstr(r.json, "incident"));
            putchar(')');
        }
        printf("; retention keeps it\n");
    } else {
        printf("snapshot %lld is not pinned; retention may delete it\n", (long long)id);
    }
    cd_client_response_free(&r);
    return EXIT_OK;
}

static int cmd_pin(struct ctl *ctl, int argc, char **argv)
{
    return pin_common(ctl, argc, argv, true);
}

static int cmd_unpin(struct ctl *ctl, int argc, char **argv)
{
    return pin_common(ctl, argc, argv, false);
}

/* ---- incidents ----------------------------------------------------------------------------- */

static int cmd_incidents(struct ctl *ctl, int argc, char **argv)
{
    int done = output_only_args(ctl, argc, argv, "incidents");
    if (done >= 0)
        return done;
    struct cd_client_response r = {0};
    done = request_table(ctl, "GET", "/incidents", NULL, NULL, &r);
    if (done >= 0)
        return done;
    const json_t *list = json_object_get(r.json, "incidents");
    size_t n = json_array_size(list);
    if (n == 0) {
        printf("no incidents (collectorctl capture --incident NAME makes one)\n");
        cd_client_response_free(&r);
        return EXIT_OK;
    }
    caption(ctl, "%zu incident%s, newest first; their snapshots are pinned (kept from retention)",
            n, n == 1 ? "" : "s");
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "NAME", CD_TABLE_LEFT, 8, 64);
    cd_table_add_col(&t, "CREATED", CD_TABLE_LEFT, 6, 12);
    cd_table_add_col(&t, "SNAPSHOTS", CD_TABLE_RIGHT, 5, 9);
    cd_table_add_col(&t, "TARGETS", CD_TABLE_RIGHT, 5, 7);
    cd_table_add_col(&t, "SIZE", CD_TABLE_RIGHT, 6, 10);
    cd_table_add_col(&t, "TAKEN", CD_TABLE_LEFT, 10, 30);
    for (size_t i = 0; i < n; i++) {
        const json_t *inc = json_array_get(list, i);
        char created[32] = "-", snaps[24], tg[24] = "-", size[32], span[64] = "-";
        if (has_int(inc, "created_unix_ms"))
            cd_render_ago(created, sizeof(created), mint(inc, "created_unix_ms", 0), ctl->now_ms);
        snprintf(snaps, sizeof(snaps), "%lld", (long long)mint(inc, "snapshots", 0));
        if (has_int(inc, "targets"))
            snprintf(tg, sizeof(tg), "%lld", (long long)mint(inc, "targets", 0));
        cd_units_fmt_size(size, sizeof(size), (uint64_t)mint(inc, "size_bytes", 0));
        if (has_int(inc, "first_unix_ms") && has_int(inc, "last_unix_ms")) {
            char a[32], b[32];
            snprintf(span, sizeof(span), "%s .. %s",
                     cd_render_clock(a, sizeof(a), mint(inc, "first_unix_ms", 0), ctl->now_ms),
                     cd_render_clock(b, sizeof(b), mint(inc, "last_unix_ms", 0), ctl->now_ms));
        }
        const char *cells[] = {or_dash(mstr(inc, "name")), created, snaps, tg, size, span};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, stdout, ctl->width);
    cd_table_free(&t);
    cd_client_response_free(&r);
    return EXIT_OK;
}

/* ---- series ------------------------------------------------------------------------------- */

/* Eight levels of a sparkline, lowest to highest (UTF-8 block elements). */
static const char *const spark_levels[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                           "\u2585", "\u2586", "\u2587", "\u2588"};

/* width cells summarising points (each cell the mean of its share of the points). */
static void sparkline(char *dst, size_t size, const json_t *points, int width, double lo, double hi)
{
    size_t n = json_array_size(points), off = 0;
    dst[0] = '\0';
    if (n == 0 || width <= 0)
        return;
    int cells = n < (size_t)width ? (int)n : width;
    for (int c = 0; c < cells; c++) {
        size_t a = (size_t)c * n / (size_t)cells, b = (size_t)(c + 1) * n / (size_t)cells;
        double sum = 0;
        for (size_t i = a; i < b; i++)
            sum += json_number_value(json_object_get(json_array_get(points, i), "value"));
        double v = b > a ? sum / (double)(b - a) : lo;
        int level = hi > lo ? (int)((v - lo) / (hi - lo) * 7.0 + 0.5) : 0;
        level = level < 0 ? 0 : level > 7 ? 7 : level;
        int w = snprintf(dst + off, size - off, "%s", spark_levels[level]);
        if (w < 0 || (size_t)w >= size - off)
            break;
        off += (size_t)w;
    }
}

static int cmd_series(struct ctl *ctl, int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"target", required_argument, NULL, 't'},
                                       {"since", required_argument, NULL, 's'},
                                       {"until", required_argument, NULL, 'u'},
                                       {"limit", required_argument, NULL, 'n'},
                                       {"points", no_argument, NULL, 'p'},
                                       {0}};
    const char *target = NULL, *since = "1h", *until = NULL, *limit = NULL;
    bool all_points = false;
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:ht:s:u:n:p", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help("series");
        if (c == 'o' && parse_output(ctl, optarg) != 0)
            return EXIT_USAGE;
        if (c == 't')
            target = optarg;
        if (c == 's')
            since = optarg;
        if (c == 'u')
            until = optarg;
        if (c == 'n')
            limit = optarg;
        if (c == 'p')
            all_points = true;
    }
    if (optind >= argc)
        return usage_error(ctl, "series needs a NAME, e.g. goroutine.count or heap.inuse_space");
    const char *name = argv[optind++];
    if (optind < argc)
        return usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    const char *q[] = {"name",  name,  "target", target, "since", since,
                       "until", until, "limit",  limit,  NULL};
    struct cd_client_response r = {0};
    int done = request_table(ctl, "GET", "/series", q, NULL, &r);
    if (done >= 0)
        return done;
    const json_t *series = json_object_get(r.json, "series");
    size_t n = json_array_size(series);
    if (n == 0) {
        printf("no points of %s since %s (names are <kind>.<series>: goroutine.count, "
               "heap.inuse_space, memstats.heap_alloc, ...)\n",
               name, since);
        cd_client_response_free(&r);
        return EXIT_OK;
    }
    caption(ctl,
            "%s since %s, %zu target%s (TREND: oldest to newest, scaled to each target's own "
            "min..max)%s",
            name, since, n, n == 1 ? "" : "s",
            json_is_true(json_object_get(r.json, "truncated")) ? "; cut at --limit points" : "");
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "INSTANCE", CD_TABLE_LEFT, 8, 28);
    cd_table_add_col(&t, "POINTS", CD_TABLE_RIGHT, 3, 6);
    cd_table_add_col(&t, "MIN", CD_TABLE_RIGHT, 3, 10);
    cd_table_add_col(&t, "MAX", CD_TABLE_RIGHT, 3, 10);
    cd_table_add_col(&t, "LAST", CD_TABLE_RIGHT, 4, 10);
    cd_table_add_col(&t, "TREND", CD_TABLE_LEFT, 5, 0);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(series, i);
        const json_t *pts = json_object_get(s, "points");
        size_t np = json_array_size(pts);
        double lo_v = 0, hi_v = 0, last = 0;
        for (size_t k = 0; k < np; k++) {
            double v = json_number_value(json_object_get(json_array_get(pts, k), "value"));
            if (k == 0 || v < lo_v)
                lo_v = v;
            if (k == 0 || v > hi_v)
                hi_v = v;
            last = v;
        }
        char count[24], smin[32], smax[32], slast[32], trend[24 * 4 * 3];
        snprintf(count, sizeof(count), "%zu", np);
        json_t *jv = json_real(lo_v);
        cd_render_value(smin, sizeof(smin), name, jv, ctl->now_ms);
        json_real_set(jv, hi_v);
        cd_render_value(smax, sizeof(smax), name, jv, ctl->now_ms);
        json_real_set(jv, last);
        cd_render_value(slast, sizeof(slast), name, jv, ctl->now_ms);
        json_decref(jv);
        sparkline(trend, sizeof(trend), pts, 24, lo_v, hi_v);
        const char *inst = mstr(s, "instance") ? mstr(s, "instance") : mstr(s, "target");
        const char *cells[] = {or_dash(inst), count, smin, smax, slast, trend};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, stdout, ctl->width);
    cd_table_free(&t);
    if (all_points) {
        for (size_t i = 0; i < n; i++) {
            const json_t *s = json_array_get(series, i);
            printf("\n%s\n", or_dash(mstr(s, "target")));
            const json_t *pts = json_object_get(s, "points");
            for (size_t k = 0; k < json_array_size(pts); k++) {
                const json_t *p = json_array_get(pts, k);
                char when[40], val[32];
                cd_render_clock(when, sizeof(when), mint(p, "time_unix_ms", 0), ctl->now_ms);
                cd_render_value(val, sizeof(val), name, json_object_get(p, "value"), ctl->now_ms);
                printf("  %-20s %s\n", when, val);
            }
        }
    }
    cd_client_response_free(&r);
    return EXIT_OK;
}

/* ---- prune -------------------------------------------------------------------------------- */

static int cmd_prune(struct ctl *ctl, int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONGOPTS, {"dry-run", no_argument, NULL, 'n'}, {0}};
    bool dry = false;
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:hn", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help("prune");
        if (c == 'o' && parse_output(ctl, optarg) != 0)
            return EXIT_USAGE;
        if (c == 'n')
            dry = true;
    }
    if (optind < argc)
        return usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    const char *q[] = {"dry_run", dry ? "1" : "0", NULL};
    struct cd_client_response r = {0};
    int done = request_table(ctl, "POST", "/retention/run", q, NULL, &r);
    if (done >= 0)
        return done;
    char sz[32], d[32];
    long long del = (long long)mint(r.json, "deleted_snapshots", 0);
    printf("%s %lld snapshot%s (%s stored) in %s\n", dry ? "dry run: would delete" : "deleted", del,
           del == 1 ? "" : "s",
           cd_units_fmt_size(sz, sizeof(sz), (uint64_t)mint(r.json, "deleted_bytes", 0)),
           fmt_took(d, sizeof(d), mint(r.json, "duration_ms", 0)));
    const json_t *by = json_object_get(r.json, "by_rule");
    char rules[512] = "";
    size_t o = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)by, k, v)
    {
        if (json_integer_value(v) > 0 && o < sizeof(rules))
            o += (size_t)snprintf(rules + o, sizeof(rules) - o, "%s%s %lld", o ? ", " : "", k,
                                  (long long)json_integer_value(v));
    }
    if (o > 0)
        status_line("by rule", "%s", rules);
    if (has_int(r.json, "kept_pinned"))
        status_line("kept", "%lld pinned snapshot%s", (long long)mint(r.json, "kept_pinned", 0),
                    mint(r.json, "kept_pinned", 0) == 1 ? "" : "s");
    if (has_int(r.json, "database_size_bytes"))
        status_line(
            "database", "%s%s",
            cd_units_fmt_size(sz, sizeof(sz), (uint64_t)mint(r.json, "database_size_bytes", 0)),
            dry ? "" : " after the run");
    if (json_is_true(json_object_get(r.json, "max_bytes_unmet")))
        status_line("note", "%s",
                    "still above max_bytes: everything left is pinned or in an incident");
    if (json_is_false(json_object_get(r.json, "complete")))
        status_line("note", "the run stopped early%s%s", mstr(r.json, "error") ? ": " : "",
                    mstr(r.json, "error") ? mstr(r.json, "error") : "");
    const json_t *cands = json_object_get(r.json, "candidates");
    if (dry && json_array_size(cands) > 0) {
        printf("\nfirst %zu of them (RULE: the retention setting that selects it):\n",
               json_array_size(cands));
        struct cd_table t;
        cd_table_init(&t);
        cd_table_add_col(&t, "ID", CD_TABLE_RIGHT, 2, 12);
        cd_table_add_col(&t, "AGE", CD_TABLE_LEFT, 6, 10);
        cd_table_add_col(&t, "TARGET", CD_TABLE_LEFT, 10, 0);
        cd_table_add_col(&t, "KIND", CD_TABLE_LEFT, 6, 16);
        cd_table_add_col(&t, "SIZE", CD_TABLE_RIGHT, 6, 10);
        cd_table_add_col(&t, "RULE", CD_TABLE_LEFT, 6, 26);
        for (size_t i = 0; i < json_array_size(cands); i++) {
            const json_t *s = json_array_get(cands, i);
            char id[24], ago[32] = "-", size[32];
            snprintf(id, sizeof(id), "%lld", (long long)mint(s, "id", 0));
            if (has_int(s, "time_unix_ms"))
                cd_render_ago(ago, sizeof(ago), mint(s, "time_unix_ms", 0), ctl->now_ms);
            cd_units_fmt_size(size, sizeof(size), (uint64_t)mint(s, "size_bytes", 0));
            const char *cells[] = {id,
                                   ago,
                                   or_dash(mstr(s, "target")),
                                   or_dash(mstr(s, "kind")),
                                   size,
                                   or_dash(mstr(s, "rule"))};
            cd_table_add_row(&t, cells);
        }
        cd_table_print(&t, stdout, ctl->width);
        cd_table_free(&t);
    }
    cd_client_response_free(&r);
    return EXIT_OK;
}

/* ---- metrics ---------------------------------------------------------------------------- */

static int cmd_metrics(struct ctl *ctl, int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = next_opt(ctl, argc, argv, "h", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help("metrics");
    }
    if (optind < argc)
        return usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    struct cd_client_response r = {0};
    int rc = request(ctl, "GET", "/metrics", NULL, NULL, &r);
    if (rc != 0)
        return rc;
    print_body(&r);
    cd_client_response_free(&r);
    return EXIT_OK;
}

/* ---- inspect (offline) ----------------------------------------------------------------------- */

/* Reads a whole file, or standard input for "-", up to CD_CTL_INSPECT_MAX_BYTES. Pipes and
 * process substitutions work too: the size is what arrives. */
static int read_input(const char *path, uint8_t **out, size_t *out_len)
{
    bool in = strcmp(path, "-") == 0;
    int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "collectorctl: %s: %s\n", path, strerror(errno));
        if (fd >= 0 && !in)
            close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "collectorctl: %s: is a directory\n", path);
        if (!in)
            close(fd);
        return -1;
    }
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
    size_t len = 0;
    uint8_t *data = NULL;
    int rc = 0;
    for (;;) {
        if (len == cap || data == NULL) {
            if (data != NULL)
                cap *= 2;
            if (cap > (size_t)CD_CTL_INSPECT_MAX_BYTES + 1)
                cap = (size_t)CD_CTL_INSPECT_MAX_BYTES + 1;
            uint8_t *p = realloc(data, cap);
            if (p == NULL) {
                fprintf(stderr, "collectorctl: %s: out of memory\n", path);
                rc = -1;
                break;
            }
            data = p;
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "collectorctl: %s: %s\n", path, strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CD_CTL_INSPECT_MAX_BYTES) {
            fprintf(stderr, "collectorctl: %s: larger than the parsers' limit of 256 MiB\n", path);
            rc = -1;
            break;
        }
    }
    if (!in)
        close(fd);
    if (rc != 0) {
        free(data);
        return rc;
    }
    *out = data;
    *out_len = len;
    return 0;
}

static int cmd_inspect(struct ctl *ctl, int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"top", required_argument, NULL, 'n'},
                                       {"sample-type", required_argument, NULL, 'T'},
                                       {"cum", no_argument, NULL, 'C'},
                                       {0}};
    struct cd_render_opts ro;
    cd_render_opts_default(&ro);
    int c;
    while ((c = next_opt(ctl, argc, argv, "o:hn:", lo)) != -1) {
        if (c >= 1000)
            return c - 1000;
        if (c == 'h')
            return command_help("inspect");
        if (c == 'o' && parse_output(ctl, optarg) != 0)
            return EXIT_USAGE;
        if (c == 'n') {
            int n;
            if (cd_str_to_int(optarg, 1, 10000, &n) != 0)
                return usage_error(ctl, "--top takes 1..10000, not '%s'", optarg);
            ro.top_n = (size_t)n;
        }
        if (c == 'T')
            ro.sample_type = optarg;
        if (c == 'C')
            ro.cum = true;
    }
    if (optind + 1 != argc)
        return usage_error(ctl, "%s", "one FILE is required (- reads standard input)");
    const char *path = argv[optind];
    uint8_t *data = NULL;
    size_t len = 0;
    if (read_input(path, &data, &len) != 0)
        return EXIT_ERR;
    json_t *rep = NULL;
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_ctl_inspect(data, len, ro.top_n, &rep, &err);
    free(data);
    if (rc != 0) {
        fprintf(stderr, "collectorctl: %s: %s\n", path, cd_err_msg(&err));
        return EXIT_ERR;
    }
    const char *format = mstr(rep, "format");
    const char *error = mstr(rep, "error");
    const json_t *sum = json_object_get(rep, "summary");
    if (ctl->out == OUT_JSON) {
        json_t *doc = json_pack("{s:s}", "file", path);
        if (doc != NULL)
            json_object_update(doc, rep);
        char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
        printf("%s\n", text != NULL ? text : "null");
        free(text);
        json_decref(doc);
    } else if (json_is_object(sum)) {
        ro.width = ctl->width;
        ro.now_ms = ctl->now_ms;
        char sz[32];
        cd_units_fmt_size(sz, sizeof(sz), len);
        put_clean(stdout, path);
        printf(": %s, %s%s\n\n", cd_render_format_title(format), sz,
               error != NULL ? " (only partly read: the error follows)" : "");
        cd_render_summary(stdout, format, sum, &ro);
    }
    if (error != NULL) {
        fflush(stdout);
        fprintf(stderr, "collectorctl: ");
        put_clean(stderr, path);
        fprintf(stderr, ": ");
        put_clean(stderr, error);
        fputc('\n', stderr);
    }
    json_decref(rep);
    return error != NULL ? EXIT_ERR : EXIT_OK;
}

/* ---- the command table ---------------------------------------------------------------------- */

static const struct command commands[] = {
    {"status", cmd_status, "what the daemon is doing: health, database, queues",
     "status [-o table|json]",
     "What the daemon is doing: version, uptime, config file, database size and counts, target\n"
     "health, scrape counters, queue depths (queued of capacity), the last retention run, and\n"
     "where the query API listens.\n"},
    {"list", cmd_list, "targets with their health, snapshot counts and last errors",
     "list [--job JOB] [--health up|down|unknown] [-o table|json]",
     "The targets being scraped: job, instance, scheme (http or gops), health (up or down by\n"
     "the last scrape, unknown until the first), the snapshots stored for it and their size on\n"
     "disk, and its newest scrape; then every target's last error, in full.\n"},
    {"snapshots", cmd_snapshots, "snapshots, newest first, filtered and paginated",
     "snapshots [--job JOB] [--target ID|ADDRESS] [--kind KIND] [--status STATUS] [--incident "
     "NAME] [--pinned] [--since TIME] [--until TIME] [-n|--limit N] [--cursor C] [--all] [-o "
     "table|json]",
     "Snapshots, newest first, one page at a time (default 100; the hint for the next page goes\n"
     "to stderr; --all follows every page; with -o json each page is printed as the API returns\n"
     "it, one per line). AGE counts from the start of the scrape, SIZE is the bytes received,\n"
     "PIN names the incident of a pinned snapshot (or says yes). TIME is RFC 3339, Unix\n"
     "seconds, or a duration back from now such as 15m or 2d.\n"},
    {"show", cmd_show, "one snapshot: metadata, findings, summary",
     "show ID [--top N] [--sample-type TYPE|all] [--cum] [-o table|json]",
     "One snapshot: where and when it was taken, how it went, its size and pin, and its\n"
     "summary. A profile: its type, time, duration and contents, then the top functions of its\n"
     "default sample type (see top). A goroutine dump: FINDINGS first (goroutines piling up on\n"
     "a lock, leaks, a cut dump), then states, wait times, groups of identical stacks, the\n"
     "longest waiting goroutines and where they were created. A heap text, gops memstats,\n"
     "stats or version, or an execution trace: their figures in human units. --top N rows per\n"
     "table (default 20).\n"},
    {"top", cmd_top, "the top functions of a profile (or a dump's findings and groups)",
     "top ID [-n|--top N] [--sample-type TYPE|all] [--cum] [-o table|json]",
     "The top functions of a profile snapshot as go tool pprof -top shows them: FLAT (the\n"
     "function's own), FLAT%, SUM% (running total of FLAT%), CUM (with everything it calls),\n"
     "CUM%, sorted by flat (--cum: by cumulative) value. The sample type is the profile's\n"
     "default, as go tool pprof picks it (cpu for CPU profiles, inuse_space for heap);\n"
     "--sample-type names another (samples, alloc_space, delay, ...) or all. For a goroutine\n"
     "dump: its findings and largest groups; for a heap text: its largest allocation sites.\n"
     "Exit status 1 when the snapshot has no such table.\n"},
    {"fetch", cmd_fetch, "download a snapshot's exact bytes", "fetch ID [-o FILE|-] [--force]",
     "Downloads the exact bytes a target sent. Without -o the file gets the server's name,\n"
     "<job>-<instance>-<kind>-<time>.pb.gz (or .trace, .txt), in the current directory; an\n"
     "existing file is not replaced without --force. Open it with go tool pprof or go tool\n"
     "trace, or summarize it again with collectorctl inspect.\n"},
    {"capture", cmd_capture, "scrape matching targets now (optionally into an incident)",
     "capture SELECTOR... [--kind KIND]... [--incident NAME] [--timeout DUR] [-o "
     "table|json]",
     "Scrapes every matching target now. SELECTOR words: job=NAME, target=ID|ADDRESS,\n"
     "LABEL=VALUE (ANDed; also comma-separated), or all. Without --kind each target gets its\n"
     "scheme's defaults (http: " CD_API_DEFAULT_CAPTURE_HTTP "; gops: " CD_API_DEFAULT_CAPTURE_GOPS
     "); --kind may repeat or list kinds with commas. With --incident the snapshots are\n"
     "pinned to that incident. CPU profiles and traces take their configured seconds and wait\n"
     "for one already running in the same process; a progress line shows the wait. --timeout\n"
     "(default 2m, at most 10m) bounds it: scrapes still running then are stored anyway.\n"
     "What could not be captured is listed with the reason under the table. Exit status 1\n"
     "when no snapshot succeeded.\n"},
    {"pin", cmd_pin, "keep a snapshot from retention", "pin ID [--incident NAME] [-o table|json]",
     "Pins a snapshot (optionally to an incident): retention never deletes it.\n"},
    {"unpin", cmd_unpin, "let retention apply to a snapshot again", "unpin ID [-o table|json]",
     "Unpins a snapshot (and takes it out of its incident); retention applies to it again.\n"},
    {"incidents", cmd_incidents, "the incidents (named sets of pinned snapshots)",
     "incidents [-o table|json]",
     "The incidents, newest first: named sets of pinned snapshots, with their size and the\n"
     "local times of their first and last snapshot. collectorctl export NAME downloads one.\n"},
    {"series", cmd_series, "numbers from summaries over time (goroutines, heap, GC)",
     "series NAME [--target ID|ADDRESS] [--since TIME] [--until TIME] [--limit N] [--points] "
     "[-o table|json]",
     "Numbers taken from every stored summary, per target: NAME is <kind>.<series>, e.g.\n"
     "goroutine.count, heap.inuse_space, allocs.alloc_space, memstats.heap_alloc,\n"
     "memstats.num_gc, stats.goroutines, goroutine_dump.count, trace.gc_count. The table shows\n"
     "each target's point count, min, max and last value and a trend line over the window\n"
     "(--since, default 1h; times as for snapshots); --points prints every point too.\n"},
    {"export", cmd_export, "an incident as a tar.gz of raw files and a manifest",
     "export INCIDENT [-o FILE|-] [--force]",
     "Downloads an incident as a tar.gz: every snapshot's exact bytes, manifest.json (targets,\n"
     "labels, times, statuses, sizes, SHA-256) and a README with the command that opens each\n"
     "file. Without -o the file is INCIDENT.tar.gz in the current directory.\n"},
    {"prune", cmd_prune, "run retention now, or see what it would delete",
     "prune [--dry-run] [-o table|json]",
     "Runs retention now (max_age, max_bytes, per-target limits, downsampling; pinned snapshots\n"
     "are never deleted). --dry-run only reports what it would delete, by rule.\n"},
    {"inspect", cmd_inspect, "summarize a local profile, trace or dump (offline)",
     "inspect FILE|- [--top N] [--sample-type TYPE|all] [--cum] [-o table|json]",
     "Summarizes a local file without a daemon, with the daemon's own parsers and limits: a\n"
     "pprof profile (gzipped or not), an execution trace (Go 1.11 to 1.26), a goroutine dump\n"
     "(debug=1 or 2, or gops), a heap profile text, or gops memstats/stats/version text; - reads\n"
     "standard input. It prints what show would. --top N rows per table (default 20).\n"
     "Exit status 1 when the file is not recognised or does not parse completely; for a\n"
     "trace cut short, what could be read is printed first. -o json prints {file, format,\n"
     "size_bytes, summary, series, error}.\n"},
    {"metrics", cmd_metrics, "the daemon's own Prometheus metrics", "metrics",
     "The daemon's own metrics in Prometheus text format (what GET /metrics serves).\n"},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: collectorctl [-s SOCKET|URL] [--token-file FILE] [-o table|json]\n"
            "                    [--progress|--no-progress] COMMAND [ARGS]\n\n"
            "Talks to collectord's query socket: %s by default,\n"
            "$%s when set, or -s PATH; -s http://HOST:PORT with\n"
            "--token-file FILE for the TCP listener.\n\n"
            "commands:\n",
            CD_API_DEFAULT_SOCKET, CD_CLIENT_ENV_ENDPOINT);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\ncollectorctl COMMAND --help describes a command.\n"
               "Exit status: 0 ok, 1 error, 2 usage.\n");
}

int main(int argc, char **argv)
{
    struct ctl ctl = {.out = OUT_TABLE, .progress = -1};
    static const struct option lo[] = {
        {"socket", required_argument, NULL, 's'}, {"token-file", required_argument, NULL, 'K'},
        {"output", required_argument, NULL, 'o'}, {"progress", no_argument, NULL, 'P'},
        {"no-progress", no_argument, NULL, 'Q'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+s:o:hV", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            ctl.endpoint = optarg;
            break;
        case 'K':
            ctl.token_file = optarg;
            break;
        case 'o':
            if (parse_output(&ctl, optarg) != 0)
                return EXIT_USAGE;
            break;
        case 'P':
            ctl.progress = 1;
            break;
        case 'Q':
            ctl.progress = 0;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("collectorctl %s (query API %s)\n", COLLECTORD_VERSION, CD_API_VERSION);
            return EXIT_OK;
        default:
            fprintf(stderr, "collectorctl: unknown option or missing value: '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const struct command *cmd = find_command(argv[optind]);
    if (cmd == NULL) {
        fprintf(stderr, "collectorctl: unknown command '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    ctl.cmd = cmd->name;
    ctl.width = cd_table_term_width(STDOUT_FILENO);
    ctl.now_ms = wall_now();
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    optind = 0; /* GNU getopt: full re-initialisation for the command's own options */
    int rc = cmd->run(&ctl, sub_argc, sub_argv);
    cd_client_free(ctl.client);
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "collectorctl: writing the output: %s\n", strerror(errno));
        rc = EXIT_ERR;
    }
    return rc;
}
