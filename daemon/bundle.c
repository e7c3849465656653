/* bundle — see bundle.h. */
#include "bundle.h"

#include "apiwire.h"
#include "buf.h"
#include "hash.h"
#include "str.h"
#include "units.h"

#include <collectord/api.h>
#include <collectord/version.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (64u * 1024)

enum bundle_state {
    B_README = 0,
    B_OPEN, /* open the next snapshot's bytes */
    B_DATA, /* copy them */
    B_PAD,  /* fill a short entry with zeros */
    B_MANIFEST,
    B_FINISH,
    B_DONE,
};

struct cd_bundle {
    json_t *doc;      /* {"incident", "snapshots"} */
    json_t *manifest; /* per snapshot: what was written */
    char name[CD_API_INCIDENT_NAME_MAX + 1];
    char filename[CD_API_INCIDENT_NAME_MAX + 8];
    struct cd_bundle_source src;
    struct cd_bundle_limits lim;
    int64_t now_ms;
    struct cd_tarball tb;
    enum bundle_state state;
    size_t idx;
    /* the entry being copied */
    struct cd_api_blob blob;
    bool blob_open;
    json_t *entry; /* manifest entry of the open snapshot (borrowed from manifest) */
    uint64_t size;
    uint64_t done;
    EVP_MD_CTX *sha;
    uint8_t *buf;
    uint64_t bytes_total; /* raw bytes written so far */
};

static const uint8_t zeros[4096];

static int64_t member_int(const json_t *o, const char *key, int64_t def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const char *member_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

void cd_bundle_free(struct cd_bundle *b)
{
    if (b == NULL)
        return;
    if (b->blob_open)
        cd_api_blob_release(&b->blob);
    json_decref(b->doc);
    json_decref(b->manifest);
    cd_tarball_free(&b->tb);
    if (b->sha != NULL)
        EVP_MD_CTX_free(b->sha);
    free(b->buf);
    free(b);
}

/* The file name inside the archive for snapshot i, or NULL when it has no bytes to write. */
static char *entry_name(const struct cd_bundle *b, const json_t *meta)
{
    char *base = cd_apiwire_snapshot_filename(meta, NULL, 0, true);
    if (base == NULL)
        return NULL;
    char *full = cd_str_printf("%s/%s", b->name, base);
    free(base);
    return full;
}

int cd_bundle_new(json_t *doc, const struct cd_bundle_source *src,
                  const struct cd_bundle_limits *lim, int64_t now_ms, struct cd_bundle **out,
                  struct cd_err *err)
{
    int rc = 0;
    struct cd_bundle *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        json_decref(doc);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    b->doc = doc;
    b->src = *src;
    b->lim = *lim;
    b->now_ms = now_ms;
    const json_t *inc = json_object_get(doc, "incident");
    const json_t *snaps = json_object_get(doc, "snapshots");
    const char *name = member_str(inc, "name");
    if (!json_is_object(inc) || name == NULL || !cd_apiwire_incident_name_valid(name) ||
        !json_is_array(snaps)) {
        rc = cd_err_set(err, -EINVAL,
                        "bundle: the incident document lacks a valid incident name or snapshots");
        goto fail;
    }
    cd_str_copy(b->name, name, sizeof(b->name));
    snprintf(b->filename, sizeof(b->filename), "%s.tar.gz", name);
    size_t n = json_array_size(snaps);
    if (n > lim->max_snapshots) {
        rc = cd_err_set(err, -EFBIG,
                        "incident '%s' has %zu snapshots, more than the bundle limit of %zu", name,
                        n, lim->max_snapshots);
        goto fail;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(snaps, i);
        int64_t size = member_int(s, "size_bytes", 0);
        if (!json_is_object(s) || member_int(s, "id", 0) <= 0 || size < 0) {
            rc = cd_err_set(err, -EINVAL, "bundle: snapshot %zu has no valid id or size", i);
            goto fail;
        }
        total += (uint64_t)size;
    }
    if (total > lim->max_bytes) {
        char have[32], max[32];
        rc = cd_err_set(err, -EFBIG, "incident '%s' holds %s, more than the bundle limit of %s",
                        name, cd_units_fmt_size(have, sizeof(have), total),
                        cd_units_fmt_size(max, sizeof(max), lim->max_bytes));
        goto fail;
    }
    b->manifest = json_array();
    b->sha = EVP_MD_CTX_new();
    b->buf = malloc(READ_CHUNK);
    if (b->manifest == NULL || b->sha == NULL || b->buf == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    rc = cd_tarball_init(&b->tb, lim->level, lim->chunk, err);
    if (rc != 0)
        goto fail;
    *out = b;
    return 0;
fail:
    cd_bundle_free(b);
    return rc;
}

const char *cd_bundle_filename(const struct cd_bundle *b)
{
    return b->filename;
}

static const char *open_command(const char *file)
{
    if (cd_str_has_suffix(file, ".trace"))
        return "go tool trace";
    if (cd_str_has_suffix(file, ".txt"))
        return "less";
    return "go tool pprof -http=:";
}

static int write_readme(struct cd_bundle *b, struct cd_err *err)
{
    struct cd_buf t;
    cd_buf_init(&t, 0);
    const json_t *inc = json_object_get(b->doc, "incident");
    const json_t *snaps = json_object_get(b->doc, "snapshots");
    char now[40], first[40] = "?", last[40] = "?";
    cd_units_fmt_rfc3339(now, sizeof(now), b->now_ms);
    if (json_is_integer(json_object_get(inc, "first_unix_ms")))
        cd_units_fmt_rfc3339(first, sizeof(first), member_int(inc, "first_unix_ms", 0));
    if (json_is_integer(json_object_get(inc, "last_unix_ms")))
        cd_units_fmt_rfc3339(last, sizeof(last), member_int(inc, "last_unix_ms", 0));
    int rc = cd_buf_printf(&t,
                           "Incident %s\n"
                           "Exported by collectord %s at %s.\n"
                           "%zu snapshots, taken %s .. %s.\n\n"
                           "Each file below holds the exact bytes a target returned. Open them "
                           "with:\n"
                           "  go tool pprof -http=: FILE   pprof profiles (.pb.gz, .pb)\n"
                           "  go tool trace FILE           execution traces (.trace; a trace "
                           "from Go 1.22+\n"
                           "                               needs go 1.22+ to open)\n"
                           "  less FILE                    goroutine dumps, gops text (.txt)\n\n"
                           "manifest.json, last in the archive, lists every snapshot with its "
                           "target,\n"
                           "labels, time, status, sizes and the SHA-256 of the bytes written.\n\n"
                           "Files (run from this directory):\n",
                           b->name, COLLECTORD_VERSION, now, json_array_size(snaps), first, last);
    for (size_t i = 0; rc == 0 && i < json_array_size(snaps); i++) {
        const json_t *s = json_array_get(snaps, i);
        const char *status = member_str(s, "status");
        if (member_int(s, "size_bytes", 0) <= 0) {
            rc = cd_buf_printf(&t, "  # snapshot %lld (%s, %s): no bytes kept, status %s\n",
                               (long long)member_int(s, "id", 0),
                               member_str(s, "kind") ? member_str(s, "kind") : "?",
                               member_str(s, "instance") ? member_str(s, "instance") : "?",
                               status ? status : "?");
            continue;
        }
        char *base = cd_apiwire_snapshot_filename(s, NULL, 0, true);
        if (base == NULL) {
            rc = -ENOMEM;
            break;
        }
        rc = cd_buf_printf(&t, "  %s %s\n", open_command(base), base);
        if (rc == 0 && status != NULL && strcmp(status, "ok") != 0)
            rc = cd_buf_printf(&t, "      (status %s: %s)\n", status,
                               member_str(s, "error") ? member_str(s, "error") : "no detail");
        free(base);
    }
    char *path = cd_str_printf("%s/README.txt", b->name);
    if (rc == 0 && path == NULL)
        rc = -ENOMEM;
    if (rc != 0) {
        rc = cd_err_set(err, rc, "bundle: out of memory");
    } else {
        rc = cd_tarball_add_dir(&b->tb, b->name, b->now_ms / 1000, err);
        if (rc == 0)
            rc = cd_tarball_add(&b->tb, path, t.data, t.len, b->now_ms / 1000, 0644, err);
    }
    free(path);
    cd_buf_free(&t);
    return rc;
}

/* The manifest entry of one snapshot: its metadata as recorded, before the bytes are read. */
static json_t *manifest_entry(const json_t *s)
{
    static const char *const keep[] = {
        "id",           "target",     "job",         "scheme",   "address",
        "instance",     "labels",     "kind",        "format",   "time_unix_ms",
        "duration_ms",  "status",     "http_status", "error",    "request",
        "content_type", "size_bytes", "pinned",      "incident", "parse_error",
    };
    json_t *e = json_object();
    if (e == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        json_t *v = json_object_get(s, keep[i]);
        if (v != NULL)
            json_object_set_new(e, keep[i], json_deep_copy(v));
    }
    json_t *sha = json_object_get(s, "sha256");
    json_object_set_new(e, "stored_sha256", sha != NULL ? json_deep_copy(sha) : json_null());
    json_object_set_new(e, "sha256", json_null());
    json_object_set_new(e, "file", json_null());
    json_object_set_new(e, "export_error", json_null());
    return e;
}

/* Records why a snapshot's bytes are missing or suspect; the first reason stays. */
static void entry_error(json_t *e, const char *what, const char *detail)
{
    if (json_is_string(json_object_get(e, "export_error")))
        return;
    char *msg = cd_str_printf("%s%s", what, detail != NULL ? detail : "");
    json_object_set_new(e, "export_error", msg != NULL ? json_string(msg) : json_null());
    free(msg);
}

static int open_next(struct cd_bundle *b, struct cd_err *err)
{
    const json_t *snaps = json_object_get(b->doc, "snapshots");
    if (b->idx >= json_array_size(snaps)) {
        b->state = B_MANIFEST;
        return 0;
    }
    const json_t *s = json_array_get(snaps, b->idx);
    json_t *e = manifest_entry(s);
    if (e == NULL || json_array_append_new(b->manifest, e) != 0)
        return cd_err_set(err, -ENOMEM, "bundle: out of memory");
    b->entry = e;
    if (member_int(s, "size_bytes", 0) <= 0) {
        b->idx++;
        return 0;
    }
    struct cd_err oerr;
    cd_err_init(&oerr);
    int rc = b->src.raw_open != NULL
                 ? b->src.raw_open(b->src.ctx, member_int(s, "id", 0), &b->blob, &oerr)
                 : cd_err_set(&oerr, -ENOSYS, "no raw reader");
    if (rc != 0) {
        entry_error(e, "could not open the bytes: ", cd_err_msg(&oerr));
        b->idx++;
        return 0;
    }
    b->blob_open = true;
    if (b->bytes_total + b->blob.size > b->lim.max_bytes) {
        entry_error(e, "left out: the bundle reached its size limit", NULL);
        cd_api_blob_release(&b->blob);
        b->blob_open = false;
        b->idx++;
        return 0;
    }
    char *name = entry_name(b, s);
    if (name == NULL)
        return cd_err_set(err, -ENOMEM, "bundle: out of memory");
    rc = cd_tarball_begin(&b->tb, name, b->blob.size, member_int(s, "time_unix_ms", 0) / 1000, 0644,
                          err);
    if (rc == 0) {
        json_object_set_new(e, "file", json_string(name));
        if (json_object_get(e, "size_bytes") == NULL ||
            member_int(e, "size_bytes", 0) != (int64_t)b->blob.size)
            json_object_set_new(e, "size_bytes", json_integer((json_int_t)b->blob.size));
    }
    free(name);
    if (rc != 0)
        return rc;
    if (EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL) != 1)
        return cd_err_set(err, -EIO, "bundle: SHA-256 init failed");
    b->size = b->blob.size;
    b->done = 0;
    b->state = B_DATA;
    return 0;
}

static int close_entry(struct cd_bundle *b, bool hashed, struct cd_err *err)
{
    int rc = cd_tarball_end(&b->tb, err);
    if (rc != 0)
        return rc;
    if (hashed) {
        uint8_t md[32];
        unsigned mdlen = 0;
        char hex[65];
        if (EVP_DigestFinal_ex(b->sha, md, &mdlen) != 1 || mdlen != 32)
            return cd_err_set(err, -EIO, "bundle: SHA-256 failed");
        cd_hash_hex(md, 32, hex);
        json_object_set_new(b->entry, "sha256", json_string(hex));
        const char *stored = member_str(b->entry, "stored_sha256");
        if (stored != NULL && strcmp(stored, hex) != 0)
            entry_error(b->entry, "the bytes differ from the stored SHA-256", NULL);
    }
    b->bytes_total += b->size;
    cd_api_blob_release(&b->blob);
    b->blob_open = false;
    b->idx++;
    b->state = B_OPEN;
    return 0;
}

static int copy_data(struct cd_bundle *b, struct cd_err *err)
{
    if (b->done == b->size) {
        /* One more read tells a reader that has more than it declared. */
        ssize_t extra = b->blob.read(b->blob.rctx, b->buf, 1);
        if (extra > 0)
            entry_error(b->entry, "the reader had more bytes than declared; cut", NULL);
        return close_entry(b, true, err);
    }
    uint64_t want = b->size - b->done;
    size_t n = want < READ_CHUNK ? (size_t)want : READ_CHUNK;
    ssize_t r = b->blob.read(b->blob.rctx, b->buf, n);
    if (r <= 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "%s after %llu of %llu bytes",
                 r == 0 ? "ended early" : strerror((int)-r), (unsigned long long)b->done,
                 (unsigned long long)b->size);
        char what[128];
        snprintf(what, sizeof(what), "reading the bytes failed (%s); padded with zeros", detail);
        entry_error(b->entry, what, NULL);
        json_object_set_new(b->entry, "sha256", json_null());
        b->state = B_PAD;
        return 0;
    }
    if ((size_t)r > n)
        r = (ssize_t)n;
    int rc = cd_tarball_write(&b->tb, b->buf, (size_t)r, err);
    if (rc != 0)
        return rc;
    if (EVP_DigestUpdate(b->sha, b->buf, (size_t)r) != 1)
        return cd_err_set(err, -EIO, "bundle: SHA-256 failed");
    b->done += (uint64_t)r;
    return 0;
}

static int pad_data(struct cd_bundle *b, struct cd_err *err)
{
    if (b->done == b->size)
        return close_entry(b, false, err);
    uint64_t want = b->size - b->done;
    size_t n = want < sizeof(zeros) ? (size_t)want : sizeof(zeros);
    int rc = cd_tarball_write(&b->tb, zeros, n, err);
    if (rc == 0)
        b->done += n;
    return rc;
}

static int write_manifest(struct cd_bundle *b, struct cd_err *err)
{
    json_t *m = json_object();
    if (m == NULL)
        return cd_err_set(err, -ENOMEM, "bundle: out of memory");
    json_object_set_new(m, "incident", json_deep_copy(json_object_get(b->doc, "incident")));
    json_object_set_new(m, "exported_unix_ms", json_integer(b->now_ms));
    json_object_set_new(m, "collectord_version", json_string(COLLECTORD_VERSION));
    json_object_set(m, "snapshots", b->manifest);
    cd_apiwire_normalize(m);
    char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(m);
    char *path = cd_str_printf("%s/manifest.json", b->name);
    int rc = 0;
    if (text == NULL || path == NULL)
        rc = cd_err_set(err, -ENOMEM, "bundle: out of memory");
    else
        rc = cd_tarball_add(&b->tb, path, text, strlen(text), b->now_ms / 1000, 0644, err);
    free(text);
    free(path);
    if (rc == 0)
        b->state = B_FINISH;
    return rc;
}

static int step(struct cd_bundle *b, struct cd_err *err)
{
    int rc = 0;
    switch (b->state) {
    case B_README:
        rc = write_readme(b, err);
        if (rc == 0)
            b->state = B_OPEN;
        return rc;
    case B_OPEN:
        return open_next(b, err);
    case B_DATA:
        return copy_data(b, err);
    case B_PAD:
        return pad_data(b, err);
    case B_MANIFEST:
        return write_manifest(b, err);
    case B_FINISH:
        rc = cd_tarball_finish(&b->tb, err);
        if (rc == 0)
            b->state = B_DONE;
        return rc;
    case B_DONE:
        return 0;
    }
    return cd_err_set(err, -EINVAL, "bundle: bad state");
}

ssize_t cd_bundle_read(struct cd_bundle *b, uint8_t *dst, size_t n, struct cd_err *err)
{
    while (cd_tarball_pending(&b->tb) == 0) {
        if (b->state == B_DONE)
            return 0;
        int rc = step(b, err);
        if (rc != 0)
            return rc;
    }
    return (ssize_t)cd_tarball_read(&b->tb, dst, n);
}
