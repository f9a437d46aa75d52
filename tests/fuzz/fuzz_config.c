/*
 * fuzz_config: nashra.yaml (SPEC §3) through config_load(): YAML, every
 * key's type and range, ${NAME} expansion, paths, lists, schedules, sizes.
 * config_load() reads a file, so each input is written to nashra.yaml in a
 * private temporary folder that also holds a password_file secret ("secret")
 * and the environment has NASHRA_FUZZ set for ${NASHRA_FUZZ}.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "../../config/config.h"
#include "fuzz.h"

static char dir[] = "/tmp/nashra-fuzz-config.XXXXXX";
static char path[sizeof dir + 16];

static void write_file(const char *p, const uint8_t *data, size_t size)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0)
            abort();
        data += n, size -= (size_t)n;
    }
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char secret[sizeof dir + 16];
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/nashra.yaml", dir);
    snprintf(secret, sizeof secret, "%s/secret", dir);
    write_file(secret, (const uint8_t *)"hunter2\n", 8);
    setenv("NASHRA_FUZZ", "https://env.example.org", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d = {0};
    char *err_file = NULL;
    write_file(path, data, size);
    struct config *cfg = config_load(path, &d, &err_file);
    if (cfg) {
        /* what the rest of nashra relies on */
        if (!cfg->site.title || !cfg->site.url || !cfg->site.host || !cfg->content.dir)
            abort();
        config_free(cfg);
    } else if (!d.msg[0] || !err_file) {
        abort(); /* a refused file always says why, and where */
    }
    free(err_file);
    return 0;
}
