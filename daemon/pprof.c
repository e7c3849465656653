/*
 * pprof — see pprof.h for the contract and the summary's shape.
 *
 * One call = one struct cd_pprof on the caller's stack: the decompressed profile (or the input
 * itself when it was raw), a long-lived arena for the tables kept until the summary is built and
 * a scratch arena (same memory budget) that each Location and Sample is unpacked into and then
 * rewound. The top level is walked five times (count, strings, small messages, locations,
 * samples); a walk only skips over length-delimited fields, so it costs little next to the
 * unpacking, and behind each walk the pages no later walk reads are given back (release()).
 */
#include "pprof.h"

#include "arena.h"
#include "textscan.h"

#include "profile.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <libdeflate.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PP_ASAN 1
#endif
#elif defined(__SANITIZE_ADDRESS__)
#define PP_ASAN 1
#endif
#ifdef PP_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Top-level Profile field numbers (schema/profile.proto). */
enum {
    F_SAMPLE_TYPE = 1,
    F_SAMPLE = 2,
    F_MAPPING = 3,
    F_LOCATION = 4,
    F_FUNCTION = 5,
    F_STRING_TABLE = 6,
    F_DROP_FRAMES = 7,
    F_KEEP_FRAMES = 8,
    F_TIME_NANOS = 9,
    F_DURATION_NANOS = 10,
    F_PERIOD_TYPE = 11,
    F_PERIOD = 12,
    F_COMMENT = 13,
    F_DEFAULT_SAMPLE_TYPE = 14,
    F_DOC_URL = 15,
    F_KNOWN_MAX = 15,
};

static const char *const field_names[F_KNOWN_MAX + 1] = {
    "?",
    "sample_type",
    "sample",
    "mapping",
    "location",
    "function",
    "string_table",
    "drop_frames",
    "keep_frames",
    "time_nanos",
    "duration_nanos",
    "period_type",
    "period",
    "comment",
    "default_sample_type",
    "doc_url",
};

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* Distinct label keys tracked for "label_keys"; more are counted but not listed. */
#define PP_MAX_LABEL_KEYS 1024u
#define PP_NO_NODE        UINT32_MAX
#define PP_ADDR_NODE      UINT32_MAX /* pp_node.name.off of a node named by its address */
#define PP_ONE_NODE       0x80000000u
/* A gzip member is at least a 10-byte header, a 2-byte empty deflate block and an 8-byte trailer.
 */
#define GZIP_MIN_MEMBER 20u

/* Bytes of the profile buffer (offsets keep the tables small: profiles are < 4 GiB). */
struct pp_str {
    uint32_t off;
    uint32_t len;
};

/* A view for comparing and printing. */
struct pp_span {
    const char *p;
    size_t len;
};

/* One row of the flat/cum tables: a function name (functions merge by name) or an address. */
struct pp_node {
    struct pp_str name; /* name.off == PP_ADDR_NODE: named by u.addr */
    union {
        struct pp_str file; /* of the first function seen with this name */
        uint64_t addr;
    } u;
};

/* Open addressing, id -> index; id 0 is never stored (pprof reserves it). Only built when a
 * profile's ids are not simply 1..n, which is how Go and most producers number them. */
struct pp_idmap {
    uint64_t *keys;
    uint32_t *vals;
    size_t mask;
};

/* The ids of a repeated message, stored only once they stop being 1..n (Go and most producers
 * number them so, and then an id is its index + 1). */
struct pp_ids {
    uint64_t *v; /* NULL while dense */
    size_t cap;
    bool dense;
};

struct pp_labelkey {
    int64_t key;
    int64_t unit; /* first num_unit seen (numeric labels) */
    uint64_t str_count;
    uint64_t num_count;
};

struct pp_valuetype {
    int64_t type;
    int64_t unit;
};

struct cd_pprof {
    const struct cd_parse_limits *lim;
    struct cd_err *err;
    const uint8_t *buf; /* the raw profile.proto bytes */
    size_t len;
    bool owned; /* buf was decompressed here: see release() */
    size_t page;
    struct cd_arena perm;    /* tables kept until the summary is built */
    struct cd_arena scratch; /* one unpacked message at a time */
    size_t counts[F_KNOWN_MAX + 1];
    /* Where each field number's occurrences start and end: later walks cover only the span of
     * the fields they want (producers write each repeated field in one run). */
    size_t first[F_KNOWN_MAX + 1], last_end[F_KNOWN_MAX + 1];
    size_t n_frames_total; /* sum over locations of max(1, lines) */

    /* Where each string's length is (it is read again when needed: half the table's size). */
    uint32_t *strings;
    size_t n_strings;
    int64_t drop_frames, keep_frames, time_nanos, duration_nanos, period, default_type, doc_url;
    int64_t *comments;
    size_t n_comments;
    struct pp_valuetype *types;
    size_t n_types;
    struct pp_valuetype period_type;
    bool has_period_type;
    int64_t main_file, main_build_id; /* of the first mapping */
    size_t n_mappings;

    struct pp_ids func_id;
    uint32_t *func_node; /* PP_NO_NODE when the function has no name */
    size_t n_funcs;
    struct pp_idmap func_ids;

    struct pp_ids loc_id;
    /* Per location: PP_ONE_NODE | node for the common single-frame location (one memory access
     * in the sample loop), else the offset in loc_nodes of [count, node, node, ...], innermost
     * first. */
    uint32_t *loc_info;
    uint32_t *loc_nodes;
    size_t n_locs;
    struct pp_idmap loc_ids;

    struct pp_node *nodes;
    /* per node, stride 1 + n_types: [last sample that added cum here (recursion counts once),
     * cum per type]; stamp and cum share a cache line in the sample loop */
    int64_t *acc;
    size_t n_nodes, cap_nodes;
    uint32_t *node_slots;
    size_t node_mask;

    int64_t *flat; /* n_nodes x n_types */
    int64_t *total, *total_abs;
    size_t n_samples;
    size_t truncated_stacks;
    int64_t stamp;
    bool symbolized;

    struct pp_labelkey *lkeys;
    size_t n_lkeys;
    uint32_t *lkey_slots;
};

/* ---------------------------------------------------------------------------------------------
 * gzip */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Every member into out[0..cap); LIBDEFLATE_* result, *bad_at = offset of the failing member. */
static enum libdeflate_result gunzip_members(struct libdeflate_decompressor *d, const uint8_t *in,
                                             size_t len, uint8_t *out, size_t cap, size_t *produced,
                                             size_t *bad_at, bool *trailing)
{
    size_t in_off = 0, out_off = 0;
    *trailing = false;
    do {
        *bad_at = in_off;
        if (len - in_off < GZIP_MIN_MEMBER || in[in_off] != 0x1f || in[in_off + 1] != 0x8b) {
            *trailing = in_off > 0;
            return LIBDEFLATE_BAD_DATA;
        }
        size_t in_used = 0, out_used = 0;
        enum libdeflate_result r = libdeflate_gzip_decompress_ex(
            d, in + in_off, len - in_off, out + out_off, cap - out_off, &in_used, &out_used);
        if (r != LIBDEFLATE_SUCCESS)
            return r;
        in_off += in_used;
        out_off += out_used;
    } while (in_off < len);
    *produced = out_off;
    return LIBDEFLATE_SUCCESS;
}

int cd_pprof_gunzip(const uint8_t *data, size_t len, size_t cap, uint8_t **out, size_t *out_len,
                    struct cd_err *err)
{
    int rc = 0;
    uint8_t *buf = NULL;
    struct libdeflate_decompressor *d = NULL;
    if (len < GZIP_MIN_MEMBER || data[0] != 0x1f || data[1] != 0x8b) {
        rc = cd_err_set(err, -EBADMSG, "gzip: truncated input: %zu bytes is no gzip stream", len);
        goto fail;
    }
    d = libdeflate_alloc_decompressor();
    if (d == NULL) {
        rc = cd_err_set(err, -ENOMEM, "gzip: out of memory");
        goto fail;
    }
    /* The trailer's ISIZE (size mod 2^32 of the last member) is only a hint: a liar costs a
     * retry with a bigger buffer, never more than cap. */
    size_t hint = le32(data + len - 4);
    size_t size = len < SIZE_MAX / 4 ? len * 4 : SIZE_MAX;
    if (size < ((size_t)64 << 10))
        size = (size_t)64 << 10;
    if (hint >= len / 2 && hint <= cap)
        size = hint;
    if (size > cap)
        size = cap;
    for (;;) {
        buf = malloc(size ? size : 1);
        if (buf == NULL) {
            rc = cd_err_set(err, -ENOMEM, "gzip: out of memory for %zu bytes", size);
            goto fail;
        }
        size_t produced = 0, bad_at = 0;
        bool trailing = false;
        enum libdeflate_result r =
            gunzip_members(d, data, len, buf, size, &produced, &bad_at, &trailing);
        if (r == LIBDEFLATE_SUCCESS) {
            *out = buf;
            *out_len = produced;
            buf = NULL;
            break;
        }
        free(buf);
        buf = NULL;
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            if (size >= cap) {
                rc = cd_err_set(err, -EFBIG,
                                "gzip: decompressed size exceeds the limit of %zu bytes "
                                "(%zu compressed bytes)",
                                cap, len);
                goto fail;
            }
            size = size > cap / 2 ? cap : size * 2;
            continue;
        }
        if (trailing)
            rc = cd_err_set(err, -EBADMSG, "gzip: %zu bytes of trailing garbage at byte %zu",
                            len - bad_at, bad_at);
        else
            rc = cd_err_set(err, -EBADMSG,
                            "gzip: corrupt or truncated data in the member at byte %zu "
                            "(input is %zu bytes)",
                            bad_at, len);
        goto fail;
    }
fail:
    free(buf);
    libdeflate_free_decompressor(d);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Wire format */

struct pp_field {
    uint32_t num;
    unsigned wt;
    uint64_t v;          /* varint and fixed values */
    const uint8_t *data; /* length-delimited payload */
    size_t len;
    size_t off; /* of the tag */
};

struct pp_walk {
    const uint8_t *base, *p, *end;
};

/* 0, -1 truncated, -2 too long / overflows 64 bits. */
static int rd_varint_slow(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return -2;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -2;
}

/* Varints of one to three bytes (tags, lengths, location and string ids: nearly all of them) are
 * decoded inline; the sample walk spends most of its time here. */
static inline int rd_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && p[0] < 0x80) {
        *out = p[0];
        *pp = p + 1;
        return 0;
    }
    if (end - p >= 3) {
        if (p[1] < 0x80) {
            *out = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
            *pp = p + 2;
            return 0;
        }
        if (p[2] < 0x80) {
            *out = (uint64_t)(p[0] & 0x7f) | (uint64_t)(p[1] & 0x7f) << 7 | (uint64_t)p[2] << 14;
            *pp = p + 3;
            return 0;
        }
    }
    return rd_varint_slow(pp, end, out);
}

static const char *field_name(uint32_t num)
{
    return num <= F_KNOWN_MAX ? field_names[num] : "unknown";
}

/* 1 at the end, 0 with a field, negative on malformed framing (err filled). */
static int next_field(struct pp_walk *w, struct pp_field *f, struct cd_err *err)
{
    if (w->p >= w->end)
        return 1;
    size_t off = (size_t)(w->p - w->base);
    uint64_t tag;
    int r = rd_varint(&w->p, w->end, &tag);
    if (r < 0)
        return cd_err_set(err, -EBADMSG, "pprof: protobuf: %s tag at byte %zu",
                          r == -1 ? "truncated" : "overlong", off);
    f->off = off;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (unsigned)(tag & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
        return cd_err_set(err, -EBADMSG,
                          "pprof: protobuf: invalid field number %" PRIu64 " at byte %zu", tag >> 3,
                          off);
    switch (f->wt) {
    case WT_VARINT:
        r = rd_varint(&w->p, w->end, &f->v);
        if (r < 0)
            return cd_err_set(err, -EBADMSG, "pprof: protobuf: field %u (%s) at byte %zu: %s",
                              f->num, field_name(f->num), off,
                              r == -1 ? "truncated varint" : "varint longer than 64 bits");
        break;
    case WT_FIXED64:
    case WT_FIXED32: {
        size_t n = f->wt == WT_FIXED64 ? 8 : 4;
        if ((size_t)(w->end - w->p) < n)
            return cd_err_set(err, -EBADMSG,
                              "pprof: protobuf: field %u (%s) at byte %zu: truncated", f->num,
                              field_name(f->num), off);
        w->p += n;
        break;
    }
    case WT_LEN: {
        uint64_t n;
        r = rd_varint(&w->p, w->end, &n);
        if (r < 0)
            return cd_err_set(err, -EBADMSG,
                              "pprof: protobuf: field %u (%s) at byte %zu: malformed length",
                              f->num, field_name(f->num), off);
        if (n > (uint64_t)(w->end - w->p))
            return cd_err_set(err, -EBADMSG,
                              "pprof: protobuf: field %u (%s) at byte %zu: length %" PRIu64
                              " runs past the end of the data (%zu bytes)",
                              f->num, field_name(f->num), off, n, (size_t)(w->end - w->base));
        f->data = w->p;
        f->len = (size_t)n;
        w->p += n;
        break;
    }
    default:
        return cd_err_set(err, -EBADMSG,
                          "pprof: protobuf: field %u (%s) at byte %zu: unsupported wire type %u",
                          f->num, field_name(f->num), off, f->wt);
    }
    return 0;
}

/* Whether a known field came with the wire type the schema gives it. */
static bool wire_type_ok(uint32_t num, unsigned wt)
{
    switch (num) {
    case F_SAMPLE_TYPE:
    case F_SAMPLE:
    case F_MAPPING:
    case F_LOCATION:
    case F_FUNCTION:
    case F_STRING_TABLE:
    case F_PERIOD_TYPE:
        return wt == WT_LEN;
    case F_COMMENT:
        return wt == WT_LEN || wt == WT_VARINT; /* packed or not */
    default:
        return num > F_KNOWN_MAX || wt == WT_VARINT;
    }
}

static bool looks_like_text(const uint8_t *p, size_t len)
{
    size_t n = len < 64 ? len : 64;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!(c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7f) || c >= 0xc2))
            return false;
    }
    return true;
}

bool cd_pprof_sniff(const uint8_t *data, size_t len)
{
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b)
        return true;
    struct pp_walk w = {data, data, data + len};
    struct pp_field f;
    int n = 0;
    while (n < 32) {
        int r = next_field(&w, &f, NULL);
        if (r != 0)
            return r > 0 && n > 0;
        if (n == 0 && f.num > F_KNOWN_MAX)
            return false;
        if (!wire_type_ok(f.num, f.wt))
            return false;
        n++;
    }
    return true;
}

/* Names the pre-protobuf format the bytes are in, or NULL. */
static const char *legacy_format(const uint8_t *p, size_t len)
{
    /* Legacy binary CPU profile: header words 0, 3 (header count), 0 (version), in 32- or 64-bit
     * words of either byte order. */
    if (len >= 16) {
        static const uint8_t w64le[16] = {0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};
        static const uint8_t w64be[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
        static const uint8_t w32le[8] = {0, 0, 0, 0, 3, 0, 0, 0};
        static const uint8_t w32be[8] = {0, 0, 0, 0, 0, 0, 0, 3};
        if (memcmp(p, w64le, 16) == 0 || memcmp(p, w64be, 16) == 0 || memcmp(p, w32le, 8) == 0 ||
            memcmp(p, w32be, 8) == 0)
            return "legacy binary CPU profile format is not supported";
    }
    if (!looks_like_text(p, len))
        return NULL;
    const char *s = (const char *)p;
    const char *nl = memchr(s, '\n', len);
    size_t first = nl ? (size_t)(nl - s) : len;
    if (cd_textscan_starts(s, len, "heap profile:") || cd_textscan_starts(s, len, "--- ") ||
        (memmem(s, first, " profile: total ", 16) != NULL))
        return "legacy text/heap format is not supported (debug=1 text: use the text parsers)";
    if (cd_textscan_starts(s, len, "goroutine "))
        return "goroutine dump text is not a profile.proto (use the goroutine parser)";
    return "text input is not a profile.proto";
}

/* ---------------------------------------------------------------------------------------------
 * Tables */

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n && p < (SIZE_MAX >> 2))
        p <<= 1;
    return p;
}

static size_t id_hash(uint64_t id, size_t mask)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 17) & mask;
}

static int oom(struct cd_pprof *pp)
{
    if (pp->perm.exhausted || pp->scratch.exhausted)
        return cd_err_set(pp->err, -ENOMEM,
                          "pprof: working memory limit of %zu bytes exceeded (max_memory)",
                          pp->perm.cap);
    return cd_err_set(pp->err, -ENOMEM, "pprof: out of memory");
}

/* Fills an id map from ids[0..n); -EEXIST names a duplicate in *dup. */
static int idmap_build(struct cd_pprof *pp, struct pp_idmap *m, const uint64_t *ids, size_t n,
                       uint64_t *dup)
{
    size_t cap = pow2_at_least(n * 2 + 1);
    m->keys = cd_arena_calloc(&pp->perm, cap, sizeof(*m->keys));
    m->vals = cd_arena_alloc(&pp->perm, cap * sizeof(*m->vals));
    m->mask = cap - 1;
    if (m->keys == NULL || m->vals == NULL)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++) {
        for (size_t i = id_hash(ids[k], m->mask);; i = (i + 1) & m->mask) {
            if (m->keys[i] == 0) {
                m->keys[i] = ids[k];
                m->vals[i] = (uint32_t)k;
                break;
            }
            if (m->keys[i] == ids[k]) {
                *dup = ids[k];
                return -EEXIST;
            }
        }
    }
    return 0;
}

static bool idmap_get(const struct pp_idmap *m, uint64_t id, uint32_t *val)
{
    if (id == 0 || m->keys == NULL)
        return false;
    for (size_t i = id_hash(id, m->mask);; i = (i + 1) & m->mask) {
        if (m->keys[i] == 0)
            return false;
        if (m->keys[i] == id) {
            *val = m->vals[i];
            return true;
        }
    }
}

/* Records the id of item i (items come in order). */
static int ids_add(struct cd_pprof *pp, struct pp_ids *ids, size_t i, uint64_t id)
{
    if (ids->dense && id == i + 1)
        return 0;
    if (ids->v == NULL) {
        ids->v = cd_arena_alloc(&pp->perm, ids->cap * sizeof(*ids->v));
        if (ids->v == NULL)
            return oom(pp);
        for (size_t k = 0; k < i; k++)
            ids->v[k] = k + 1;
    }
    ids->dense = false;
    ids->v[i] = id;
    return 0;
}

static void ids_init(struct pp_ids *ids, size_t cap)
{
    ids->v = NULL;
    ids->cap = cap;
    ids->dense = true;
}

/* Ids must be non-zero and unique (pprof's CheckValid); 1..n in order needs no map. */
static int index_ids(struct cd_pprof *pp, const char *what, const struct pp_ids *ids, size_t n,
                     struct pp_idmap *m)
{
    if (ids->dense)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ids->v[i] == 0)
            return cd_err_set(pp->err, -EBADMSG, "pprof: %s #%zu has the reserved id 0", what, i);
    uint64_t dup = 0;
    int r = idmap_build(pp, m, ids->v, n, &dup);
    if (r == -ENOMEM)
        return oom(pp);
    if (r < 0)
        return cd_err_set(pp->err, -EBADMSG, "pprof: several %ss with id %" PRIu64, what, dup);
    return 0;
}

static bool id_index(const struct pp_ids *ids, size_t n, const struct pp_idmap *m, uint64_t id,
                     uint32_t *idx)
{
    if (ids->dense) {
        if (id - 1 >= n)
            return false;
        *idx = (uint32_t)(id - 1);
        return true;
    }
    return idmap_get(m, id, idx);
}

/* Against the final size of the string table (known from the first walk, so indexes can be
 * checked before the strings themselves have been read). */
static int check_str(struct cd_pprof *pp, int64_t idx, const char *what, size_t item)
{
    size_t n = pp->counts[F_STRING_TABLE];
    if (idx >= 0 && (uint64_t)idx < n)
        return 0;
    return cd_err_set(pp->err, -EBADMSG,
                      "pprof: %s #%zu: string index %" PRId64 " out of range (string_table has "
                      "%zu entries)",
                      what, item, idx, n);
}

static struct pp_str str_at(const struct cd_pprof *pp, int64_t idx)
{
    struct pp_str s = {0, 0};
    if (idx >= 0 && (uint64_t)idx < pp->n_strings) {
        const uint8_t *p = pp->buf + pp->strings[idx];
        uint64_t len = 0;
        (void)rd_varint(&p, pp->buf + pp->len, &len); /* next_field has read it once already */
        s.off = (uint32_t)(p - pp->buf);
        s.len = (uint32_t)len;
    }
    return s;
}

static struct pp_span span_of(const struct cd_pprof *pp, struct pp_str s)
{
    struct pp_span v = {(const char *)pp->buf + s.off, s.len};
    return v;
}

static struct pp_span str_span(const struct cd_pprof *pp, int64_t idx)
{
    return span_of(pp, str_at(pp, idx));
}

static bool span_eq(struct pp_span a, struct pp_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int span_cmp(struct pp_span a, struct pp_span b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c != 0)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

#define PP_ADDR_NAME_MAX 20 /* "0x" + 16 hex digits + NUL */

/* A node's printable name; address nodes are formatted into tmp. */
static struct pp_span node_name(const struct cd_pprof *pp, uint32_t node,
                                char tmp[PP_ADDR_NAME_MAX])
{
    const struct pp_node *n = &pp->nodes[node];
    if (n->name.off != PP_ADDR_NODE)
        return span_of(pp, n->name);
    int k = snprintf(tmp, PP_ADDR_NAME_MAX, "0x%" PRIx64, n->u.addr);
    struct pp_span v = {tmp, (size_t)k};
    return v;
}

/* A quick hash of a function name, eight bytes at a time (names are ~30-100 bytes). */
static uint64_t name_hash(struct pp_span s)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ s.len;
    size_t i = 0;
    for (; i + 8 <= s.len; i += 8) {
        uint64_t w;
        memcpy(&w, s.p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t t = 0;
    if (s.len > i)
        memcpy(&t, s.p + i, s.len - i);
    h = (h ^ t) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static uint64_t node_hash(const struct cd_pprof *pp, struct pp_span name, bool is_addr,
                          uint64_t addr)
{
    (void)pp;
    return is_addr ? (addr ^ 0x5bd1e995u) * 0x9e3779b97f4a7c15ULL : name_hash(name);
}

/* Doubles the node hash table (sized for the functions; address nodes may outgrow it). */
static int grow_nodes(struct cd_pprof *pp)
{
    size_t cap = (pp->node_mask + 1) * 2;
    uint32_t *slots = cd_arena_calloc(&pp->perm, cap, sizeof(*slots));
    if (slots == NULL)
        return -ENOMEM;
    for (size_t k = 0; k < pp->n_nodes; k++) {
        const struct pp_node *n = &pp->nodes[k];
        bool a = n->name.off == PP_ADDR_NODE;
        uint64_t h = node_hash(pp, a ? span_of(pp, (struct pp_str){0, 0}) : span_of(pp, n->name), a,
                               a ? n->u.addr : 0);
        size_t i = (size_t)(h >> 7) & (cap - 1);
        while (slots[i] != 0)
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    pp->node_slots = slots;
    pp->node_mask = cap - 1;
    return 0;
}

/* The node of a function name, or of an address when is_addr. PP_NO_NODE when out of memory (or
 * full, which cannot happen: the capacity covers every function and location). */
static uint32_t intern_node(struct cd_pprof *pp, struct pp_str name, struct pp_str file,
                            bool is_addr, uint64_t addr)
{
    struct pp_span want = span_of(pp, name);
    uint64_t h = node_hash(pp, want, is_addr, addr);
    for (size_t i = (size_t)(h >> 7) & pp->node_mask;; i = (i + 1) & pp->node_mask) {
        uint32_t slot = pp->node_slots[i];
        if (slot == 0) {
            if (pp->n_nodes == pp->cap_nodes)
                return PP_NO_NODE;
            if ((pp->n_nodes + 1) * 4 > (pp->node_mask + 1) * 3) {
                if (grow_nodes(pp) < 0)
                    return PP_NO_NODE;
                return intern_node(pp, name, file, is_addr, addr);
            }
            struct pp_node *n = &pp->nodes[pp->n_nodes];
            n->name = name;
            if (is_addr) {
                n->name.off = PP_ADDR_NODE;
                n->u.addr = addr;
            } else {
                n->u.file = file;
            }
            pp->node_slots[i] = (uint32_t)++pp->n_nodes;
            return (uint32_t)(pp->n_nodes - 1);
        }
        const struct pp_node *n = &pp->nodes[slot - 1];
        bool n_addr = n->name.off == PP_ADDR_NODE;
        if (n_addr == is_addr &&
            (is_addr ? n->u.addr == addr : span_eq(span_of(pp, n->name), want)))
            return slot - 1;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Giving back what the walks are done with */

/* Profiles smaller than this keep their pages: the system calls would cost more than they save. */
#define PP_RELEASE_MIN  ((size_t)1 << 20)
#define PP_RELEASE_STEP ((size_t)128 << 10)

enum { KEEP_LOCATIONS = 1, KEEP_SAMPLES = 2 };

/*
 * Gives the pages of buf[lo, hi) back to the kernel, except those a later pass still reads: the
 * string table (names point into it until the summary is built) and the location and sample runs
 * named in `keep`. Only for a profile decompressed here (the caller's bytes are the caller's):
 * the peak then holds the strings and what is still to be walked rather than the whole profile,
 * which is most of a large CPU profile's memory. Under ASan the pages are poisoned as well, so a
 * pass that read released bytes would fail the tests instead of reading zeros.
 */
static void release(struct cd_pprof *pp, size_t lo, size_t hi, unsigned keep)
{
    if (!pp->owned || pp->len < PP_RELEASE_MIN || lo >= hi)
        return;
    static const int fields[] = {F_STRING_TABLE, F_LOCATION, F_SAMPLE};
    const bool kept[] = {true, (keep & KEEP_LOCATIONS) != 0, (keep & KEEP_SAMPLES) != 0};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        size_t a = pp->first[fields[i]], b = pp->last_end[fields[i]];
        if (!kept[i] || pp->counts[fields[i]] == 0 || a >= hi || b <= lo)
            continue;
        release(pp, lo, a > lo ? a : lo, keep);
        release(pp, b < hi ? b : hi, hi, keep);
        return;
    }
    uintptr_t mask = (uintptr_t)pp->page - 1;
    uintptr_t a = ((uintptr_t)(pp->buf + lo) + mask) & ~mask, b = (uintptr_t)(pp->buf + hi) & ~mask;
    if (a >= b)
        return;
    (void)madvise((void *)a, b - a, MADV_DONTNEED); /* advice: failing only costs memory */
#ifdef PP_ASAN
    ASAN_POISON_MEMORY_REGION((void *)a, b - a);
#endif
}

/* For a walk at byte `off`: what lies between *done and off goes once it is a step long. */
static void release_behind(struct cd_pprof *pp, size_t *done, size_t off, unsigned keep)
{
    if (off - *done < PP_RELEASE_STEP)
        return;
    release(pp, *done, off, keep);
    *done = off;
}

/* ---------------------------------------------------------------------------------------------
 * Walks */

static int walk_err(struct cd_pprof *pp, const struct pp_field *f, size_t item, const char *what)
{
    if (pp->perm.exhausted || pp->scratch.exhausted)
        return oom(pp);
    return cd_err_set(pp->err, -EBADMSG, "pprof: protobuf: field %u (%s) #%zu at byte %zu: %s",
                      f->num, field_name(f->num), item, f->off, what);
}

/* A walk over the part of the profile holding every field with a number in `nums`. */
static struct pp_walk span_walk(const struct cd_pprof *pp, const int *nums, size_t n)
{
    size_t lo = pp->len, hi = 0;
    for (size_t i = 0; i < n; i++) {
        int k = nums[i];
        if (pp->counts[k] == 0)
            continue;
        if (pp->first[k] < lo)
            lo = pp->first[k];
        if (pp->last_end[k] > hi)
            hi = pp->last_end[k];
    }
    if (lo > hi)
        lo = hi = 0;
    struct pp_walk w = {pp->buf, pp->buf + lo, pp->buf + hi};
    return w;
}

/* Frames a Location will have: its Line count, at least 1 (an address frame). */
static int location_frames(const struct pp_field *f, size_t *frames)
{
    struct pp_walk w = {f->data, f->data, f->data + f->len};
    struct pp_field sub;
    size_t n = 0;
    int r;
    while ((r = next_field(&w, &sub, NULL)) == 0)
        n += sub.num == 4;
    if (r < 0)
        return r;
    *frames = n ? n : 1;
    return 0;
}

/* Pass 1: checks the framing and wire types, counts repeated fields, keeps scalars. */
static int walk_count(struct cd_pprof *pp)
{
    struct pp_walk w = {pp->buf, pp->buf, pp->buf + pp->len};
    struct pp_field f;
    int r;
    while ((r = next_field(&w, &f, pp->err)) == 0) {
        if (!wire_type_ok(f.num, f.wt))
            return cd_err_set(pp->err, -EBADMSG,
                              "pprof: protobuf: field %u (%s) at byte %zu has wire type %u", f.num,
                              field_name(f.num), f.off, f.wt);
        if (f.num > F_KNOWN_MAX)
            continue; /* newer fields: skipped, as protobuf does */
        size_t item = pp->counts[f.num]++;
        if (item == 0)
            pp->first[f.num] = f.off;
        pp->last_end[f.num] = (size_t)(w.p - pp->buf);
        int64_t v = (int64_t)f.v;
        switch (f.num) {
        case F_LOCATION: {
            size_t frames;
            if (location_frames(&f, &frames) < 0)
                return walk_err(pp, &f, item, "malformed Location");
            pp->n_frames_total += frames;
            break;
        }
        case F_DROP_FRAMES:
            pp->drop_frames = v;
            break;
        case F_KEEP_FRAMES:
            pp->keep_frames = v;
            break;
        case F_TIME_NANOS:
            pp->time_nanos = v;
            break;
        case F_DURATION_NANOS:
            pp->duration_nanos = v;
            break;
        case F_PERIOD:
            pp->period = v;
            break;
        case F_DEFAULT_SAMPLE_TYPE:
            pp->default_type = v;
            break;
        case F_DOC_URL:
            pp->doc_url = v;
            break;
        case F_COMMENT:
            if (f.wt == WT_VARINT) {
                pp->n_comments++;
            } else {
                const uint8_t *p = f.data, *end = f.data + f.len;
                uint64_t x;
                while (p < end) {
                    if (rd_varint(&p, end, &x) < 0)
                        return walk_err(pp, &f, item, "malformed packed comments");
                    pp->n_comments++;
                }
            }
            break;
        default:
            break;
        }
    }
    return r < 0 ? r : 0;
}

static void add_comments(struct cd_pprof *pp, const struct pp_field *f, size_t *n)
{
    if (f->wt == WT_VARINT) {
        pp->comments[(*n)++] = (int64_t)f->v;
        return;
    }
    const uint8_t *p = f->data, *end = f->data + f->len;
    uint64_t x;
    while (p < end && rd_varint(&p, end, &x) == 0)
        pp->comments[(*n)++] = (int64_t)x;
}

/* Mapping ids and strings, as pprof's CheckValid wants them. info: id, filename, build_id. */
static int check_mappings(struct cd_pprof *pp, const int64_t *info)
{
    struct pp_ids ids;
    ids_init(&ids, pp->n_mappings);
    for (size_t i = 0; i < pp->n_mappings; i++) {
        int r;
        if ((r = ids_add(pp, &ids, i, (uint64_t)info[i * 3])) < 0 ||
            (r = check_str(pp, info[i * 3 + 1], "mapping", i)) < 0 ||
            (r = check_str(pp, info[i * 3 + 2], "mapping", i)) < 0)
            return r;
    }
    struct pp_idmap m = {0};
    return index_ids(pp, "mapping", &ids, pp->n_mappings, &m);
}

/* Pass 2: the string table, first, so that the functions can be interned as they come. */
static int walk_strings(struct cd_pprof *pp)
{
    pp->strings = cd_arena_alloc(&pp->perm, pp->counts[F_STRING_TABLE] * sizeof(*pp->strings));
    if (pp->strings == NULL)
        return oom(pp);
    static const int strs[] = {F_STRING_TABLE};
    struct pp_walk w = span_walk(pp, strs, 1);
    struct pp_field f;
    int r;
    while ((r = next_field(&w, &f, pp->err)) == 0) {
        if (f.num != F_STRING_TABLE)
            continue;
        const uint8_t *p = pp->buf + f.off; /* past the tag */
        uint64_t tag;
        (void)rd_varint(&p, f.data, &tag);
        pp->strings[pp->n_strings++] = (uint32_t)(p - pp->buf);
    }
    if (r < 0)
        return r;
    /* pprof: "string_table[0] must be ''" */
    if (pp->n_strings > 0 && str_at(pp, 0).len != 0)
        return cd_err_set(pp->err, -EBADMSG, "pprof: string_table[0] must be empty (is %u bytes)",
                          str_at(pp, 0).len);
    return 0;
}

/* A function's name becomes its node: one per distinct name (system_name when name is empty). */
static int intern_function(struct cd_pprof *pp, const Perftools__Profiles__Function *fn)
{
    size_t i = pp->n_funcs;
    struct pp_str name = str_at(pp, fn->name);
    if (name.len == 0)
        name = str_at(pp, fn->system_name);
    if (name.len == 0) {
        pp->func_node[i] = PP_NO_NODE; /* nameless: its frames count by address */
        return 0;
    }
    pp->func_node[i] = intern_node(pp, name, str_at(pp, fn->filename), false, 0);
    return pp->func_node[i] == PP_NO_NODE ? oom(pp) : 0;
}

/* Pass 3: sample types, period type, mappings, functions, comments. */
static int walk_small(struct cd_pprof *pp)
{
    size_t nf = pp->counts[F_FUNCTION], nm = pp->counts[F_MAPPING];
    pp->types = cd_arena_alloc(&pp->perm, pp->counts[F_SAMPLE_TYPE] * sizeof(*pp->types));
    ids_init(&pp->func_id, nf);
    pp->func_node = cd_arena_alloc(&pp->perm, nf * sizeof(*pp->func_node));
    pp->comments = cd_arena_alloc(&pp->perm, pp->n_comments * sizeof(*pp->comments));
    /* Nodes: at most one per distinct function name plus one per location address. */
    pp->cap_nodes = nf + pp->counts[F_LOCATION] + 1;
    size_t slots = pow2_at_least(nf + nf / 3 + 2); /* at most 3/4 full */
    pp->nodes = cd_arena_alloc(&pp->perm, pp->cap_nodes * sizeof(*pp->nodes));
    pp->node_slots = cd_arena_calloc(&pp->perm, slots, sizeof(*pp->node_slots));
    pp->node_mask = slots - 1;
    /* Mapping ids and strings are checked once all are known (duplicates). */
    struct cd_arena_mark base = cd_arena_mark(&pp->scratch);
    int64_t *minfo = cd_arena_alloc(&pp->scratch, nm * 3 * sizeof(int64_t));
    if (!pp->types || !pp->func_node || !pp->comments || !pp->nodes || !pp->node_slots || !minfo)
        return oom(pp);
    size_t n_comments = 0;
    static const int small[] = {F_SAMPLE_TYPE, F_PERIOD_TYPE, F_MAPPING, F_FUNCTION, F_COMMENT};
    struct pp_walk w = span_walk(pp, small, sizeof(small) / sizeof(small[0]));
    struct pp_field f;
    ProtobufCAllocator *pa = cd_arena_protobuf(&pp->scratch);
    size_t done = (size_t)(w.p - pp->buf);
    int r;
    while ((r = next_field(&w, &f, pp->err)) == 0) {
        release_behind(pp, &done, f.off, KEEP_LOCATIONS | KEEP_SAMPLES);
        struct cd_arena_mark mark = cd_arena_mark(&pp->scratch);
        switch (f.num) {
        case F_SAMPLE_TYPE:
        case F_PERIOD_TYPE: {
            Perftools__Profiles__ValueType *vt =
                perftools__profiles__value_type__unpack(pa, f.len, f.data);
            if (vt == NULL)
                return walk_err(pp, &f, f.num == F_SAMPLE_TYPE ? pp->n_types : 0,
                                "malformed ValueType");
            struct pp_valuetype v = {vt->type, vt->unit};
            if (f.num == F_SAMPLE_TYPE) {
                pp->types[pp->n_types++] = v;
            } else {
                pp->period_type = v;
                pp->has_period_type = true;
            }
            break;
        }
        case F_MAPPING: {
            Perftools__Profiles__Mapping *m =
                perftools__profiles__mapping__unpack(pa, f.len, f.data);
            if (m == NULL)
                return walk_err(pp, &f, pp->n_mappings, "malformed Mapping");
            if (pp->n_mappings == 0) {
                pp->main_file = m->filename;
                pp->main_build_id = m->build_id;
            }
            minfo[pp->n_mappings * 3] = (int64_t)m->id;
            minfo[pp->n_mappings * 3 + 1] = m->filename;
            minfo[pp->n_mappings * 3 + 2] = m->build_id;
            pp->n_mappings++;
            break;
        }
        case F_FUNCTION: {
            Perftools__Profiles__Function *fn =
                perftools__profiles__function__unpack(pa, f.len, f.data);
            if (fn == NULL)
                return walk_err(pp, &f, pp->n_funcs, "malformed Function");
            if ((r = ids_add(pp, &pp->func_id, pp->n_funcs, fn->id)) < 0 ||
                (r = check_str(pp, fn->name, "function", pp->n_funcs)) < 0 ||
                (r = check_str(pp, fn->system_name, "function", pp->n_funcs)) < 0 ||
                (r = check_str(pp, fn->filename, "function", pp->n_funcs)) < 0 ||
                (r = intern_function(pp, fn)) < 0)
                return r;
            pp->n_funcs++;
            break;
        }
        case F_COMMENT:
            add_comments(pp, &f, &n_comments);
            break;
        default:
            break;
        }
        cd_arena_rewind(&pp->scratch, mark);
    }
    if (r < 0)
        return r;
    pp->n_comments = n_comments;
    if ((r = check_mappings(pp, minfo)) < 0 ||
        (r = index_ids(pp, "function", &pp->func_id, pp->n_funcs, &pp->func_ids)) < 0)
        return r;
    cd_arena_rewind(&pp->scratch, base);
    return 0;
}

/* Pass 4: locations, each turned into the list of nodes its frames count for. */
/* What a summary needs of a Location: its id, its address and the function id of each line. */
struct pp_loc {
    uint64_t id, address;
    uint64_t *funcs; /* function_id per line (0: none) */
    size_t n_lines;
};

/* A length-delimited payload at *pp: *pp moves to its start and *sub_end is its end; false when
 * the length is malformed or runs past end. */
static bool rd_bytes(const uint8_t **pp, const uint8_t *end, const uint8_t **sub_end)
{
    uint64_t l;
    if (rd_varint(pp, end, &l) != 0 || l > (uint64_t)(end - *pp))
        return false;
    *sub_end = *pp + l;
    return true;
}

/* A Line message's function_id when every field is a varint of Line's (1-3); false otherwise. */
static bool fast_line(const uint8_t *p, const uint8_t *end, uint64_t *function_id)
{
    *function_id = 0;
    while (p < end) {
        uint64_t key, v;
        if (rd_varint(&p, end, &key) != 0 || (key & 7) != 0 || rd_varint(&p, end, &v) != 0)
            return false;
        uint64_t num = key >> 3;
        if (num == 1)
            *function_id = v;
        else if (num != 2 && num != 3)
            return false;
    }
    return true;
}

/*
 * A Location decoded by hand, like fast_sample and for the same reason: id, mapping_id, address
 * and is_folded as varints, lines as Line messages of varints. Anything else returns false and
 * goes through protobuf-c, which judges it. A Line takes at least 2 bytes: len / 2 + 1 slots.
 */
static bool fast_location(struct cd_arena *scratch, const uint8_t *p, size_t len,
                          struct pp_loc *out)
{
    const uint8_t *end = p + len;
    uint64_t *funcs = cd_arena_alloc(scratch, (len / 2 + 1) * sizeof(*funcs));
    if (funcs == NULL)
        return false;
    *out = (struct pp_loc){0, 0, funcs, 0};
    while (p < end) {
        uint64_t key, v;
        if (rd_varint(&p, end, &key) != 0)
            return false;
        uint64_t num = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (num == 4 && wt == 2) {
            const uint8_t *e;
            if (!rd_bytes(&p, end, &e) || !fast_line(p, e, &funcs[out->n_lines++]))
                return false;
            p = e;
            continue;
        }
        if (wt != 0 || num < 1 || num > 5 || rd_varint(&p, end, &v) != 0)
            return false;
        if (num == 1)
            out->id = v;
        else if (num == 3)
            out->address = v;
    }
    return true;
}

static int walk_locations(struct cd_pprof *pp)
{
    size_t n = pp->counts[F_LOCATION];
    ids_init(&pp->loc_id, n);
    pp->loc_info = cd_arena_alloc(&pp->perm, n * sizeof(*pp->loc_info));
    pp->loc_nodes = cd_arena_alloc(&pp->perm, (pp->n_frames_total + n) * sizeof(*pp->loc_nodes));
    if (!pp->loc_info || !pp->loc_nodes)
        return oom(pp);
    static const int locs[] = {F_LOCATION};
    struct pp_walk w = span_walk(pp, locs, 1);
    struct pp_field f;
    ProtobufCAllocator *pa = cd_arena_protobuf(&pp->scratch);
    struct pp_str none = {0, 0};
    size_t pos = 0, done = (size_t)(w.p - pp->buf);
    int r;
    while ((r = next_field(&w, &f, pp->err)) == 0) {
        release_behind(pp, &done, f.off, KEEP_SAMPLES);
        if (f.num != F_LOCATION)
            continue;
        size_t i = pp->n_locs;
        struct cd_arena_mark mark = cd_arena_mark(&pp->scratch);
        struct pp_loc loc;
        struct pp_loc *l = &loc;
        if (!fast_location(&pp->scratch, f.data, f.len, &loc)) {
            cd_arena_rewind(&pp->scratch, mark);
            Perftools__Profiles__Location *m =
                perftools__profiles__location__unpack(pa, f.len, f.data);
            if (m == NULL)
                return walk_err(pp, &f, i, "malformed Location");
            loc = (struct pp_loc){m->id, m->address, NULL, m->n_line};
            if (m->n_line > 0 &&
                (loc.funcs = cd_arena_alloc(&pp->scratch, m->n_line * sizeof(*loc.funcs))) == NULL)
                return oom(pp);
            for (size_t k = 0; k < m->n_line; k++)
                loc.funcs[k] = m->line[k]->function_id;
        }
        if ((r = ids_add(pp, &pp->loc_id, i, l->id)) < 0)
            return r;
        size_t nn = l->n_lines ? l->n_lines : 1;
        if (nn + 1 > pp->n_frames_total + n - pos)
            return walk_err(pp, &f, i, "more lines than counted");
        size_t start = pos++; /* the count goes here */
        uint32_t addr_node = PP_NO_NODE;
        for (size_t k = 0; k < nn; k++) {
            uint32_t node = PP_NO_NODE;
            if (k < l->n_lines && l->funcs[k] != 0) {
                uint32_t fi;
                if (!id_index(&pp->func_id, pp->n_funcs, &pp->func_ids, l->funcs[k], &fi))
                    return cd_err_set(pp->err, -EBADMSG,
                                      "pprof: location id %" PRIu64 ": line %zu refers to "
                                      "function id %" PRIu64 ", which is not in the profile",
                                      l->id, k, l->funcs[k]);
                node = pp->func_node[fi];
            }
            if (node != PP_NO_NODE) {
                pp->symbolized = true;
            } else if (addr_node == PP_NO_NODE) {
                /* No function info: the frame is its address (all such lines share it). */
                addr_node = node = intern_node(pp, none, none, true, l->address);
                if (node == PP_NO_NODE)
                    return oom(pp);
            } else {
                continue;
            }
            pp->loc_nodes[pos++] = node;
        }
        uint32_t count = (uint32_t)(pos - start - 1);
        if (count == 1) {
            pp->loc_info[i] = PP_ONE_NODE | pp->loc_nodes[start + 1];
            pos = start; /* the slots are not needed */
        } else {
            pp->loc_nodes[start] = count;
            pp->loc_info[i] = (uint32_t)start;
        }
        pp->n_locs++;
        cd_arena_rewind(&pp->scratch, mark);
    }
    if (r < 0)
        return r;
    release(pp, done, (size_t)(w.p - pp->buf), KEEP_SAMPLES);
    return index_ids(pp, "location", &pp->loc_id, pp->n_locs, &pp->loc_ids);
}

/* The entry of a label key, or NULL past PP_MAX_LABEL_KEYS distinct keys. */
static struct pp_labelkey *label_key(struct cd_pprof *pp, int64_t key)
{
    size_t mask = PP_MAX_LABEL_KEYS * 2 - 1;
    for (size_t i = id_hash((uint64_t)key + 1, mask);; i = (i + 1) & mask) {
        uint32_t slot = pp->lkey_slots[i];
        if (slot == 0) {
            if (pp->n_lkeys == PP_MAX_LABEL_KEYS)
                return NULL;
            struct pp_labelkey *k = &pp->lkeys[pp->n_lkeys];
            k->key = key;
            k->unit = 0;
            k->str_count = k->num_count = 0;
            pp->lkey_slots[i] = (uint32_t)++pp->n_lkeys;
            return k;
        }
        if (pp->lkeys[slot - 1].key == key)
            return &pp->lkeys[slot - 1];
    }
}

/* One sample label: Label's key, str, num and num_unit. */
struct pp_label {
    int64_t key, str, num, num_unit;
};

static int sample_labels(struct cd_pprof *pp, const struct pp_label *ls, size_t n, size_t item)
{
    if (n == 0)
        return 0;
    if (pp->lkeys == NULL) {
        pp->lkeys = cd_arena_alloc(&pp->perm, PP_MAX_LABEL_KEYS * sizeof(*pp->lkeys));
        pp->lkey_slots = cd_arena_calloc(&pp->perm, PP_MAX_LABEL_KEYS * 2, sizeof(*pp->lkey_slots));
        if (pp->lkeys == NULL || pp->lkey_slots == NULL)
            return oom(pp);
    }
    for (size_t i = 0; i < n; i++) {
        const struct pp_label *l = &ls[i];
        int r;
        if ((r = check_str(pp, l->key, "sample label", item)) < 0 ||
            (r = check_str(pp, l->str, "sample label", item)) < 0 ||
            (r = check_str(pp, l->num_unit, "sample label", item)) < 0)
            return r;
        struct pp_labelkey *k = label_key(pp, l->key);
        if (k == NULL)
            continue;
        if (l->str != 0) {
            k->str_count++;
        } else if (l->num != 0 || l->num_unit != 0) {
            if (k->num_count++ == 0 || k->unit == 0)
                k->unit = l->num_unit;
        }
    }
    return 0;
}

/* A Label message of varint fields 1-4 (the last of a repeated field wins, as protobuf-c does);
 * false for anything else. */
static bool fast_label(const uint8_t *p, const uint8_t *end, struct pp_label *l)
{
    *l = (struct pp_label){0, 0, 0, 0};
    while (p < end) {
        uint64_t key, v;
        if (rd_varint(&p, end, &key) != 0 || (key & 7) != 0 || rd_varint(&p, end, &v) != 0)
            return false;
        switch (key >> 3) {
        case 1:
            l->key = (int64_t)v;
            break;
        case 2:
            l->str = (int64_t)v;
            break;
        case 3:
            l->num = (int64_t)v;
            break;
        case 4:
            l->num_unit = (int64_t)v;
            break;
        default:
            return false;
        }
    }
    return true;
}

static int64_t abs64(int64_t v)
{
    return v == INT64_MIN ? INT64_MAX : v < 0 ? -v : v;
}

/* Per-function sums wrap instead of saturating: |flat| and |cum| of a function never exceed the
 * type's total_abs, which saturates, so they can only wrap when that total did (then the type is
 * reported "saturated"). Unsigned arithmetic: wrapping is defined, and the loop stays lean. */
static void add_wrap(int64_t *acc, int64_t x)
{
    *acc = (int64_t)((uint64_t)*acc + (uint64_t)x);
}

/* Adds one sample's values to the totals and to the flat/cum of the nodes on its stack. -EBADMSG
 * for a location id the profile does not have (the summary is abandoned then, so what was added
 * before it does not matter). */
static inline int account_nt(struct cd_pprof *pp, const int64_t *v, const uint64_t *ids,
                             size_t n_locs, size_t item, size_t nt)
{
    size_t stride = nt + 1;
    for (size_t k = 0; k < nt; k++) {
        cd_textscan_add_sat(&pp->total[k], v[k]);
        cd_textscan_add_sat(&pp->total_abs[k], abs64(v[k]));
    }
    int64_t stamp = ++pp->stamp;
    size_t depth = 0, max_depth = pp->lim->max_stack_depth;
    bool leaf = true;
    for (size_t i = 0; i < n_locs; i++) {
        uint32_t loc;
        if (!id_index(&pp->loc_id, pp->n_locs, &pp->loc_ids, ids[i], &loc))
            return cd_err_set(pp->err, -EBADMSG,
                              "pprof: sample #%zu refers to location id %" PRIu64
                              ", which is not in the profile",
                              item, ids[i]);
        uint32_t info = pp->loc_info[loc];
        const uint32_t *node, *end;
        uint32_t one;
        if (info & PP_ONE_NODE) {
            one = info & ~PP_ONE_NODE;
            node = &one;
            end = node + 1;
        } else {
            node = &pp->loc_nodes[info + 1];
            end = node + pp->loc_nodes[info];
        }
        for (; node < end; node++) {
            if (depth++ >= max_depth) {
                pp->truncated_stacks++;
                return 0;
            }
            if (leaf) {
                int64_t *frow = &pp->flat[(size_t)*node * nt];
                for (size_t k = 0; k < nt; k++)
                    add_wrap(&frow[k], v[k]);
                leaf = false;
            }
            int64_t *row = &pp->acc[(size_t)*node * stride];
            if (row[0] != stamp) {
                row[0] = stamp;
                for (size_t k = 0; k < nt; k++)
                    add_wrap(&row[1 + k], v[k]);
            }
        }
    }
    return 0;
}

/* The loops over the sample types unrolled for the common counts (CPU profiles have 2, heap 4). */
static int account_sample(struct cd_pprof *pp, const int64_t *v, const uint64_t *ids, size_t n_locs,
                          size_t item)
{
    switch (pp->n_types) {
    case 1:
        return account_nt(pp, v, ids, n_locs, item, 1);
    case 2:
        return account_nt(pp, v, ids, n_locs, item, 2);
    case 4:
        return account_nt(pp, v, ids, n_locs, item, 4);
    default:
        return account_nt(pp, v, ids, n_locs, item, pp->n_types);
    }
}

/* A Sample decoded by hand (see fast_sample). */
struct pp_fast {
    uint64_t *locs;
    int64_t *vals;
    struct pp_label *labels;
    size_t n_locs, n_vals, n_labels;
};

/*
 * A Sample of the common shape — location ids and values, packed or not, and labels of the four
 * varint fields — decoded here: protobuf-c's generic unpacker was a quarter of a summary's time.
 * Anything else (other fields or wire types, a framing error) returns false, and protobuf-c
 * decodes the message and judges it, so both paths accept and reject exactly the same inputs.
 * A field of len bytes holds at most len values (and len / 2 labels): arrays are sized by the
 * message, in the scratch arena.
 */
static bool fast_sample(struct cd_arena *scratch, const uint8_t *p, size_t len, struct pp_fast *out)
{
    const uint8_t *end = p + len;
    uint64_t *loc = cd_arena_alloc(scratch, (len + 1) * sizeof(*loc));
    uint64_t *val = cd_arena_alloc(scratch, (len + 1) * sizeof(*val));
    struct pp_label *lab = NULL;
    size_t nl = 0, nv = 0, nlab = 0;
    if (loc == NULL || val == NULL)
        return false;
    while (p < end) {
        uint64_t key, v;
        if (rd_varint(&p, end, &key) != 0)
            return false;
        uint64_t num = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (num == 3 && wt == 2) {
            const uint8_t *e;
            if (lab == NULL &&
                (lab = cd_arena_alloc(scratch, (len / 2 + 1) * sizeof(*lab))) == NULL)
                return false;
            if (!rd_bytes(&p, end, &e) || !fast_label(p, e, &lab[nlab++]))
                return false;
            p = e;
            continue;
        }
        if (num != 1 && num != 2)
            return false;
        uint64_t *dst = num == 1 ? loc : val;
        size_t *n = num == 1 ? &nl : &nv;
        if (wt == 0) {
            if (rd_varint(&p, end, &v) != 0)
                return false;
            dst[(*n)++] = v;
        } else if (wt == 2) {
            const uint8_t *e;
            if (!rd_bytes(&p, end, &e))
                return false;
            while (p < e) {
                if (rd_varint(&p, e, &v) != 0)
                    return false;
                dst[(*n)++] = v;
            }
        } else {
            return false;
        }
    }
    out->locs = loc;
    out->n_locs = nl;
    out->vals = (int64_t *)val; /* int64 on the wire is the two's complement varint */
    out->n_vals = nv;
    out->labels = lab;
    out->n_labels = nlab;
    return true;
}

/* Pass 5: every sample, one at a time. */
static int walk_samples(struct cd_pprof *pp)
{
    size_t nt = pp->n_types;
    if (nt + 1 > SIZE_MAX / sizeof(int64_t) / (pp->n_nodes + 1))
        return oom(pp);
    pp->flat = cd_arena_calloc(&pp->perm, pp->n_nodes * nt, sizeof(int64_t));
    pp->acc = cd_arena_calloc(&pp->perm, pp->n_nodes * (nt + 1), sizeof(int64_t));
    pp->total = cd_arena_calloc(&pp->perm, nt, sizeof(int64_t));
    pp->total_abs = cd_arena_calloc(&pp->perm, nt, sizeof(int64_t));
    if (!pp->flat || !pp->acc || !pp->total || !pp->total_abs)
        return oom(pp);
    if (pp->counts[F_SAMPLE] > 0 && nt == 0)
        return cd_err_set(pp->err, -EBADMSG,
                          "pprof: %zu samples but no sample_type (missing sample type "
                          "information)",
                          pp->counts[F_SAMPLE]);
    static const int samples[] = {F_SAMPLE};
    struct pp_walk w = span_walk(pp, samples, 1);
    struct pp_field f;
    ProtobufCAllocator *pa = cd_arena_protobuf(&pp->scratch);
    /* The peak is this walk's start, its tables just allocated: giving back as many bytes of
     * walked samples as they take keeps it there. Past that, pages given back lower nothing that
     * matters and cost a page fault each on the next profile. */
    size_t done = (size_t)(w.p - pp->buf),
           stop = done + pp->n_nodes * (2 * nt + 1) * sizeof(int64_t);
    int r;
    while ((r = next_field(&w, &f, pp->err)) == 0) {
        if (f.off <= stop + PP_RELEASE_STEP)
            release_behind(pp, &done, f.off, 0);
        if (f.num != F_SAMPLE)
            continue;
        size_t item = pp->n_samples;
        struct cd_arena_mark mark = cd_arena_mark(&pp->scratch);
        struct pp_fast fs;
        if (fast_sample(&pp->scratch, f.data, f.len, &fs)) {
            if (fs.n_vals != nt)
                return cd_err_set(pp->err, -EBADMSG,
                                  "pprof: sample #%zu has %zu values for %zu sample types", item,
                                  fs.n_vals, nt);
            if ((r = sample_labels(pp, fs.labels, fs.n_labels, item)) < 0 ||
                (r = account_sample(pp, fs.vals, fs.locs, fs.n_locs, item)) < 0)
                return r;
            pp->n_samples++;
            cd_arena_rewind(&pp->scratch, mark);
            continue;
        }
        cd_arena_rewind(&pp->scratch, mark);
        Perftools__Profiles__Sample *s = perftools__profiles__sample__unpack(pa, f.len, f.data);
        if (s == NULL)
            return walk_err(pp, &f, item, "malformed Sample");
        if (s->n_value != nt)
            return cd_err_set(pp->err, -EBADMSG,
                              "pprof: sample #%zu has %zu values for %zu sample types", item,
                              s->n_value, nt);
        for (size_t i = 0; i < s->n_label; i++) {
            struct pp_label l = {s->label[i]->key, s->label[i]->str, s->label[i]->num,
                                 s->label[i]->num_unit};
            if ((r = sample_labels(pp, &l, 1, item)) < 0)
                return r;
        }
        if ((r = account_sample(pp, s->value, s->location_id, s->n_location_id, item)) < 0)
            return r;
        pp->n_samples++;
        cd_arena_rewind(&pp->scratch, mark);
    }
    return r < 0 ? r : 0;
}

static int check_strings(struct cd_pprof *pp)
{
    int r;
    for (size_t i = 0; i < pp->n_types; i++)
        if ((r = check_str(pp, pp->types[i].type, "sample_type", i)) < 0 ||
            (r = check_str(pp, pp->types[i].unit, "sample_type", i)) < 0)
            return r;
    if (pp->has_period_type && ((r = check_str(pp, pp->period_type.type, "period_type", 0)) < 0 ||
                                (r = check_str(pp, pp->period_type.unit, "period_type", 0)) < 0))
        return r;
    for (size_t i = 0; i < pp->n_comments; i++)
        if ((r = check_str(pp, pp->comments[i], "comment", i)) < 0)
            return r;
    /* Scalar string fields left at 0 mean "" even in a profile without a string table. */
    const int64_t scalars[] = {pp->drop_frames, pp->keep_frames, pp->default_type, pp->doc_url};
    static const char *const names[] = {"drop_frames", "keep_frames", "default_sample_type",
                                        "doc_url"};
    for (size_t i = 0; i < 4; i++)
        if (scalars[i] != 0 && (r = check_str(pp, scalars[i], names[i], 0)) < 0)
            return r;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Summary */

static int64_t flat_at(const struct cd_pprof *pp, size_t node, size_t k)
{
    return pp->flat[node * pp->n_types + k];
}

static int64_t cum_at(const struct cd_pprof *pp, size_t node, size_t k)
{
    return pp->acc[node * (pp->n_types + 1) + 1 + k];
}

struct pp_sort_ctx {
    const struct cd_pprof *pp;
    size_t k;
};

static int cmp_names(const struct cd_pprof *pp, uint32_t a, uint32_t b)
{
    char ta[PP_ADDR_NAME_MAX], tb[PP_ADDR_NAME_MAX];
    return span_cmp(node_name(pp, a, ta), node_name(pp, b, tb));
}

/* pprof's FlatNameOrder: |flat| desc, name, |cum| desc. */
static int cmp_flat(const void *a, const void *b, void *arg)
{
    const struct pp_sort_ctx *c = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int64_t fx = abs64(flat_at(c->pp, x, c->k)), fy = abs64(flat_at(c->pp, y, c->k));
    if (fx != fy)
        return fx > fy ? -1 : 1;
    int r = cmp_names(c->pp, x, y);
    if (r != 0)
        return r;
    int64_t cx = abs64(cum_at(c->pp, x, c->k)), cy = abs64(cum_at(c->pp, y, c->k));
    return cx > cy ? -1 : cx < cy;
}

/* pprof's CumNameOrder: |cum| desc, name, |flat| desc. */
static int cmp_cum(const void *a, const void *b, void *arg)
{
    const struct pp_sort_ctx *c = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int64_t cx = abs64(cum_at(c->pp, x, c->k)), cy = abs64(cum_at(c->pp, y, c->k));
    if (cx != cy)
        return cx > cy ? -1 : 1;
    int r = cmp_names(c->pp, x, y);
    if (r != 0)
        return r;
    int64_t fx = abs64(flat_at(c->pp, x, c->k)), fy = abs64(flat_at(c->pp, y, c->k));
    return fx > fy ? -1 : fx < fy;
}

static json_t *span_json(struct pp_span s)
{
    return cd_textscan_json_str(s.p, s.len);
}

/*
 * The JSON of the nodes in the top tables, shared: a function's name and file strings across the
 * sample types (a heap profile's four types mostly list the same functions) and its row between
 * top_flat and top_cum of one type. Built for each table, those objects were most of the
 * daemon's allocations at 300 scrapes a second. Open addressing over the nodes that make a table;
 * holds one reference to each value.
 */
struct pp_rowent {
    uint32_t slot; /* node + 1; 0: free (as in node_slots) */
    size_t k;      /* the sample type `row` is for */
    json_t *name, *file, *row;
};

struct pp_rowcache {
    struct pp_rowent *ents;
    size_t mask;
};

static int rowcache_init(struct cd_pprof *pp, struct pp_rowcache *c, size_t max_nodes)
{
    size_t cap = pow2_at_least(max_nodes * 2 + 1);
    c->ents = cd_arena_calloc(&pp->perm, cap, sizeof(*c->ents));
    c->mask = cap - 1;
    return c->ents == NULL ? -ENOMEM : 0;
}

static void rowcache_free(struct pp_rowcache *c)
{
    for (size_t i = 0; c->ents != NULL && i <= c->mask; i++) {
        json_decref(c->ents[i].name);
        json_decref(c->ents[i].file);
        json_decref(c->ents[i].row);
    }
}

/* The row of `node` for sample type k: a new reference, or NULL when out of memory. */
static json_t *row_json(const struct cd_pprof *pp, struct pp_rowcache *c, uint32_t node, size_t k)
{
    struct pp_rowent *e;
    for (size_t i = id_hash(node, c->mask);; i = (i + 1) & c->mask) {
        e = &c->ents[i];
        if (e->slot == node + 1 || e->slot == 0)
            break;
    }
    e->slot = node + 1;
    if (e->row != NULL && e->k == k)
        return json_incref(e->row);
    if (e->name == NULL) {
        char tmp[PP_ADDR_NAME_MAX];
        const struct pp_node *n = &pp->nodes[node];
        struct pp_str file = n->name.off == PP_ADDR_NODE ? (struct pp_str){0, 0} : n->u.file;
        e->name = span_json(node_name(pp, node, tmp));
        e->file = span_json(span_of(pp, file));
        if (e->name == NULL || e->file == NULL)
            return NULL;
    }
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = 0;
    bad |= cd_textscan_jset(o, "function", json_incref(e->name));
    bad |= cd_textscan_jset(o, "file", json_incref(e->file));
    /* No percentages: they follow from total_abs, and formatting hundreds of reals per profile
     * was a tenth of the daemon's CPU at 300 scrapes a second. */
    bad |= cd_textscan_jset(o, "flat", json_integer(flat_at(pp, node, k)));
    bad |= cd_textscan_jset(o, "cum", json_integer(cum_at(pp, node, k)));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    json_decref(e->row);
    e->row = o;
    e->k = k;
    return json_incref(o);
}

/* Keeps the best `cap` nodes in a heap whose root is the worst of them (cmp order). */
static void heap_offer(uint32_t *heap, size_t *n, size_t cap, uint32_t node,
                       int (*cmp)(const void *, const void *, void *), void *ctx)
{
    size_t i;
    if (*n < cap) {
        i = (*n)++;
        heap[i] = node;
        while (i > 0 && cmp(&heap[(i - 1) / 2], &heap[i], ctx) < 0) {
            uint32_t t = heap[i];
            heap[i] = heap[(i - 1) / 2];
            heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    if (cmp(&node, &heap[0], ctx) >= 0)
        return; /* not better than the worst kept */
    heap[0] = node;
    for (i = 0;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < *n && cmp(&heap[l], &heap[m], ctx) > 0)
            m = l;
        if (l + 1 < *n && cmp(&heap[l + 1], &heap[m], ctx) > 0)
            m = l + 1;
        if (m == i)
            return;
        uint32_t t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

/* top_flat or top_cum of sample type k; rows has room for min(top_n, nodes) entries. */
static json_t *top_table(const struct cd_pprof *pp, struct pp_rowcache *c, uint32_t *rows, size_t k,
                         bool by_flat)
{
    int (*cmp)(const void *, const void *, void *) = by_flat ? cmp_flat : cmp_cum;
    struct pp_sort_ctx ctx = {pp, k};
    size_t n = 0, cap = pp->lim->top_n < pp->n_nodes ? pp->lim->top_n : pp->n_nodes;
    for (size_t i = 0; i < pp->n_nodes; i++)
        if ((by_flat ? flat_at(pp, i, k) : cum_at(pp, i, k)) != 0)
            heap_offer(rows, &n, cap, (uint32_t)i, cmp, &ctx);
    if (n > 1)
        qsort_r(rows, n, sizeof(*rows), cmp, &ctx);
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (cd_textscan_jpush(arr, row_json(pp, c, rows[i], k)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *valuetype_json(const struct cd_pprof *pp, struct pp_valuetype vt)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (cd_textscan_jset(o, "type", span_json(str_span(pp, vt.type))) |
        cd_textscan_jset(o, "unit", span_json(str_span(pp, vt.unit)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *opt_int(int64_t v)
{
    return v ? json_integer(v) : json_null();
}

static int cmp_labelkey(const void *a, const void *b, void *ctx)
{
    const struct pp_labelkey *x = a, *y = b;
    const struct cd_pprof *pp = ctx;
    return span_cmp(str_span(pp, x->key), str_span(pp, y->key));
}

static int label_entry(json_t *arr, struct pp_span key, const struct pp_span *unit, uint64_t count)
{
    json_t *e = json_object();
    if (cd_textscan_jpush(arr, e) < 0)
        return -ENOMEM;
    int bad = cd_textscan_jset(e, "key", span_json(key));
    if (unit != NULL)
        bad |= cd_textscan_jset(e, "unit", span_json(*unit));
    bad |= cd_textscan_jset(e, "count", json_integer((json_int_t)count));
    return bad ? -ENOMEM : 0;
}

static json_t *label_keys_json(struct cd_pprof *pp)
{
    json_t *o = json_object(), *str = json_array(), *num = json_array();
    int bad = cd_textscan_jset(o, "string", str) | cd_textscan_jset(o, "numeric", num);
    if (pp->n_lkeys > 1)
        qsort_r(pp->lkeys, pp->n_lkeys, sizeof(*pp->lkeys), cmp_labelkey, pp);
    for (size_t i = 0; !bad && i < pp->n_lkeys;) {
        /* The same key text under several string indexes is one key. */
        struct pp_span key = str_span(pp, pp->lkeys[i].key);
        uint64_t sc = 0, nc = 0;
        int64_t unit = 0;
        for (; i < pp->n_lkeys && span_eq(str_span(pp, pp->lkeys[i].key), key); i++) {
            sc += pp->lkeys[i].str_count;
            nc += pp->lkeys[i].num_count;
            if (unit == 0)
                unit = pp->lkeys[i].unit;
        }
        struct pp_span u = str_span(pp, unit);
        if (sc)
            bad |= label_entry(str, key, NULL, sc);
        if (nc)
            bad |= label_entry(num, key, &u, nc);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static size_t default_index(const struct cd_pprof *pp)
{
    if (pp->n_types == 0)
        return 0;
    struct pp_span want = str_span(pp, pp->default_type);
    if (want.len > 0)
        for (size_t i = 0; i < pp->n_types; i++)
            if (span_eq(str_span(pp, pp->types[i].type), want))
                return i;
    return pp->n_types - 1;
}

static int sample_types_json(struct cd_pprof *pp, json_t *types)
{
    size_t cap = pp->lim->top_n < pp->n_nodes ? pp->lim->top_n : pp->n_nodes;
    size_t in_tables = pp->n_types * 2 * cap; /* at most; and never more than the nodes */
    struct pp_rowcache cache = {NULL, 0};
    uint32_t *rows = malloc((cap ? cap : 1) * sizeof(*rows));
    if (rows == NULL ||
        rowcache_init(pp, &cache, in_tables < pp->n_nodes ? in_tables : pp->n_nodes) < 0) {
        free(rows);
        return -ENOMEM;
    }
    int bad = 0;
    for (size_t k = 0; !bad && k < pp->n_types; k++) {
        json_t *t = valuetype_json(pp, pp->types[k]);
        bad |= cd_textscan_jpush(types, t);
        if (bad)
            break;
        bad |= cd_textscan_jset(t, "total", json_integer(pp->total[k]));
        bad |= cd_textscan_jset(t, "total_abs", json_integer(pp->total_abs[k]));
        bad |= cd_textscan_jset(t, "saturated", json_boolean(pp->total_abs[k] == INT64_MAX));
        bad |= cd_textscan_jset(t, "top_flat", top_table(pp, &cache, rows, k, true));
        bad |= cd_textscan_jset(t, "top_cum", top_table(pp, &cache, rows, k, false));
    }
    rowcache_free(&cache);
    free(rows);
    return bad ? -ENOMEM : 0;
}

static json_t *counts_json(const struct cd_pprof *pp)
{
    json_t *c = json_object();
    if (c == NULL)
        return NULL;
    int bad = 0;
    bad |= cd_textscan_jset(c, "samples", json_integer((json_int_t)pp->n_samples));
    bad |= cd_textscan_jset(c, "locations", json_integer((json_int_t)pp->n_locs));
    bad |= cd_textscan_jset(c, "functions", json_integer((json_int_t)pp->n_funcs));
    bad |= cd_textscan_jset(c, "mappings", json_integer((json_int_t)pp->n_mappings));
    bad |= cd_textscan_jset(c, "strings", json_integer((json_int_t)pp->n_strings));
    bad |= cd_textscan_jset(c, "nodes", json_integer((json_int_t)pp->n_nodes));
    if (bad) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static json_t *main_binary_json(const struct cd_pprof *pp)
{
    if (pp->n_mappings == 0)
        return json_null();
    json_t *mb = json_object();
    if (mb == NULL)
        return NULL;
    if (cd_textscan_jset(mb, "file", span_json(str_span(pp, pp->main_file))) |
        cd_textscan_jset(mb, "build_id", span_json(str_span(pp, pp->main_build_id)))) {
        json_decref(mb);
        return NULL;
    }
    return mb;
}

static json_t *build_json(struct cd_pprof *pp, size_t in_len, bool gzipped)
{
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    int bad = 0;
    bad |= cd_textscan_jset(root, "encoding", json_string(gzipped ? "gzip" : "none"));
    bad |= cd_textscan_jset(root, "bytes", json_integer((json_int_t)in_len));
    bad |= cd_textscan_jset(root, "decompressed_bytes", json_integer((json_int_t)pp->len));
    json_t *types = json_array();
    bad |= cd_textscan_jset(root, "sample_types", types);
    if (!bad)
        bad |= sample_types_json(pp, types);
    struct pp_span dflt = str_span(pp, pp->default_type);
    bad |= cd_textscan_jset(root, "default_sample_type", dflt.len ? span_json(dflt) : json_null());
    bad |= cd_textscan_jset(root, "default_index", json_integer((json_int_t)default_index(pp)));
    bad |=
        cd_textscan_jset(root, "period_type",
                         pp->has_period_type ? valuetype_json(pp, pp->period_type) : json_null());
    bad |= cd_textscan_jset(root, "period", json_integer(pp->period));
    bad |= cd_textscan_jset(root, "time_ns", opt_int(pp->time_nanos));
    bad |= cd_textscan_jset(root, "duration_ns", opt_int(pp->duration_nanos));
    bad |= cd_textscan_jset(root, "counts", counts_json(pp));
    bad |= cd_textscan_jset(root, "main_binary", main_binary_json(pp));
    bad |= cd_textscan_jset(root, "label_keys", label_keys_json(pp));
    bad |= cd_textscan_jset(root, "drop_frames", span_json(str_span(pp, pp->drop_frames)));
    bad |= cd_textscan_jset(root, "keep_frames", span_json(str_span(pp, pp->keep_frames)));
    json_t *comments = json_array();
    bad |= cd_textscan_jset(root, "comments", comments);
    for (size_t i = 0; !bad && i < pp->n_comments; i++)
        bad |= cd_textscan_jpush(comments, span_json(str_span(pp, pp->comments[i])));
    bad |= cd_textscan_jset(root, "doc_url", span_json(str_span(pp, pp->doc_url)));
    bad |= cd_textscan_jset(root, "symbolized", json_boolean(pp->symbolized));
    bad |=
        cd_textscan_jset(root, "truncated_stacks", json_integer((json_int_t)pp->truncated_stacks));
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static void series_name(const struct cd_pprof *pp, size_t k, char *dst, size_t cap)
{
    struct pp_span t = str_span(pp, pp->types[k].type);
    size_t n = 0;
    for (size_t i = 0; i < t.len && n + 1 < cap && n < 64; i++) {
        char c = t.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        dst[n++] = ok ? c : '_';
    }
    dst[n] = '\0';
    if (n == 0)
        snprintf(dst, cap, "value%zu", k);
}

static int add_series(const struct cd_pprof *pp, struct cd_summary *out)
{
    for (size_t k = 0; k < pp->n_types; k++) {
        char name[CD_SERIES_NAME_MAX];
        series_name(pp, k, name, sizeof(name));
        bool dup = false;
        for (size_t j = 0; j < out->n_series; j++)
            dup |= strcmp(out->series[j].name, name) == 0;
        if (!dup && cd_summary_add_series(out, name, (double)pp->total[k]) < 0)
            return -ENOMEM;
    }
    if (pp->n_types == 1) {
        struct pp_span g = {"goroutine", 9}, c = {"count", 5};
        if (span_eq(str_span(pp, pp->types[0].type), g) &&
            span_eq(str_span(pp, pp->types[0].unit), c) &&
            cd_summary_add_series(out, "count", (double)pp->total[0]) < 0)
            return -ENOMEM;
    }
    return 0;
}

int cd_pprof_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                       struct cd_summary *out, struct cd_err *err)
{
    struct cd_parse_limits dflt;
    lim = cd_textscan_limits(lim, &dflt);
    struct cd_pprof pp;
    memset(&pp, 0, sizeof(pp));
    pp.lim = lim;
    pp.err = err;
    pp.main_file = pp.main_build_id = -1;
    cd_arena_init(&pp.perm, 1);
    cd_arena_init_shared(&pp.scratch, &pp.perm);
    uint8_t *unz = NULL;
    json_t *json = NULL;
    struct cd_summary sum;
    cd_summary_init(&sum);
    int rc = 0;

    if (len > lim->max_input) {
        rc = cd_err_set(err, -EFBIG, "pprof: input of %zu bytes exceeds the limit of %zu bytes",
                        len, lim->max_input);
        goto fail;
    }
    if (len == 0) {
        rc = cd_err_set(err, -EBADMSG, "pprof: empty input");
        goto fail;
    }
    bool gzipped = len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    size_t budget = lim->max_memory;
    if (gzipped) {
        size_t cap = lim->max_decompressed < budget ? lim->max_decompressed : budget;
        size_t ulen = 0;
        rc = cd_pprof_gunzip(data, len, cap, &unz, &ulen, err);
        if (rc < 0) {
            cd_err_prefix(err, "pprof");
            goto fail;
        }
        pp.buf = unz;
        pp.len = ulen;
        pp.owned = true;
        long page = sysconf(_SC_PAGESIZE);
        pp.page = page > 0 ? (size_t)page : 4096;
        budget -= ulen;
        if (ulen == 0) {
            rc = cd_err_set(err, -EBADMSG, "pprof: empty profile inside gzip");
            goto fail;
        }
    } else {
        pp.buf = data;
        pp.len = len;
    }
    if (pp.len > UINT32_MAX) {
        rc = cd_err_set(err, -EFBIG, "pprof: profiles over 4 GiB are not supported");
        goto fail;
    }
    /* A profile.proto opens with a Profile field tag; anything else gets a precise error. */
    const char *legacy = legacy_format(pp.buf, pp.len);
    if (legacy != NULL && !cd_pprof_sniff(pp.buf, pp.len)) {
        rc = cd_err_set(err, -EPROTONOSUPPORT, "pprof: %s", legacy);
        goto fail;
    }
    pp.perm.cap = budget ? budget : 1;
    if ((rc = walk_count(&pp)) < 0 || (rc = walk_strings(&pp)) < 0 || (rc = walk_small(&pp)) < 0 ||
        (rc = check_strings(&pp)) < 0)
        goto fail;
    release(&pp, 0, pp.len, KEEP_LOCATIONS | KEEP_SAMPLES);
    if ((rc = walk_locations(&pp)) < 0 || (rc = walk_samples(&pp)) < 0)
        goto fail;
    json = build_json(&pp, len, gzipped);
    if (json == NULL) {
        rc = cd_err_set(err, -ENOMEM, "pprof: out of memory building the summary");
        goto fail;
    }
    if (add_series(&pp, &sum) < 0) {
        rc = cd_err_set(err, -ENOMEM, "pprof: out of memory adding series");
        goto fail;
    }
    cd_textscan_publish(out, &sum, CD_FORMAT_PPROF, &json);
fail:
    cd_summary_free(&sum);
    json_decref(json);
    cd_arena_free(&pp.scratch);
    cd_arena_free(&pp.perm);
#ifdef PP_ASAN
    if (unz != NULL)
        ASAN_UNPOISON_MEMORY_REGION(unz, pp.len);
#endif
    free(unz);
    return rc;
}
