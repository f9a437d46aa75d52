/*
 * test_timefmt: parsing the date forms of posts (local and RFC 3339), time
 * zones, impossible dates, and locale-independent RFC 822/3339/human output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/timefmt.h"

/* Parses s, expecting success and the value want. */
static void check_ok(const char *s, int64_t want)
{
    int64_t t = -42;
    const char *msg = NULL;
    int rc = timefmt_parse(s, &t, &msg);
    if (rc != 0)
        fail_msg("\"%s\": %s", s, msg ? msg : "(no message)");
    assert_int_equal(t, want);
}

/* Parses s, expecting an error whose message contains want (if not NULL). */
static void check_err(const char *s, const char *want)
{
    int64_t t = -42;
    const char *msg = NULL;
    if (timefmt_parse(s, &t, &msg) == 0)
        fail_msg("\"%s\" parsed as %lld", s ? s : "(null)", (long long)t);
    assert_non_null(msg);
    if (want && !strstr(msg, want))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", s, msg, want);
}

/* Must run first: before timefmt_set_zone, local dates are UTC whatever TZ
 * says. */
static void test_default_zone_is_utc(void **state)
{
    (void)state;
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    check_ok("2024-04-13", 1712966400);
    check_ok("2024-04-13 07:00", 1712991600);
}

static void test_set_zone(void **state)
{
    (void)state;
    assert_int_equal(timefmt_set_zone("Asia/Riyadh"), 0);
    assert_int_equal(timefmt_set_zone("Nowhere/Atlantis"), -1);
    assert_int_equal(timefmt_set_zone("../../../etc/passwd"), -1);
    assert_int_equal(timefmt_set_zone("Asia/../Asia/Riyadh"), -1);
    assert_int_equal(timefmt_set_zone("/usr/share/zoneinfo/UTC"), -1);
    assert_int_equal(timefmt_set_zone("Asia"), -1); /* a folder */
    assert_int_equal(timefmt_set_zone("Asia/Riyadh;x"), -1);
    /* a failed call keeps the zone in force */
    check_ok("2024-04-13 10:00", 1712991600);
    assert_int_equal(timefmt_set_zone(""), 0);
    check_ok("2024-04-13 10:00", 1713002400);
    assert_int_equal(timefmt_set_zone(NULL), 0);
    assert_int_equal(timefmt_set_zone("UTC"), 0);
    check_ok("2024-04-13", 1712966400);
}

static void test_local_forms(void **state)
{
    (void)state;
    assert_int_equal(timefmt_set_zone("Asia/Riyadh"), 0);
    check_ok("2024-04-13 10:00", 1712991600); /* UTC+3 */
    check_ok("2024-04-13 10:00:30", 1712991630);
    check_ok("2024-04-13", 1712955600); /* midnight in Riyadh */
    check_ok("2024-04-13 00:00", 1712955600);
    check_ok("2024-04-13 23:59:59", 1712955600 + 86399);
    /* a zone with summer time */
    assert_int_equal(timefmt_set_zone("Europe/Paris"), 0);
    check_ok("2024-07-01 12:00", 1719828000);
    check_ok("2024-01-01 12:00", 1704106800);
    assert_int_equal(timefmt_set_zone("UTC"), 0);
}

static void test_rfc3339_forms(void **state)
{
    (void)state;
    assert_int_equal(timefmt_set_zone("Asia/Riyadh"), 0); /* must not matter */
    check_ok("2024-05-02T08:30:00Z", 1714638600);
    check_ok("2024-05-02t08:30:00z", 1714638600);
    check_ok("2024-05-02 08:30:00Z", 1714638600);
    check_ok("2024-05-02T08:30:00.123456Z", 1714638600);
    check_ok("2024-05-02T08:30:00.9+00:00", 1714638600);
    check_ok("2024-05-02T08:30:00+03:00", 1714627800);
    check_ok("2024-05-02 08:30:00+03:00", 1714627800);
    check_ok("2024-05-02T08:30:00-05:30", 1714658400);
    check_ok("2024-05-02T08:30:00-00:00", 1714638600);
    check_ok("2016-12-31T23:59:60Z", 1483228800); /* leap second */
    check_ok("1970-01-01T00:00:00Z", 0);
    check_ok("1969-12-31T23:59:59Z", -1);
    check_ok("2038-01-19T03:14:08Z", 2147483648LL);
    assert_int_equal(timefmt_set_zone("UTC"), 0);
}

static void test_leap_years(void **state)
{
    (void)state;
    check_ok("2024-02-29", 1709164800);
    check_ok("2024-02-29T23:59:59Z", 1709251199);
    check_ok("2000-02-29", 951782400);
    check_err("2023-02-29", "no such date");
    check_err("1900-02-29", "no such date");
    check_err("2024-02-30", "no such date");
    check_err("2024-04-31", "no such date");
    check_err("2024-13-01", "no such date");
    check_err("2024-00-10", "no such date");
    check_err("2024-01-00", "no such date");
    check_err("2024-02-30T10:00:00Z", "no such date");
}

static void test_parse_errors(void **state)
{
    (void)state;
    check_err("yesterday", "not a date");
    check_err("", "not a date");
    check_err(NULL, NULL);
    check_err("2024-4-13", "not a date");
    check_err("13/04/2024", "not a date");
    check_err("2024-04-13x", "not a date");
    check_err("2024-04-13 ", "not a date");
    check_err("2024-04-13 10:00 ", "not a date");
    check_err("2024-04-13 10", "not a date");
    check_err("2024-04-13 1:00", "not a date");
    check_err("2024-04-13 24:00", "no such time");
    check_err("2024-04-13 10:60", "no such time");
    check_err("2024-04-13 10:00:61", "no such time");
    check_err("2024-04-13T10:00:00", "needs Z");   /* no zone */
    check_err("2024-04-13 10:00:00.5", "needs Z"); /* fraction, no zone */
    check_err("2024-04-13T10:00Z", "needs seconds");
    check_err("2024-04-13T10:00:00.Z", "not a date"); /* empty fraction */
    check_err("2024-04-13T10:00:00+3:00", "offset");
    check_err("2024-04-13T10:00:00+0300", "offset");
    check_err("2024-04-13T10:00:00+24:00", "offset");
    check_err("2024-04-13T10:00:00+03:60", "offset");
    check_err("2024-04-13T10:00:00Zjunk", "not a date");
    /* past what RFC 3339 can write once in UTC (found by fuzz_timefmt) */
    check_err("9999-12-31T23:59:60Z", "out of range");
    check_err("9999-12-31T22:00:00-03:00", "out of range");
    check_err("0001-01-01T00:30:00+01:00", "out of range");
    check_ok("9999-12-31T23:59:59Z", 253402300799LL);
    check_ok("0001-01-01T00:00:00Z", -62135596800LL);
    /* msg may be NULL */
    int64_t t;
    assert_int_equal(timefmt_parse("yesterday", &t, NULL), -1);
}

static void test_rfc822(void **state)
{
    (void)state;
    char out[40];
    assert_string_equal(timefmt_rfc822(1712991600, out, sizeof out),
                        "Sat, 13 Apr 2024 07:00:00 +0000");
    assert_string_equal(timefmt_rfc822(0, out, sizeof out), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_string_equal(timefmt_rfc822(1709251199, out, sizeof out),
                        "Thu, 29 Feb 2024 23:59:59 +0000");
    assert_string_equal(timefmt_rfc822(946684799, out, sizeof out),
                        "Fri, 31 Dec 1999 23:59:59 +0000");
    assert_string_equal(timefmt_rfc822(1714638600, out, sizeof out),
                        "Thu, 02 May 2024 08:30:00 +0000");
    assert_string_equal(timefmt_rfc822(1483228800, out, sizeof out),
                        "Sun, 01 Jan 2017 00:00:00 +0000");
    assert_string_equal(timefmt_rfc822(1719828000, out, sizeof out),
                        "Mon, 01 Jul 2024 10:00:00 +0000");
    /* a short buffer is truncated, never overrun */
    char small[8];
    assert_string_equal(timefmt_rfc822(0, small, sizeof small), "Thu, 01");
}

static void test_rfc3339_out(void **state)
{
    (void)state;
    char out[40];
    assert_string_equal(timefmt_rfc3339(1712991600, out, sizeof out), "2024-04-13T07:00:00Z");
    assert_string_equal(timefmt_rfc3339(0, out, sizeof out), "1970-01-01T00:00:00Z");
    assert_string_equal(timefmt_rfc3339(1709251199, out, sizeof out), "2024-02-29T23:59:59Z");
    /* round trip */
    int64_t t;
    assert_int_equal(timefmt_parse(timefmt_rfc3339(1714627800, out, sizeof out), &t, NULL), 0);
    assert_int_equal(t, 1714627800);
}

static void test_human(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(timefmt_set_zone("UTC"), 0);
    assert_string_equal(timefmt_human(1712991600, "en", out, sizeof out), "13 April 2024");
    assert_string_equal(timefmt_human(1714638600, "en", out, sizeof out), "2 May 2024");
    assert_string_equal(timefmt_human(1712991600, "fr", out, sizeof out), "13 April 2024");
    assert_string_equal(timefmt_human(1712991600, NULL, out, sizeof out), "13 April 2024");
    assert_string_equal(timefmt_human(1712991600, "ar", out, sizeof out), "13 أبريل 2024");
    assert_string_equal(timefmt_human(1712991600, "ar-SA", out, sizeof out), "13 أبريل 2024");
    assert_string_equal(timefmt_human(946684799, "ar", out, sizeof out), "31 ديسمبر 1999");
    assert_string_equal(timefmt_human(1709164800, "ar", out, sizeof out), "29 فبراير 2024");
    assert_string_equal(timefmt_human(1712991600, "arn", out, sizeof out), "13 April 2024");
    /* in the zone set: 22:00Z on the 12th is the 13th in Riyadh */
    assert_string_equal(timefmt_human(1712959200, "en", out, sizeof out), "12 April 2024");
    assert_int_equal(timefmt_set_zone("Asia/Riyadh"), 0);
    assert_string_equal(timefmt_human(1712959200, "en", out, sizeof out), "13 April 2024");
    assert_int_equal(timefmt_set_zone("UTC"), 0);
}

/* Output must not change with the C locale (SPEC: English RFC 822 dates). */
static void test_locale_independent(void **state)
{
    (void)state;
    char a[40], b[40], h1[64], h2[64];
    timefmt_rfc822(1712991600, a, sizeof a);
    timefmt_human(1712991600, "en", h1, sizeof h1);
    if (!setlocale(LC_ALL, "fr_FR.UTF-8") && !setlocale(LC_ALL, "ar_SA.UTF-8"))
        skip();
    timefmt_rfc822(1712991600, b, sizeof b);
    timefmt_human(1712991600, "en", h2, sizeof h2);
    int64_t t = 0;
    int rc = timefmt_parse("2024-04-13T07:00:00.5Z", &t, NULL);
    setlocale(LC_ALL, "C");
    assert_string_equal(a, b);
    assert_string_equal(h1, h2);
    assert_string_equal(b, "Sat, 13 Apr 2024 07:00:00 +0000");
    assert_int_equal(rc, 0);
    assert_int_equal(t, 1712991600);
}

static void test_now(void **state)
{
    (void)state;
    setenv("NASHRA_NOW", "1700000000", 1);
    assert_int_equal(timefmt_now(), 1700000000);
    setenv("NASHRA_NOW", "2024-04-13T07:00:00Z", 1);
    assert_int_equal(timefmt_now(), 1712991600);
    setenv("NASHRA_NOW", "nonsense", 1);
    int64_t before = (int64_t)time(NULL);
    int64_t now = timefmt_now();
    assert_true(now >= before && now <= before + 5);
    unsetenv("NASHRA_NOW");
    before = (int64_t)time(NULL);
    now = timefmt_now();
    assert_true(now >= before && now <= before + 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_zone_is_utc), /* first: see its comment */
        cmocka_unit_test(test_set_zone),
        cmocka_unit_test(test_local_forms),
        cmocka_unit_test(test_rfc3339_forms),
        cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_rfc822),
        cmocka_unit_test(test_rfc3339_out),
        cmocka_unit_test(test_human),
        cmocka_unit_test(test_locale_independent),
        cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
