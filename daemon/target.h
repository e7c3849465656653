/*
 * target — one endpoint of one process that collectord scrapes, fully resolved: identity,
 * labels, credentials and, per kind, exactly what to request and how often.
 *
 * Config and discovery build these (on whatever thread discovery runs); the scrape engine takes a
 * whole struct cd_target_set over and reconciles it with what it runs, keeping the schedules of
 * targets whose fingerprint did not change. A target owns all its strings.
 */
#ifndef CD_TARGET_H
#define CD_TARGET_H

#include "kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cd_label {
    char *name;
    char *value;
};

/* A label set, kept sorted by name, names unique. */
struct cd_labels {
    struct cd_label *v;
    size_t n;
};

void cd_labels_free(struct cd_labels *l);
/* Adds or replaces. -ENOMEM. */
int cd_labels_set(struct cd_labels *l, const char *name, const char *value);
const char *cd_labels_get(const struct cd_labels *l, const char *name);
int cd_labels_copy(struct cd_labels *dst, const struct cd_labels *src);
/* {"name":"value",...} (malloc'd); NULL on ENOMEM. */
char *cd_labels_to_json(const struct cd_labels *l);

enum cd_scheme {
    CD_SCHEME_HTTP = 0,
    CD_SCHEME_HTTPS,
    CD_SCHEME_GOPS,
};

const char *cd_scheme_name(enum cd_scheme s);
int cd_scheme_parse(const char *s, enum cd_scheme *out);

/* What to scrape of one kind on one target. */
struct cd_kind_spec {
    char *name; /* canonical kind name (built-in or custom) */
    /* HTTP(S): path (with the job's path_prefix) and query without '?', e.g. "seconds=10" or
     * "debug=2"; both NULL for gops targets */
    char *path;
    char *query;
    int gops_cmd; /* gops targets: the command byte */
    int seconds;  /* how long the target itself takes (CPU profile, trace, delta); 0 = instant */
    int64_t interval_ms;
    int64_t timeout_ms; /* whole-request deadline: seconds*1000 + the job's scrape_timeout */
    enum cd_exclusive exclusive;
};

struct cd_tls {
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name;
    bool insecure_skip_verify;
};

struct cd_auth {
    char *username; /* basic auth when set */
    char *password; /* read from password or password_file when the config loaded */
    char *bearer;   /* Authorization: <type> <credentials>; type defaults to "Bearer" */
    char *auth_type;
};

struct cd_target {
    char *id; /* identity: "<job>/<scheme>://<address>", unique within a set */
    char *job;
    enum cd_scheme scheme;
    char *address; /* host:port (IPv6 hosts in brackets) */
    char *host;    /* without port or brackets */
    int port;
    struct cd_labels
        labels; /* job, instance, discovery labels (pid, exe, go_version), user labels */
    /*
     * Which OS process this endpoint belongs to, for the Go runtime's one-CPU-profile and
     * one-trace limits across HTTP and gops endpoints of the same process: "<host>#<pid>" when the
     * pid is known (local discovery, or a `pid` label), else "<host>" (different processes on one
     * remote host then wait for each other's CPU profiles: slower, never wrong).
     */
    char *process_key;
    struct cd_kind_spec *kinds;
    size_t n_kinds;
    struct cd_auth auth;
    struct cd_tls tls;
    /* HTTP client options with Prometheus's names; the zero values are Prometheus's defaults */
    bool no_follow_redirects; /* follow_redirects: false */
    bool no_http2;            /* enable_http2: false */
    char *proxy_url;          /* proxy_url; NULL = none */
    uint64_t max_body_bytes;
    uint64_t fingerprint; /* of everything above: equal fingerprints = nothing to restart */
};

struct cd_target_set {
    struct cd_target *v;
    size_t n;
    size_t cap;
};

void cd_target_free(struct cd_target *t); /* frees the members, not t itself */
void cd_target_set_free(struct cd_target_set *set);
/* Appends a zeroed target and returns it (NULL on ENOMEM). */
struct cd_target *cd_target_set_add(struct cd_target_set *set);
struct cd_target *cd_target_set_find(const struct cd_target_set *set, const char *id);

/* Fills id, host/port from address, process_key and fingerprint once the rest is set. */
int cd_target_finish(struct cd_target *t);

/* "<scheme>://<address><path>?<query>", no credentials (malloc'd; NULL on ENOMEM). For gops
 * kinds: "gops://<address> 0x06". */
char *cd_target_request(const struct cd_target *t, const struct cd_kind_spec *k);

/* Splits "host:port", "[v6]:port"; -EINVAL when malformed. */
int cd_target_split_address(const char *address, char **host, int *port);

#endif
