/*
 * collectord — entry point. Parses the command line and hands over to the daemon.
 * The daemon proper (config, scrapers, storage, query socket) lands with the scrape engine; the
 * config checks (--check-config, --dump-config) work already.
 */
#include "config.h"
#include "discovery.h"

#include <collectord/version.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: collectord [-c FILE] [--check-config | --dump-config] [--version] [--help]\n"
               "Keeps the profiling history of a fleet of Go programs.\n"
               "  -c, --config FILE  configuration file (default " CD_CONFIG_DEFAULT_PATH ")\n"
               "  --check-config     validate the configuration, print the effective targets,\n"
               "                     exit 0 when valid, 1 when not (every error is listed)\n"
               "  --dump-config      print the effective configuration, defaults included\n");
}

int main(int argc, char **argv)
{
    const char *config = CD_CONFIG_DEFAULT_PATH;
    bool check = false, dump = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("collectord %s\n", COLLECTORD_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "collectord: %s needs a file name\n", argv[i]);
                return 2;
            }
            config = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
            continue;
        }
        if (strcmp(argv[i], "--check-config") == 0) {
            check = true;
            continue;
        }
        if (strcmp(argv[i], "--dump-config") == 0) {
            dump = true;
            continue;
        }
        fprintf(stderr, "collectord: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (check || dump)
        return cd_discovery_check_config(config, dump, stdout, stderr);
    usage(stderr);
    return 2;
}
