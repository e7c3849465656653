/* Fuzz target: the YAML config loader (every key handler, merges, aliases, error paths) and,
 * when a config loads, its dump; plus the file_sd parsers on the same bytes. */
#include "config.h"
#include "sd_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cd_config *c = NULL;
    struct cd_config_diag d = {0};
    struct cd_err err;
    cd_err_init(&err);
    if (cd_config_parse("fuzz.yaml", "/nonexistent-fuzz-dir", data, size, &c, &d, &err) == 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f != NULL) {
            cd_config_dump(c, f);
            fclose(f);
        }
        free(buf);
        cd_config_free(c);
    }
    cd_config_diag_free(&d);

    struct cd_groups gs = {0};
    cd_err_init(&err);
    cd_sd_file_parse("fuzz.json", data, size, 1000, &gs, &err);
    cd_groups_free(&gs);
    cd_err_init(&err);
    cd_sd_file_parse("fuzz.yaml", data, size, 1000, &gs, &err);
    cd_groups_free(&gs);
    return 0;
}
