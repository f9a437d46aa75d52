/*
 * failmalloc: an LD_PRELOAD shim for allocation-failure tests (like curl's
 * torture tests). malloc, calloc, realloc, strdup and strndup are counted
 * (one count a call, every thread); the call numbered NASHRA_FAIL_AT returns
 * NULL with errno ENOMEM, once. NASHRA_FAIL_COUNT=FILE: at exit the number of
 * calls counted is written there, so a test knows how far to sweep.
 * NASHRA_FAIL_TRACE=1: the failed call's backtrace goes to stderr, and so
 * does the backtrace of a crash (SIGSEGV, SIGBUS, SIGABRT, SIGFPE), which
 * then goes on as it would have (the signal is raised again).
 *
 * The real functions come from dlsym(RTLD_NEXT): libc's, or ASan's when the
 * shim is preloaded before libasan.so (ASAN_OPTIONS=verify_asan_link_order=0).
 * dlsym may allocate before they are known: a small static arena serves it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);

static _Atomic unsigned long calls;
static unsigned long fail_at; /* 0: never */
static int trace;
static int ready, resolving;

/* The arena for dlsym's own allocations while the real ones are resolved. */
static _Alignas(max_align_t) char arena[8192];
static size_t arena_used;

static void *arena_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > sizeof arena - arena_used)
        return NULL;
    void *p = arena + arena_used;
    arena_used += n;
    return p;
}

static int in_arena(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

static void read_env(void)
{
    const char *at = getenv("NASHRA_FAIL_AT");
    fail_at = at ? strtoul(at, NULL, 10) : 0;
    trace = getenv("NASHRA_FAIL_TRACE") != NULL;
}

static void resolve(void)
{
    if (ready || resolving)
        return;
    resolving = 1;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    read_env();
    resolving = 0;
    ready = real_malloc && real_calloc && real_realloc && real_free;
}

/* 1 if this call is the one to fail. */
static int fail_now(void)
{
    unsigned long n = atomic_fetch_add(&calls, 1) + 1;
    if (!fail_at || n != fail_at)
        return 0;
    if (trace) {
        static const char msg[] = "failmalloc: failing this allocation:\n";
        void *frames[32];
        (void)!write(2, msg, sizeof msg - 1);
        int nf = backtrace(frames, 32); /* libgcc is loaded by now: see below */
        backtrace_symbols_fd(frames, nf, 2);
    }
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t n)
{
    resolve();
    if (!ready)
        return arena_alloc(n);
    return fail_now() ? NULL : real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    resolve();
    if (!ready)
        return arena_alloc(a * b); /* the arena is zeroed, and dlsym asks little */
    return fail_now() ? NULL : real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    resolve();
    if (!ready || in_arena(p))
        return NULL; /* nobody grows arena memory */
    return fail_now() ? NULL : real_realloc(p, n);
}

void free(void *p)
{
    if (!p || in_arena(p))
        return;
    resolve();
    if (ready)
        real_free(p);
}

char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void on_crash(int sig)
{
    static const char msg[] = "failmalloc: crashed:\n";
    void *frames[32];
    (void)!write(2, msg, sizeof msg - 1);
    int nf = backtrace(frames, 32);
    backtrace_symbols_fd(frames, nf, 2);
    raise(sig); /* SA_RESETHAND: the default action now */
}

__attribute__((constructor)) static void failmalloc_init(void)
{
    resolve();
    read_env();  /* again: under ASan the first malloc comes before the environment */
    if (trace) { /* backtrace() loads libgcc on its first call: not at the failure */
        void *f[2];
        unsigned long before = atomic_load(&calls);
        backtrace(f, 2); /* not counted: the counts must not depend on tracing */
        atomic_store(&calls, before);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_crash;
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE};
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
            sigaction(sigs[i], &sa, NULL);
    }
}

__attribute__((destructor)) static void failmalloc_report(void)
{
    const char *path = getenv("NASHRA_FAIL_COUNT");
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "%lu\n", (unsigned long)atomic_load(&calls));
    fclose(f);
}
