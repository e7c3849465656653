/*
 * collectord — entry point. Parses the command line and hands over to the daemon.
 * The daemon proper (config, scrapers, storage, query socket) lands with the scrape engine.
 */
#include <collectord/version.h>

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: collectord [--version] [--help]\n"
               "Keeps the profiling history of a fleet of Go programs.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("collectord %s\n", COLLECTORD_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "collectord: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    usage(stderr);
    return 2;
}
