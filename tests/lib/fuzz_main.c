/*
 * fuzz_main — the driver for fuzz targets when libFuzzer is not linked (gcc builds): replays every
 * seed file given on the command line (files or directories), then runs a fixed number of cheap
 * deterministic mutations of each seed (bit flips, truncations, splices), so the normal build also
 * exercises each parser on damaged input. The clang build links libFuzzer instead.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned long mutations_per_seed = 200;
static size_t n_inputs = 0;

static void run_one(const uint8_t *data, size_t len)
{
    /* Copy into an exact-size heap block so out-of-bounds reads hit the sanitizer's redzone. */
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return;
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    n_inputs++;
}

static void mutate_and_run(const uint8_t *seed, size_t len)
{
    run_one(seed, len);
    uint8_t *m = malloc(len + 64);
    if (m == NULL)
        return;
    for (unsigned long i = 0; i < mutations_per_seed; i++) {
        memcpy(m, seed, len);
        size_t mlen = len;
        switch (rng() % 4) {
        case 0: /* flip a few bits */
            for (int k = 0; k < 4 && mlen > 0; k++)
                m[rng() % mlen] ^= (uint8_t)(1u << (rng() % 8));
            break;
        case 1: /* truncate */
            mlen = mlen ? rng() % mlen : 0;
            break;
        case 2: /* overwrite a byte with an interesting value */
            if (mlen > 0) {
                static const uint8_t vals[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x20};
                m[rng() % mlen] = vals[rng() % sizeof(vals)];
            }
            break;
        default: /* insert random bytes */
            if (mlen > 0) {
                size_t at = rng() % mlen;
                size_t n = 1 + rng() % 32;
                memmove(m + at + n, m + at, mlen - at);
                for (size_t k = 0; k < n; k++)
                    m[at + k] = (uint8_t)rng();
                mlen += n;
            }
            break;
        }
        run_one(m, mlen);
    }
    free(m);
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d == NULL)
            return;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char sub[4096];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            run_path(sub);
        }
        closedir(d);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    size_t cap = (size_t)st.st_size + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (buf != NULL)
        len = fread(buf, 1, cap, f);
    fclose(f);
    if (buf != NULL)
        mutate_and_run(buf, len);
    free(buf);
}

int main(int argc, char **argv)
{
    const char *m = getenv("CD_FUZZ_MUTATIONS");
    if (m != NULL)
        mutations_per_seed = strtoul(m, NULL, 10);
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue; /* libFuzzer flags mean nothing here */
        run_path(argv[i]);
    }
    printf("fuzz replay: %zu inputs ran\n", n_inputs);
    return 0;
}
