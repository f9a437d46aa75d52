/*
 * test_fileio: capped reads that never block (FIFOs, folders), atomic writes
 * that keep unchanged files untouched, mkdir_p and path_join.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/fileio.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    umask(022);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_fileio.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/name, in a static buffer. */
static const char *tpath(const char *name)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static void put(const char *name, const char *s)
{
    FILE *f = fopen(tpath(name), "w");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, strlen(s), f), strlen(s));
    assert_int_equal(fclose(f), 0);
}

static void test_read_ok(void **state)
{
    (void)state;
    struct buf b;
    const char *why = NULL;
    buf_init(&b, 0);
    put("a.md", "---\ntitle: سلام\n---\nbody\n");
    assert_int_equal(file_read(tpath("a.md"), 1024, &b, &why), 0);
    assert_string_equal(b.data, "---\ntitle: سلام\n---\nbody\n");
    /* appends to what the buffer holds */
    assert_int_equal(file_read(tpath("a.md"), 1024, &b, &why), 0);
    assert_int_equal(b.len, 2 * strlen("---\ntitle: سلام\n---\nbody\n"));
    buf_reset(&b);
    put("empty.md", "");
    assert_int_equal(file_read(tpath("empty.md"), 10, &b, &why), 0);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    buf_free(&b);
}

static void test_read_large(void **state)
{
    (void)state;
    size_t n = 300000; /* several read() calls and chunks */
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    put("big.md", big);
    struct buf b;
    const char *why = NULL;
    buf_init(&b, 0);
    assert_int_equal(file_read(tpath("big.md"), n, &b, &why), 0); /* exactly at max */
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, big, n);
    buf_free(&b);
    free(big);
}

static void test_read_cap(void **state)
{
    (void)state;
    struct buf b;
    const char *why = NULL;
    buf_init(&b, 0);
    put("c.md", "0123456789");
    assert_int_equal(buf_puts(&b, "keep"), 0);
    assert_int_equal(file_read(tpath("c.md"), 9, &b, &why), -1);
    assert_string_equal(why, "larger than 9 bytes");
    assert_string_equal(b.data, "keep"); /* unchanged on error */
    assert_int_equal(file_read(tpath("c.md"), 10, &b, &why), 0);
    assert_string_equal(b.data, "keep0123456789");
    buf_free(&b);
    /* the buffer's own cap counts too */
    buf_init(&b, 5);
    why = NULL;
    assert_int_equal(file_read(tpath("c.md"), 100, &b, &why), -1);
    assert_non_null(why);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* A file longer than fstat says (a /proc file reports size 0, like a file
 * growing while read): the cap is enforced while reading, not only before. */
static void test_read_cap_while_reading(void **state)
{
    (void)state;
    struct buf b;
    const char *why = NULL;
    if (access("/proc/self/status", R_OK) != 0)
        skip();
    buf_init(&b, 0);
    assert_int_equal(file_read("/proc/self/status", 1 << 20, &b, &why), 0);
    assert_true(b.len > 100); /* fstat said 0 bytes */
    assert_non_null(strstr(b.data, "Name:"));
    buf_reset(&b);
    assert_int_equal(file_read("/proc/self/status", 50, &b, &why), -1);
    assert_string_equal(why, "larger than 50 bytes");
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_read_fifo_does_not_block(void **state)
{
    (void)state;
    struct buf b;
    const char *why = NULL;
    assert_int_equal(mkfifo(tpath("y.md"), 0644), 0);
    buf_init(&b, 0);
    alarm(5); /* a blocking open would hang: let SIGALRM fail the test */
    time_t t0 = time(NULL);
    assert_int_equal(file_read(tpath("y.md"), 1024, &b, &why), -1);
    alarm(0);
    assert_true(time(NULL) - t0 <= 1);
    assert_string_equal(why, "not a regular file");
    buf_free(&b);
}

static void test_read_errors(void **state)
{
    (void)state;
    struct buf b;
    const char *why = NULL;
    buf_init(&b, 0);
    assert_int_equal(mkdir(tpath("x.md"), 0755), 0);
    assert_int_equal(file_read(tpath("x.md"), 1024, &b, &why), -1);
    assert_string_equal(why, "not a regular file");
    assert_int_equal(file_read(tpath("missing.md"), 1024, &b, &why), -1);
    assert_string_equal(why, strerror(ENOENT));
    assert_int_equal(file_read("/dev/null", 1024, &b, &why), -1);
    assert_string_equal(why, "not a regular file");
    assert_int_equal(symlink("loop.md", tpath("loop.md")), 0);
    assert_int_equal(file_read(tpath("loop.md"), 1024, &b, &why), -1);
    assert_string_equal(why, strerror(ELOOP));
    assert_int_equal(file_read(tpath("missing.md"), 1024, &b, NULL), -1); /* why optional */
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* Reads name into a static buffer. */
static const char *slurp(const char *path)
{
    static char data[256];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(data, 1, sizeof data - 1, f);
    fclose(f);
    data[n] = '\0';
    return data;
}

static void set_old_mtime(const char *path)
{
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static time_t mtime_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mtime;
}

/* No ".NAME.tmp.PID" file may be left in dir. */
static void assert_no_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            fail_msg("temporary file left: %s/%s", dir, e->d_name);
    closedir(d);
}

static void test_write_if_changed(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", tpath("feed.xml"));
    assert_int_equal(file_write_if_changed(path, "<rss/>", 6), 1);
    assert_string_equal(slurp(path), "<rss/>");
    set_old_mtime(path);
    /* same bytes: nothing written, mtime kept */
    assert_int_equal(file_write_if_changed(path, "<rss/>", 6), 0);
    assert_int_equal(mtime_of(path), 1000000000);
    /* same size, other bytes; then another size */
    assert_int_equal(file_write_if_changed(path, "<rsS/>", 6), 1);
    assert_string_equal(slurp(path), "<rsS/>");
    assert_true(mtime_of(path) > 1000000000);
    set_old_mtime(path);
    assert_int_equal(file_write_if_changed(path, "<rss version=\"2.0\"/>", 20), 1);
    assert_string_equal(slurp(path), "<rss version=\"2.0\"/>");
    assert_true(mtime_of(path) > 1000000000);
    assert_int_equal(file_write_if_changed(path, "", 0), 1);
    assert_string_equal(slurp(path), "");
    assert_int_equal(file_write_if_changed(path, "", 0), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644 & ~0022);
    assert_no_tmp(tmpdir);
}

static void test_write_creates_parents(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", tpath("out/posts/سلام/index.html"));
    assert_int_equal(file_write_if_changed(path, "hi", 2), 1);
    assert_string_equal(slurp(path), "hi");
    struct stat st;
    assert_int_equal(stat(tpath("out/posts"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_no_tmp(tpath("out/posts/سلام"));
}

static void test_write_errors(void **state)
{
    (void)state;
    char path[256];
    /* a parent that is a file */
    put("plain", "x");
    snprintf(path, sizeof path, "%s", tpath("plain/a.html"));
    errno = 0;
    assert_int_equal(file_write_if_changed(path, "hi", 2), -1);
    assert_int_equal(errno, ENOTDIR);
    /* the target is a folder: the rename fails and the temp file goes */
    assert_int_equal(mkdir(tpath("dir.html"), 0755), 0);
    snprintf(path, sizeof path, "%s", tpath("dir.html"));
    assert_int_equal(file_write_if_changed(path, "hi", 2), -1);
    assert_int_equal(errno, EISDIR);
    assert_no_tmp(tmpdir);
    /* no file name */
    snprintf(path, sizeof path, "%s/", tmpdir);
    assert_int_equal(file_write_if_changed(path, "hi", 2), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_mkdir_p(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(mkdir_p(tpath("m/n//o/")), 0);
    assert_int_equal(stat(tpath("m/n/o"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0755 & ~0022);
    assert_int_equal(mkdir_p(tpath("m/n/o")), 0); /* exists */
    put("m/f", "x");
    assert_int_equal(mkdir_p(tpath("m/f")), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(mkdir_p(tpath("m/f/g")), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(mkdir_p(""), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(mkdir_p("/"), 0);
}

static void check_join(const char *a, const char *b, const char *want)
{
    char *r = path_join(a, b);
    assert_non_null(r);
    assert_string_equal(r, want);
    free(r);
}

static void test_path_join(void **state)
{
    (void)state;
    check_join("public", "feed.xml", "public/feed.xml");
    check_join("public/", "feed.xml", "public/feed.xml");
    check_join("public//", "/feed.xml", "public/feed.xml");
    check_join("/", "etc", "/etc");
    check_join("", "feed.xml", "feed.xml");
    check_join("public", "", "public");
    check_join("a/b", "c/d", "a/b/c/d");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_ok),
        cmocka_unit_test(test_read_large),
        cmocka_unit_test(test_read_cap),
        cmocka_unit_test(test_read_cap_while_reading),
        cmocka_unit_test(test_read_fifo_does_not_block),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_write_if_changed),
        cmocka_unit_test(test_write_creates_parents),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_path_join),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
