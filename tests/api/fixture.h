/*
 * fixture — what the query API tests share: a test server (the real struct cd_api on a
 * temporary Unix socket, optionally TCP with a token, over testbackend) with a standard data
 * set, and a small libcurl HTTP client that keeps status, headers and body. Test-only.
 */
#ifndef CD_API_FIXTURE_H
#define CD_API_FIXTURE_H

#include "api.h"
#include "testbackend.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FX_TOKEN "0123456789abcdef-test-token"

struct fx {
    char *dir;
    char *sock;
    struct tb tb;
    struct cd_api *api;
    int tcp_port;
    /* the standard data set */
    int64_t cpu_id;     /* ok pprof with a summary */
    int64_t heap_id;    /* ok */
    int64_t dump_id;    /* goroutine dump: 8 goroutines stuck on a mutex */
    int64_t trace_id;   /* execution trace bytes */
    int64_t timeout_id; /* no bytes */
    int64_t httperr_id; /* Go's text error */
    int64_t big_id;     /* 3 MiB, pinned to outage-42 */
    int64_t broken_id;  /* reader fails half-way, pinned to broken */
    uint8_t *big;
    size_t big_len;
};

/* Starts a server with lim (NULL = defaults) and TCP when tcp. */
void fx_start(struct fx *f, const struct cd_api_limits *lim, bool tcp);
void fx_stop(struct fx *f);

struct ht_resp {
    long status;
    char *body;
    size_t len;
    char *headers; /* raw header block of the final response */
    json_t *json;
};

/* A request over the Unix socket (sock != NULL) or TCP (url is then absolute). headers: NULL or
 * NULL-terminated "Name: value" lines. Returns the curl code (0 ok). */
int ht_request(const char *sock, const char *url, const char *method, const char *body,
               const char *const *headers, struct ht_resp *out);
/* GET over the fixture's Unix socket, path below http://localhost. Fails the test on transport
 * errors. */
void ht_get(struct fx *f, const char *path, struct ht_resp *out);
/* A header value (first match, case-insensitive name) copied into buf, or NULL. */
const char *ht_header(const struct ht_resp *r, const char *name, char *buf, size_t size);
void ht_free(struct ht_resp *r);

/* A connected, idle client socket. */
int ht_connect_unix(const char *path);
int ht_connect_tcp(int port);

/* Runs a shell command line (sh -c), capturing stdout+stderr; returns the exit status. */
int ht_sh(const char *cmdline, char **out, int timeout_ms);

#endif
