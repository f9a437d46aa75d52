/*
 * fuzz: what every libFuzzer target of tests/fuzz shares: the entry points
 * (declared here for -Wmissing-prototypes) and a NUL-terminated copy of the
 * input for the parsers that take C strings.
 */
#ifndef NASHRA_FUZZ_H
#define NASHRA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* data[0, size) as a malloc'd C string (cut at the first NUL byte, as a C
 * caller would see it); abort() when out of memory. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
