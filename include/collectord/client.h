/*
 * collectord client library — talks to the query API (include/collectord/api.h) over the Unix
 * socket or TCP, with libcurl. collectorctl is built on it; so can other tools.
 *
 * One struct cd_client per thread (it wraps one libcurl easy handle, reusing the connection).
 * Functions return 0 or a negative errno and describe failures in struct cd_err:
 *   -ENOENT        Unix socket file missing (the daemon is not running)
 *   -ECONNREFUSED  nothing listening (stale socket, or wrong TCP address)
 *   -EACCES        no permission on the socket
 *   -ETIMEDOUT     the request did not finish in time
 *   -EFBIG         the response passed max_response_bytes
 *   -EPROTO        not an HTTP/JSON answer
 * An HTTP error status is a successful call at this level (the response is filled);
 * cd_client_check() turns it into an error with the server's message.
 */
#ifndef COLLECTORD_CLIENT_H
#define COLLECTORD_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cd_err;
struct cd_client;

/* Environment variable naming the endpoint when none is given. */
#define CD_CLIENT_ENV_ENDPOINT "COLLECTORCTL_SOCKET"

struct cd_client_options {
    /* A Unix socket path (optionally "unix:PATH"), or "http://host:port" / "https://host:port".
     * NULL: $COLLECTORCTL_SOCKET, else CD_API_DEFAULT_SOCKET. */
    const char *endpoint;
    const char *token;         /* sent as "Authorization: Bearer" on TCP; never on Unix */
    long connect_timeout_ms;   /* default 5000 */
    long timeout_ms;           /* whole request; 0 = no limit (captures, exports) */
    size_t max_response_bytes; /* buffered responses (default 256 MiB); downloads unbounded */
};

struct cd_client_response {
    long status; /* HTTP status */
    char *body;  /* NUL-terminated (NULL for downloads) */
    size_t len;
    json_t *json;       /* when the body is JSON */
    char *content_type; /* NULL when absent */
    char *filename;     /* from Content-Disposition, made safe (no '/'), or NULL */
};

/* Called while a transfer runs (about once a second, and as bytes arrive). */
typedef void (*cd_client_progress_fn)(void *ctx, uint64_t bytes, uint64_t total /* 0 unknown */,
                                      int64_t elapsed_ms);

int cd_client_new(const struct cd_client_options *opts, struct cd_client **out, struct cd_err *err);
void cd_client_free(struct cd_client *c);

/* The endpoint as given or defaulted ("/run/collectord/collectord.sock", "http://h:p"). */
const char *cd_client_endpoint(const struct cd_client *c);
bool cd_client_is_unix(const struct cd_client *c);

/* Progress reporting for the following requests (NULL to stop). */
void cd_client_set_progress(struct cd_client *c, cd_client_progress_fn fn, void *ctx);
/* Changes the whole-request timeout for the following requests (0 = none). */
void cd_client_set_timeout(struct cd_client *c, long timeout_ms);

/*
 * One request. path is below the API prefix ("/status", "/snapshots/12") unless it starts with
 * "/metrics" or "/api/". query: NULL or a NULL-terminated list of name, value pairs (values are
 * percent-encoded here; a NULL value skips the pair). body: NULL or a JSON document to send.
 */
int cd_client_call(struct cd_client *c, const char *method, const char *path,
                   const char *const *query, const json_t *body, struct cd_client_response *resp,
                   struct cd_err *err);
/* A GET whose body goes to fd as it arrives (resp gets status and headers; on an HTTP error
 * status the error body is buffered into resp instead). */
int cd_client_download(struct cd_client *c, const char *path, const char *const *query, int fd,
                       struct cd_client_response *resp, struct cd_err *err);
void cd_client_response_free(struct cd_client_response *r);

/* 0 for a 2xx response; else the errno for its status (400 -EINVAL, 401/403 -EACCES, 404
 * -ENOENT, 409 -EEXIST, 413 -EFBIG, 429 -EAGAIN, 501 -ENOSYS, 503 -EBUSY, 504 -ETIMEDOUT,
 * others -EIO) with the server's "error" text in err. */
int cd_client_check(const struct cd_client_response *r, struct cd_err *err);

/* GET, checked, JSON object required: *out is yours. */
int cd_client_get_json(struct cd_client *c, const char *path, const char *const *query,
                       json_t **out, struct cd_err *err);

/*
 * A capture selector from command-line words: "job=api", "target=<id or address>", any other
 * "name=value" is a label, "all" means every target; words may also be comma-separated
 * ("job=api,team=payments"). *out is {"job", "target", "labels", "all"} as api.h expects.
 */
int cd_client_selector_parse(int argc, char *const *argv, json_t **out, struct cd_err *err);

/* Reads a token file (whitespace trimmed). *token is malloc'd. */
int cd_client_read_token_file(const char *path, char **token, struct cd_err *err);

#endif
