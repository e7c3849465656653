/*
 * collectorctl — entry point of the command-line client of collectord's query socket.
 */
#include <collectord/version.h>

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: collectorctl [--version] [--help]\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("collectorctl %s\n", COLLECTORD_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    usage(stderr);
    return 2;
}
