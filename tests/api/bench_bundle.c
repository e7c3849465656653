/*
 * Benchmark: streaming an incident bundle (tar.gz built while sent, one gzip member per chunk)
 * against the peer an operator would otherwise use, GNU tar -czf on the same files, measured in
 * the same run. Prints MiB/s for both, the ratio, and this process's peak RSS (the bundle's
 * memory stays bounded by a chunk, not by the incident's size).
 */
#include "fixture.h"

#include "cdtest.h"
#include "str.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define FILES     16
#define FILE_SIZE (4u << 20)
#define RUNS      3

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    *(size_t *)ud += size * n;
    return size * n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void bench(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    char *dir = cdt_path(f.dir, "files");
    mkdir(dir, 0755);
    uint8_t *buf = malloc(FILE_SIZE);
    uint32_t x = 99;
    for (int i = 0; i < FILES; i++) {
        /* Like real incidents: gzipped profiles (incompressible) and text dumps. */
        for (size_t k = 0; k < FILE_SIZE; k++) {
            x = x * 1103515245u + 12345u;
            buf[k] = i % 2 ? (uint8_t)(x >> 24) : (uint8_t)("goroutine 1 [running]:\n"[k % 23]);
        }
        int64_t id = tb_add(&f.tb, "bench", "10.0.0.9:6060", i % 2 ? "heap" : "goroutine_dump",
                            "ok", f.tb.now_ms - i, buf, FILE_SIZE, NULL);
        f.tb.snaps[f.tb.n - 1].pinned = true;
        cd_str_copy(f.tb.snaps[f.tb.n - 1].incident, "bench", sizeof(f.tb.snaps[0].incident));
        char name[64];
        snprintf(name, sizeof(name), "%lld.bin", (long long)id);
        char *p = cdt_path(dir, name);
        assert_int_equal(cdt_write_file(p, buf, FILE_SIZE), 0);
        free(p);
    }
    free(buf);
    double mib = (double)FILES * FILE_SIZE / (1 << 20);
    int64_t ours[RUNS], peer[RUNS];
    size_t out_bytes = 0;
    for (int r = 0; r < RUNS; r++) {
        CURL *h = curl_easy_init();
        size_t got = 0;
        curl_easy_setopt(h, CURLOPT_URL, "http://localhost/api/v1/incidents/bench/bundle");
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, f.sock);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
        int64_t t0 = cdt_now_ms();
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        ours[r] = cdt_now_ms() - t0;
        curl_easy_cleanup(h);
        out_bytes = got;
        char cmd[1024];
        /* Not -f /dev/null: GNU tar then skips reading the files. */
        snprintf(cmd, sizeof(cmd), "tar -czf - -C '%s' . | cat > /dev/null", dir);
        t0 = cdt_now_ms();
        assert_int_equal(ht_sh(cmd, NULL, 600000), 0);
        peer[r] = cdt_now_ms() - t0;
    }
    qsort(ours, RUNS, sizeof(ours[0]), cmp_i64);
    qsort(peer, RUNS, sizeof(peer[0]), cmp_i64);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bundle: %.0f MiB of snapshots -> %.1f MiB tar.gz\n", mib,
           (double)out_bytes / (1 << 20));
    printf("collectord bundle stream: median %lld ms (%.1f MiB/s)\n", (long long)ours[RUNS / 2],
           mib * 1000.0 / (double)(ours[RUNS / 2] ? ours[RUNS / 2] : 1));
    printf("peer tar -czf (GNU tar + gzip -6): median %lld ms (%.1f MiB/s)\n",
           (long long)peer[RUNS / 2], mib * 1000.0 / (double)(peer[RUNS / 2] ? peer[RUNS / 2] : 1));
    printf("ratio (peer time / ours): %.2fx\n",
           (double)peer[RUNS / 2] / (double)(ours[RUNS / 2] ? ours[RUNS / 2] : 1));
    printf("peak RSS of this process (the test backend holds %.0f MiB of data): %.0f MiB\n", mib,
           (double)ru.ru_maxrss / 1024);
    free(dir);
    fx_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bench)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
