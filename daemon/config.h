/*
 * config — collectord's YAML configuration: load (libyaml), validate the whole file, fill in
 * defaults, dump the effective config, and decide whether a reload may be applied.
 *
 * The shape is DESIGN.md §3 with Parca/Prometheus names wherever the concept exists there, so a
 * Parca `scrape_configs` block loads unchanged. The scalar sections (global, storage, query,
 * limits) are described by tables (key, type, default, bounds, reloadable) in config.c that drive
 * parsing, defaults, --dump-config and the reload check alike.
 *
 * Loading reads the file and the secrets it names (password_file, bearer_token_file,
 * credentials_file, query.token_file), so it blocks: call it at startup or from a worker, never
 * on the loop thread. Every problem found is reported, each as
 * "file:line:column: key.path: reason", not just the first one. A loaded struct cd_config is
 * immutable and may be read from any thread; it owns everything it points to.
 */
#ifndef CD_CONFIG_H
#define CD_CONFIG_H

#include "err.h"
#include "relabel.h"
#include "summary.h"
#include "target.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CD_CONFIG_DEFAULT_PATH "/etc/collectord/collectord.yaml"

/* Hard limits on the config file itself. */
#define CD_CONFIG_MAX_FILE_BYTES   (4u << 20)  /* the YAML file */
#define CD_CONFIG_MAX_SECRET_BYTES (64u << 10) /* password/token files */
#define CD_CONFIG_MAX_DIAG         100         /* error lines kept */
#define CD_CONFIG_MAX_JOBS         1000
#define CD_CONFIG_MAX_LABELS       64     /* per label map and per target */
#define CD_CONFIG_MAX_LABEL_VALUE  4096   /* bytes */
#define CD_CONFIG_MAX_NODES        200000 /* YAML nodes visited, aliases expanded */

/* Every error line of a failed load. */
struct cd_config_diag {
    char **lines; /* "file:line:column: key.path: reason" */
    size_t n;
    size_t dropped; /* lines past CD_CONFIG_MAX_DIAG */
};

void cd_config_diag_free(struct cd_config_diag *d);

struct cd_strv {
    char **v;
    size_t n;
};

/* URL query parameters; a name may repeat (Prometheus params are url.Values). */
struct cd_param {
    char *name;
    char *value;
};

struct cd_params {
    struct cd_param *v;
    size_t n;
};

/*
 * A target group as discovery produces it (Prometheus's targetgroup.Group): addresses, each with
 * its own labels (discovery metadata), plus labels common to the group. An address may carry a
 * scheme: "host:port", "gops://host:port", "https://host:port".
 */
struct cd_group_entry {
    char *address;
    struct cd_labels labels;
};

struct cd_group {
    struct cd_group_entry *v;
    size_t n;
    struct cd_labels labels;
    char *source; /* where it came from, for messages: "file_sd /etc/x.json", "static" */
};

struct cd_groups {
    struct cd_group *v;
    size_t n;
};

void cd_group_free(struct cd_group *g);
void cd_groups_free(struct cd_groups *gs);
/* Appends an empty group and returns it; NULL on ENOMEM. */
struct cd_group *cd_groups_add(struct cd_groups *gs);
int cd_group_add_entry(struct cd_group *g, const char *address, const struct cd_labels *labels);
int cd_groups_copy_append(struct cd_groups *dst, const struct cd_groups *src);
size_t cd_groups_count_entries(const struct cd_groups *gs);

/* Parca's keep_sample_type entry: accepted and shown, not applied (we keep the raw profile). */
struct cd_sample_type {
    char *type;
    char *unit;
};

/*
 * One kind of one job, after merging with the defaults (Parca semantics: kinds the file does not
 * mention keep their defaults; an entry without `enabled` is enabled).
 */
struct cd_kind_conf {
    char *name;                      /* as written: "process_cpu", "fgprof" */
    char *kind;                      /* canonical: "cpu", "fgprof" */
    const struct cd_kind_info *info; /* NULL for custom kinds */
    bool enabled;
    bool in_file; /* the file mentions this kind */
    /* HTTP: the full path, path_prefix included; NULL for gops kinds */
    char *path;
    bool delta;
    int seconds;         /* effective: what the target spends (0 = instant) */
    bool seconds_set;    /* given in the file */
    int64_t interval_ms; /* effective (the job's when not set) */
    bool interval_set;
    int64_t timeout_ms;      /* seconds*1000 + the job's scrape_timeout */
    struct cd_params params; /* the kind's own; the job's are added when targets are built */
    const char *fixed_query; /* from kind.h, e.g. "debug=2" */
    int gops_cmd;            /* gops kinds */
    enum cd_exclusive exclusive;
    struct cd_sample_type *keep_sample_type;
    size_t n_keep_sample_type;
};

struct cd_file_sd_conf {
    struct cd_strv files; /* absolute patterns; glob in the last element only */
    int64_t refresh_interval_ms;
};

enum cd_dns_type {
    CD_DNS_SRV = 0,
    CD_DNS_A,
    CD_DNS_AAAA,
};

struct cd_dns_sd_conf {
    struct cd_strv names;
    enum cd_dns_type type;
    int port; /* A/AAAA: required */
    int64_t refresh_interval_ms;
};

struct cd_local_sd_conf {
    bool gops;  /* agents found through their port files */
    bool pprof; /* net/http/pprof found by probing loopback listening ports */
    int64_t refresh_interval_ms;
    struct cd_regex exe; /* keep processes whose executable path matches; unset = all */
    bool exe_set;
    int64_t probe_timeout_ms;
    int max_probes;    /* per refresh; the rest wait for the next one */
    int max_processes; /* Go processes considered per refresh */
};

struct cd_job_conf {
    char *name;
    int line, column; /* where the job starts, for messages */
    int64_t scrape_interval_ms;
    int64_t scrape_timeout_ms;
    enum cd_scheme scheme;
    struct cd_params params;
    char *path_prefix; /* "" when unset */
    /* Accepted Prometheus/Parca fields; see config/collectord.yaml for what each does here. */
    bool honor_labels;
    bool honor_timestamps;
    bool normalized_addresses;
    bool follow_redirects;
    bool enable_http2;
    char *proxy_url;
    uint64_t body_size_limit; /* effective: limits.max_body_bytes when not set */

    struct cd_kind_conf *http_kinds; /* pprof_config: built-ins first, then custom kinds */
    size_t n_http_kinds;
    struct cd_kind_conf *gops_kinds; /* gops_config */
    size_t n_gops_kinds;

    struct cd_groups static_groups;
    struct cd_file_sd_conf *file_sd;
    size_t n_file_sd;
    struct cd_dns_sd_conf *dns_sd;
    size_t n_dns_sd;
    struct cd_local_sd_conf *local_sd;
    size_t n_local_sd;

    struct cd_relabel_rule *relabel;
    size_t n_relabel;
    bool relabel_per_kind; /* rules look at __name__ or __profile_path__ */

    struct cd_auth auth; /* secrets already read from their files */
    char *password_file; /* as configured (absolute), for the dump; NULL when inline */
    char *bearer_file;
    struct cd_tls tls;
};

struct cd_downsample_tier {
    int64_t after_ms;
    int64_t keep_one_per_ms;
};

struct cd_config {
    char *file; /* as given */
    char *dir;  /* absolute directory relative paths were resolved against */

    struct {
        int64_t scrape_interval_ms;
        int64_t scrape_timeout_ms;
        struct cd_labels external_labels;
    } global;

    struct {
        char *path;
        struct {
            int64_t max_age_ms;           /* 0 = no age limit */
            uint64_t max_bytes;           /* 0 = no size limit */
            int max_snapshots_per_target; /* 0 = unlimited */
            struct cd_downsample_tier *downsample;
            size_t n_downsample;
            int64_t interval_ms; /* how often retention runs */
        } retention;
    } storage;

    struct {
        char *socket;
        unsigned socket_mode;
        char *socket_group; /* "" = the daemon's group */
        char *listen;       /* "" = no TCP */
        char *token_file;   /* "" = none */
        char *token;        /* read from token_file */
        int max_connections;
        uint64_t max_request_bytes;
        uint64_t max_response_bytes;
        int64_t request_timeout_ms;
        int max_page_size;
    } query;

    struct {
        uint64_t max_body_bytes;
        uint64_t max_decompressed_bytes;
        int max_concurrent_scrapes;
        int max_targets;
        int ingest_queue_length;
        uint64_t ingest_queue_bytes;
        int parser_threads; /* 0 = one per CPU, at most 8 */
        int max_goroutines;
        uint64_t max_parse_memory;
        int64_t shutdown_timeout_ms;
    } limits;

    struct cd_job_conf *jobs;
    size_t n_jobs;
};

/*
 * Loads and validates path. On success *out owns the config. On failure err holds the first
 * error line and, when diag is not NULL, diag holds all of them (free with cd_config_diag_free).
 */
int cd_config_load(const char *path, struct cd_config **out, struct cd_err *err);
int cd_config_load_diag(const char *path, struct cd_config **out, struct cd_config_diag *diag,
                        struct cd_err *err);
/* The same from memory: name is used in messages, dir resolves relative paths (NULL = cwd). */
int cd_config_parse(const char *name, const char *dir, const void *data, size_t len,
                    struct cd_config **out, struct cd_config_diag *diag, struct cd_err *err);
void cd_config_free(struct cd_config *c);

/* The effective config as YAML, defaults included, secrets shown as "<secret>". The output loads
 * back to the same effective config. -EIO on a write error. */
int cd_config_dump(const struct cd_config *c, FILE *f);

/*
 * A reload may apply `next` in place of `cur` unless it changes a key that needs a restart
 * (storage.path, query.socket, query.socket_mode, query.socket_group, query.listen,
 * query.max_connections, limits.parser_threads, limits.ingest_queue_length,
 * limits.ingest_queue_bytes). Returns 0 or -EINVAL naming the keys; the caller keeps `cur`.
 */
int cd_config_reload_check(const struct cd_config *cur, const struct cd_config *next,
                           struct cd_err *err);

/* The parser limits the config sets (unset ones keep cd_parse_limits_default()). */
void cd_config_parse_limits(const struct cd_config *c, struct cd_parse_limits *lim);

/*
 * "host:port", "[v6]:port", optionally with "http://", "https://" or "gops://" in front. A missing
 * port is the scheme's default (80/443); gops has none. Sets *scheme (def when no prefix) and a
 * malloc'd normalized "host:port". Returns 0, -EINVAL with *why set, -ENOMEM.
 */
int cd_config_parse_address(const char *in, enum cd_scheme def, enum cd_scheme *scheme,
                            char **address, const char **why);

/* Durations as the config writes them, exactly and loadably: "1m30s", "14d", "250ms". */
void cd_config_fmt_duration(char *dst, size_t size, int64_t ms);

/* A job by name; NULL when none. */
const struct cd_job_conf *cd_config_job(const struct cd_config *c, const char *name);

void cd_strv_free(struct cd_strv *v);
int cd_strv_push(struct cd_strv *v, const char *s);
void cd_params_free(struct cd_params *p);
int cd_params_add(struct cd_params *p, const char *name, const char *value);

#endif
