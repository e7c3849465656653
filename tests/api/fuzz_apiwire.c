/*
 * Fuzz target for everything the query API parses from outside: query strings (and the
 * snapshot/series/target queries built on them), capture and pin bodies, cursors, selector
 * words, response normalising, Prometheus rendering of backend JSON, URL userinfo stripping
 * and download file names. The first byte picks the parser; the rest is its input.
 */
#include "apiwire.h"
#include "buf.h"
#include "promtext.h"

#include <collectord/client.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_query(const char *s, size_t n)
{
    struct cd_apiwire_params p;
    cd_apiwire_params_init(&p);
    struct cd_err err;
    cd_err_init(&err);
    if (cd_apiwire_params_parse(s, n, &p, &err) == 0) {
        struct cd_apiwire_snapshots q;
        struct cd_apiwire_series sq;
        struct cd_apiwire_targets tq;
        cd_apiwire_snapshots_parse(&p, 1763762675000, &q, NULL);
        cd_apiwire_series_parse(&p, 1763762675000, &sq, NULL);
        cd_apiwire_targets_parse(&p, &tq, NULL);
        static const char *const none[] = {NULL};
        cd_apiwire_params_check(&p, none, NULL);
    }
    cd_apiwire_params_free(&p);
}

static void fuzz_selector(char *s)
{
    char *argv[64];
    int argc = 0;
    char *save = NULL;
    for (char *w = strtok_r(s, " \n", &save); w != NULL && argc < 64;
         w = strtok_r(NULL, " \n", &save))
        argv[argc++] = w;
    json_t *sel = NULL;
    if (cd_client_selector_parse(argc, argv, &sel, NULL) == 0) {
        /* What the client builds, the server must take. */
        struct cd_apiwire_selector parsed;
        if (cd_apiwire_selector_from_json(sel, &parsed, NULL) == 0) {
            char *d = cd_apiwire_selector_describe(&parsed);
            free(d);
            cd_apiwire_selector_free(&parsed);
        }
        json_decref(sel);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    uint8_t which = data[0] % 9;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char *s = malloc(n + 1);
    if (s == NULL)
        return 0;
    memcpy(s, in, n);
    s[n] = '\0';
    switch (which) {
    case 0:
        fuzz_query(in, n);
        break;
    case 1: {
        struct cd_apiwire_capture c;
        if (cd_apiwire_capture_parse(in, n, &c, NULL) == 0)
            cd_apiwire_capture_free(&c);
        break;
    }
    case 2: {
        char *inc = NULL;
        if (cd_apiwire_pin_parse(in, n, &inc, NULL) == 0)
            free(inc);
        break;
    }
    case 3: {
        int64_t t, id;
        if (cd_apiwire_cursor_decode(s, &t, &id) == 0) {
            char back[CD_APIWIRE_CURSOR_MAX + 1];
            if (cd_apiwire_cursor_encode(t, id, back, sizeof(back)) == 0) {
                int64_t t2, id2;
                if (cd_apiwire_cursor_decode(back, &t2, &id2) != 0 || t2 != t || id2 != id)
                    abort();
            }
        }
        int64_t x;
        cd_apiwire_parse_id(s, &x);
        cd_apiwire_incident_name_valid(s);
        break;
    }
    case 4:
        fuzz_selector(s);
        break;
    case 5: {
        json_t *doc = json_loadb(in, n, 0, NULL);
        if (doc != NULL) {
            cd_apiwire_normalize(doc);
            json_decref(doc);
        }
        break;
    }
    case 6: {
        json_t *doc = json_loadb(in, n, 0, NULL);
        if (doc != NULL) {
            struct cd_buf b;
            cd_buf_init(&b, 1u << 20);
            cd_promtext_render(doc, &b, NULL);
            cd_buf_free(&b);
            json_decref(doc);
        }
        break;
    }
    case 7: {
        char *clean = cd_apiwire_strip_userinfo(s);
        if (clean != NULL && strlen(clean) > strlen(s))
            abort();
        free(clean);
        char safe[64];
        cd_apiwire_safe_name(safe, sizeof(safe), s);
        break;
    }
    default: {
        /* A snapshot's metadata up to a NUL, then the first raw bytes. */
        size_t jl = strnlen(in, n);
        json_t *meta = json_loadb(in, jl, 0, NULL);
        if (meta != NULL) {
            const uint8_t *head = jl < n ? (const uint8_t *)in + jl + 1 : NULL;
            size_t hl = jl < n ? n - jl - 1 : 0;
            char *name = cd_apiwire_snapshot_filename(meta, head, hl, (hl & 1) != 0);
            if (name != NULL && (strchr(name, '/') != NULL || name[0] == '.'))
                abort();
            free(name);
            json_decref(meta);
        }
        break;
    }
    }
    free(s);
    return 0;
}
