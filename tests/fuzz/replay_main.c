/*
 * replay_main: runs a fuzz target without libFuzzer, once on each file named
 * on the command line (the seeds and the regression inputs of tests/fuzz),
 * so that `make test` keeps the targets compiling and replays every crash
 * ever found, under plain cc and under SANITIZE=1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* A target may leave LLVMFuzzerInitialize out. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        FILE *fp = fopen(argv[i], "rb");
        if (!fp) {
            perror(argv[i]);
            return 1;
        }
        size_t cap = 1 << 16, len = 0, n;
        uint8_t *data = malloc(cap);
        while (data && (n = fread(data + len, 1, cap - len, fp)) > 0) {
            len += n;
            if (len == cap) {
                uint8_t *more = realloc(data, cap *= 2);
                if (!more)
                    free(data);
                data = more;
            }
        }
        int bad = ferror(fp) || !data;
        fclose(fp);
        if (bad) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            free(data);
            return 1;
        }
        /* exactly len bytes, as libFuzzer gives them: ASan sees a read past the end */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
            free(data);
            return 1;
        }
        memcpy(exact, data, len);
        free(data);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    printf("%s: %d inputs replayed\n", argv[0], argc - 1);
    return 0;
}
