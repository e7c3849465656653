/* The streaming tar.gz writer: GNU tar and gzip read what it writes, byte for byte, whatever
 * the chunking, with long names, and its memory stays bounded by one chunk. */
#include "tarball.h"

#include "cdtest.h"
#include "str.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
    char name[400];
    uint8_t *data;
    size_t len;
};

static int sh_run(const char *cmd, char **out)
{
    char *const argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return cdt_run(argv, out, 30000);
}

static size_t drain(struct cd_tarball *tb, int fd, size_t *max_pending)
{
    size_t total = 0;
    uint8_t buf[777]; /* odd size: reads cut members anywhere */
    if (cd_tarball_pending(tb) > *max_pending)
        *max_pending = cd_tarball_pending(tb);
    size_t n;
    while ((n = cd_tarball_read(tb, buf, sizeof(buf))) > 0) {
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
        total += n;
    }
    return total;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (i / 300) % 2 ? (uint8_t)(seed >> 24) : (uint8_t)('A' + i % 7);
    }
}

static void check_archive(size_t chunk)
{
    char *dir = cdt_tmpdir("tarball");
    char *out = cdt_path(dir, "t.tar.gz");
    struct entry e[6];
    memset(e, 0, sizeof(e));
    size_t sizes[6] = {0, 1, 512, 4096 + 3, 300000, 12345};
    snprintf(e[0].name, sizeof(e[0].name), "bundle/empty.txt");
    snprintf(e[1].name, sizeof(e[1].name), "bundle/one.bin");
    snprintf(e[2].name, sizeof(e[2].name), "bundle/block.bin");
    /* 100 < name <= 255 with a '/' to split at: ustar prefix + name. */
    snprintf(e[3].name, sizeof(e[3].name), "bundle/%0120d/split.pb.gz", 7);
    snprintf(e[4].name, sizeof(e[4].name), "bundle/large.trace");
    /* No usable split: a pax path record. */
    snprintf(e[5].name, sizeof(e[5].name), "bundle/%0150d/%0150d/x.txt", 8, 9);
    for (int i = 0; i < 6; i++) {
        e[i].len = sizes[i];
        e[i].data = malloc(sizes[i] ? sizes[i] : 1);
        fill(e[i].data, sizes[i], (uint32_t)i + 1);
    }
    struct cd_tarball tb;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_tarball_init(&tb, 6, chunk, &err), 0);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    size_t max_pending = 0;
    assert_int_equal(cd_tarball_add_dir(&tb, "bundle", 1700000000, &err), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(cd_tarball_begin(&tb, e[i].name, e[i].len, 1700000000 + i, 0644, &err), 0);
        drain(&tb, fd, &max_pending);
        /* Written in uneven pieces, drained between them, as the bundle streamer does. */
        size_t off = 0;
        while (off < e[i].len) {
            /* At most a chunk per write, so at most one member waits between drains. */
            size_t piece = 1000 + (size_t)i * 37 < tb.chunk ? 1000 + (size_t)i * 37 : tb.chunk;
            size_t n = e[i].len - off < piece ? e[i].len - off : piece;
            assert_int_equal(cd_tarball_write(&tb, e[i].data + off, n, &err), 0);
            off += n;
            drain(&tb, fd, &max_pending);
        }
        assert_int_equal(cd_tarball_end(&tb, &err), 0);
        drain(&tb, fd, &max_pending);
    }
    assert_int_equal(cd_tarball_finish(&tb, &err), 0);
    drain(&tb, fd, &max_pending);
    close(fd);
    /* Memory: never more than one compressed chunk waiting. */
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(6);
    size_t bound = libdeflate_gzip_compress_bound(z, tb.chunk);
    libdeflate_free_compressor(z);
    assert_true(max_pending <= bound);
    cd_tarball_free(&tb);

    char cmd[4096];
    char *output = NULL;
    snprintf(cmd, sizeof(cmd), "gzip -t '%s' 2>&1", out);
    assert_int_equal(sh_run(cmd, &output), 0);
    free(output);
    snprintf(cmd, sizeof(cmd), "tar -tzf '%s'", out);
    assert_int_equal(sh_run(cmd, &output), 0);
    for (int i = 0; i < 6; i++) {
        if (strstr(output, e[i].name) == NULL)
            fail_msg("tar -t lacks %s:\n%s", e[i].name, output);
    }
    assert_null(strstr(output, "PaxHeader"));
    free(output);
    snprintf(cmd, sizeof(cmd), "cd '%s' && tar -xzf t.tar.gz 2>&1", dir);
    assert_int_equal(sh_run(cmd, &output), 0);
    assert_string_equal(output, "");
    free(output);
    for (int i = 0; i < 6; i++) {
        char *p = cdt_path(dir, e[i].name);
        uint8_t *got = NULL;
        size_t len = 0;
        assert_int_equal(cdt_read_file(p, &got, &len), 0);
        assert_int_equal(len, e[i].len);
        assert_memory_equal(got, e[i].data, len);
        free(got);
        free(p);
        free(e[i].data);
    }
    if (chunk != 0 && chunk <= 4096) {
        /* Many gzip members back to back: count the member headers gunzip walked through. */
        uint8_t *raw = NULL;
        size_t len = 0;
        assert_int_equal(cdt_read_file(out, &raw, &len), 0);
        size_t members = 0;
        for (size_t i = 0; i + 3 < len; i++)
            members += raw[i] == 0x1f && raw[i + 1] == 0x8b && raw[i + 2] == 8 && raw[i + 3] == 0;
        assert_true(members > 10);
        free(raw);
    }
    cdt_rmrf(dir);
    free(out);
    free(dir);
}

static void test_small_chunks(void **state)
{
    (void)state;
    check_archive(1024);
}

static void test_default_chunks(void **state)
{
    (void)state;
    check_archive(0);
}

static void test_misuse(void **state)
{
    (void)state;
    struct cd_tarball tb;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_tarball_init(&tb, 13, 0, &err), -EINVAL);
    assert_int_equal(cd_tarball_init(&tb, 1, 0, &err), 0);
    assert_int_equal(cd_tarball_write(&tb, "x", 1, NULL), -EINVAL);
    assert_int_equal(cd_tarball_begin(&tb, "a", 2, 0, 0644, NULL), 0);
    assert_int_equal(cd_tarball_begin(&tb, "b", 2, 0, 0644, NULL), -EINVAL);
    assert_int_equal(cd_tarball_write(&tb, "xyz", 3, NULL), -EINVAL);
    assert_int_equal(cd_tarball_write(&tb, "x", 1, NULL), 0);
    assert_int_equal(cd_tarball_end(&tb, NULL), -EINVAL);
    assert_int_equal(cd_tarball_finish(&tb, NULL), -EINVAL);
    assert_int_equal(cd_tarball_write(&tb, "y", 1, NULL), 0);
    assert_int_equal(cd_tarball_end(&tb, NULL), 0);
    char longname[CD_TARBALL_MAX_NAME + 10];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(cd_tarball_begin(&tb, longname, 1, 0, 0644, NULL), -EINVAL);
    assert_int_equal(cd_tarball_begin(&tb, "", 1, 0, 0644, NULL), -EINVAL);
    assert_int_equal(cd_tarball_begin(&tb, "big", CD_TARBALL_MAX_ENTRY + 1, 0, 0644, NULL), -EFBIG);
    assert_int_equal(cd_tarball_finish(&tb, NULL), 0);
    assert_int_equal(cd_tarball_begin(&tb, "late", 1, 0, 0644, NULL), -EINVAL);
    assert_true(cd_tarball_pending(&tb) > 0);
    cd_tarball_free(&tb);
    cd_tarball_free(&tb); /* twice: destructors accept what is left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_chunks),
        cmocka_unit_test(test_default_chunks),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
