/*
 * test_tokens: the HMAC tokens of mail/newsletter: unsubscribe tokens (the
 * form mails already carry), confirm tokens that expire after
 * NEWSLETTER_CONFIRM_TTL and are refused from the future, and the VERP
 * local part read back from an address or a header value in any case, a
 * forged or cut one refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../mail/newsletter.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcde";
static const unsigned char key2[32] = "Z123456789abcdef0123456789abcde";

static void test_unsubscribe(void **state)
{
    char t[96];
    (void)state;
    newsletter_token(key, "unsubscribe", "news", 42, "a@example.org", t);
    assert_int_equal(strlen(t), 3 + 20);
    assert_int_equal(newsletter_token_id(t), 42);
    assert_true(newsletter_token_ok(key, "unsubscribe", "news", 42, "a@example.org", t));
    assert_false(newsletter_token_ok(key, "unsubscribe", "news", 42, "b@example.org", t));
    assert_false(newsletter_token_ok(key, "unsubscribe", "other", 42, "a@example.org", t));
    assert_false(newsletter_token_ok(key, "confirm", "news", 42, "a@example.org", t));
    assert_false(newsletter_token_ok(key2, "unsubscribe", "news", 42, "a@example.org", t));
    assert_false(newsletter_token_ok(key, "unsubscribe", "news", 42, "a@example.org", NULL));
    assert_int_equal(newsletter_token_id("x.12"), -1);
    assert_int_equal(newsletter_token_id("-1.12"), -1);
    assert_int_equal(newsletter_token_id("12"), -1);
    assert_int_equal(newsletter_token_id("1234567890123456789.1"), -1);
}

static void test_confirm(void **state)
{
    char t[96], bad[96];
    const int64_t now = 1800000000;
    (void)state;
    newsletter_confirm_token(key, "news", 7, "a@example.org", now, t);
    assert_int_equal(newsletter_token_id(t), 7);
    assert_true(newsletter_confirm_ok(key, "news", 7, "a@example.org", t, now));
    assert_true(
        newsletter_confirm_ok(key, "news", 7, "a@example.org", t, now + NEWSLETTER_CONFIRM_TTL));
    assert_false(newsletter_confirm_ok(key, "news", 7, "a@example.org", t,
                                       now + NEWSLETTER_CONFIRM_TTL + 1));
    assert_false(newsletter_confirm_ok(key, "news", 7, "a@example.org", t, now - 1));
    assert_false(newsletter_confirm_ok(key, "news", 8, "a@example.org", t, now));
    assert_false(newsletter_confirm_ok(key, "news", 7, "A@example.org", t, now));
    assert_false(newsletter_confirm_ok(key, "weekly", 7, "a@example.org", t, now));
    /* the time changed, the MAC kept */
    snprintf(bad, sizeof bad, "7.%lld%s", (long long)now - 1, strchr(t + 2, '.'));
    assert_false(newsletter_confirm_ok(key, "news", 7, "a@example.org", bad, now));
    /* an unsubscribe token is not a confirm token */
    newsletter_token(key, "confirm", "news", 7, "a@example.org", bad);
    assert_false(newsletter_confirm_ok(key, "news", 7, "a@example.org", bad, now));
}

static void test_verp(void **state)
{
    char local[96], addr[200];
    int64_t issue = -1, sub = -1;
    (void)state;
    newsletter_verp_local(key, 12, 345, local);
    assert_int_equal(strncmp(local, "bounces+12.345.", 15), 0);
    assert_int_equal(strlen(local), 15 + 12);
    snprintf(addr, sizeof addr, "rfc822; %s@example.org", local);
    assert_true(newsletter_verp_parse(key, addr, &issue, &sub));
    assert_int_equal(issue, 12);
    assert_int_equal(sub, 345);
    for (char *p = addr; *p; p++) /* an MTA that upper-cases local parts */
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    assert_true(newsletter_verp_parse(key, addr, &issue, &sub));
    assert_false(newsletter_verp_parse(key2, addr, &issue, &sub));
    snprintf(addr, sizeof addr, "bounces+12.346.%s@example.org", local + 15);
    assert_false(newsletter_verp_parse(key, addr, &issue, &sub));
    snprintf(addr, sizeof addr, "%.*s@example.org", (int)strlen(local) - 1, local);
    assert_false(newsletter_verp_parse(key, addr, &issue, &sub));
    assert_false(newsletter_verp_parse(key, "bounces+12.345@example.org", &issue, &sub));
    assert_false(newsletter_verp_parse(key, "bounces+", &issue, &sub));
    assert_false(newsletter_verp_parse(key, NULL, &issue, &sub));
    /* a first decoy before the real one */
    snprintf(addr, sizeof addr, "bounces+1.2.000000000000@x, %s@example.org", local);
    assert_true(newsletter_verp_parse(key, addr, &issue, &sub));
    assert_int_equal(sub, 345);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsubscribe),
        cmocka_unit_test(test_confirm),
        cmocka_unit_test(test_verp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
