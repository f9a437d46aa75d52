/*
 * test_dsn: bounces read by mail/dsn.c (RFC 3464): a Postfix hard bounce
 * (5.1.1), a soft one (4.2.2, mailbox full), a delay warning (no bounce), an Exim-style
 * report with several recipients, a base64-encoded delivery-status part,
 * folded fields; and what is not a DSN: an auto-reply, a read receipt
 * (report-type=disposition-notification), a delivery-status part outside a
 * multipart/report, a DSN returned inside a message/rfc822, garbage and
 * every prefix of a DSN (no crash, no read past the end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../mail/dsn.h"

#define VERP "bounces+3.7.0123456789ab@example.org"

#define TOP                                                                                        \
    "Return-Path: <>\r\n"                                                                          \
    "X-Original-To: " VERP "\r\n"                                                                  \
    "Delivered-To: " VERP "\r\n"                                                                   \
    "Date: Sun, 29 Nov 2026 06:00:00 +0000 (UTC)\r\n"                                              \
    "From: MAILER-DAEMON@mail.example.org (Mail Delivery System)\r\n"                              \
    "Subject: Undelivered Mail Returned to Sender\r\n"                                             \
    "To: " VERP "\r\n"                                                                             \
    "Auto-Submitted: auto-replied\r\n"                                                             \
    "MIME-Version: 1.0\r\n"                                                                        \
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"                             \
    "\tboundary=\"B1/mail.example.org\"\r\n"                                                       \
    "Message-Id: <20261129060000.4F1A2B3C4D@mail.example.org>\r\n"                                 \
    "\r\n"                                                                                         \
    "This is a MIME-encapsulated message.\r\n"                                                     \
    "\r\n"                                                                                         \
    "--B1/mail.example.org\r\n"                                                                    \
    "Content-Description: Notification\r\n"                                                        \
    "Content-Type: text/plain; charset=us-ascii\r\n"                                               \
    "\r\n"                                                                                         \
    "This is the mail system at host mail.example.org.\r\n"                                        \
    "Status: 2.0.0 (a line that looks like a field, in the human part)\r\n"                        \
    "\r\n"                                                                                         \
    "--B1/mail.example.org\r\n"                                                                    \
    "Content-Description: Delivery report\r\n"                                                     \
    "Content-Type: message/delivery-status\r\n"                                                    \
    "\r\n"                                                                                         \
    "Reporting-MTA: dns; mail.example.org\r\n"                                                     \
    "X-Postfix-Queue-ID: 4F1A2B3C4D\r\n"                                                           \
    "X-Postfix-Sender: rfc822; " VERP "\r\n"                                                       \
    "Arrival-Date: Sun, 29 Nov 2026 05:59:58 +0000 (UTC)\r\n"                                      \
    "\r\n"

#define TAIL                                                                                       \
    "\r\n"                                                                                         \
    "--B1/mail.example.org\r\n"                                                                    \
    "Content-Description: Undelivered Message Headers\r\n"                                         \
    "Content-Type: text/rfc822-headers\r\n"                                                        \
    "\r\n"                                                                                         \
    "From: news@example.org\r\n"                                                                   \
    "To: nobody@example.net\r\n"                                                                   \
    "Message-ID: <3.7@example.org>\r\n"                                                            \
    "\r\n"                                                                                         \
    "--B1/mail.example.org--\r\n"

static const char hard[] =
    TOP "Final-Recipient: rfc822; nobody@example.net\r\n"
        "Original-Recipient: rfc822;nobody@example.net\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; mx.example.net\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient\r\n"
        "    address rejected: User unknown\r\n" TAIL;

static const char soft[] = TOP "Final-Recipient: rfc822; full@example.net\r\n"
                               "Action: failed\r\n"
                               "Status: 4.2.2\r\n"
                               "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n" TAIL;

static const char delayed[] = TOP "Final-Recipient: rfc822; slow@example.net\r\n"
                                  "Action: delayed\r\n"
                                  "Status: 4.4.1 (connection timed out)\r\n"
                                  "Will-Retry-Until: Tue, 1 Dec 2026 06:00:00 +0000\r\n" TAIL;

static const char delivered[] = TOP "Final-Recipient: rfc822; ok@example.net\r\n"
                                    "Action: delivered\r\n"
                                    "Status: 2.0.0\r\n" TAIL;

/* Two recipients, LF line ends, a folded Status, the worst one wins. */
static const char exim[] =
    "Delivered-To: " VERP "\n"
    "From: Mail Delivery System <Mailer-Daemon@mx.example.com>\n"
    "To: " VERP "\n"
    "Subject: Mail delivery failed: returning message to sender\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=\"Delivery-Status\"; boundary=XX\n"
    "\n"
    "--XX\n"
    "Content-Type: text/plain\n"
    "\n"
    "This message was created automatically by mail delivery software.\n"
    "--XX\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.example.com\n"
    "\n"
    "Action: delayed\n"
    "Final-Recipient: rfc822;a@example.net\n"
    "Status: 4.0.0\n"
    "\n"
    "Action: FAILED\n"
    "Final-Recipient: rfc822;b@example.net\n"
    "Status:\n"
    "  5.7.1\n"
    "--XX--\n";

/* The delivery-status part in base64 (RFC 3464 allows any encoding). */
static const char b64[] = "To: " VERP "\r\n"
                          "MIME-Version: 1.0\r\n"
                          "Content-Type: multipart/report; report-type=delivery-status; "
                          "boundary=\"b\"\r\n"
                          "\r\n"
                          "--b\r\n"
                          "Content-Type: message/delivery-status\r\n"
                          "Content-Transfer-Encoding: base64\r\n"
                          "\r\n"
                          /* "Reporting-MTA: dns; x\r\n\r\nAction: failed\r\nStatus: 5.2.1\r\n" */
                          "UmVwb3J0aW5nLU1UQTogZG5zOyB4DQoNCkFjdGlvbjogZmFpbGVkDQpTdGF0dXM6IDUu"
                          "Mi4xDQo=\r\n"
                          "--b--\r\n";

static const char autoreply[] = "Delivered-To: " VERP "\r\n"
                                "From: Someone <someone@example.net>\r\n"
                                "To: " VERP "\r\n"
                                "Subject: Out of office\r\n"
                                "Auto-Submitted: auto-replied\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n"
                                "\r\n"
                                "I am away until Monday.\r\n"
                                "Action: failed\r\n"
                                "Status: 5.1.1\r\n";

static const char receipt[] = "To: " VERP "\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: multipart/report; "
                              "report-type=disposition-notification; boundary=\"r\"\r\n"
                              "\r\n"
                              "--r\r\n"
                              "Content-Type: message/delivery-status\r\n"
                              "\r\n"
                              "Reporting-MTA: dns; x\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                              "--r--\r\n";

static const char loose[] = "To: " VERP "\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: multipart/mixed; boundary=\"m\"\r\n"
                            "\r\n"
                            "--m\r\n"
                            "Content-Type: message/delivery-status\r\n"
                            "\r\n"
                            "Reporting-MTA: dns; x\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                            "--m--\r\n";

/* A forwarded bounce: the DSN is inside a message/rfc822 of a plain mail. */
static const char forwarded[] = "To: " VERP "\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: multipart/mixed; boundary=\"f\"\r\n"
                                "\r\n"
                                "--f\r\n"
                                "Content-Type: text/plain\r\n"
                                "\r\n"
                                "see below\r\n"
                                "--f\r\n"
                                "Content-Type: message/rfc822\r\n"
                                "\r\n" TOP "Action: failed\r\nStatus: 5.1.1\r\n" TAIL "\r\n"
                                "--f--\r\n";

static void test_hard(void **state)
{
    struct dsn d;
    (void)state;
    assert_int_equal(dsn_parse(hard, sizeof hard - 1, &d), 0);
    assert_true(d.is_dsn);
    assert_int_equal(d.nrcpt, 1);
    assert_string_equal(d.rcpt[0].action, "failed");
    assert_string_equal(d.rcpt[0].status, "5.1.1");
    assert_string_equal(d.rcpt[0].recipient, "rfc822; nobody@example.net");
    assert_int_equal(dsn_verdict(&d), DSN_HARD);
    /* Delivered-To, X-Original-To, To, X-Postfix-Sender */
    assert_int_equal(d.naddrs, 4);
    assert_string_equal(d.addrs[0], VERP);
    assert_string_equal(d.addrs[1], VERP);
    assert_string_equal(d.addrs[2], VERP);
    assert_string_equal(d.addrs[3], "rfc822; " VERP);
}

static void test_soft(void **state)
{
    struct dsn d;
    (void)state;
    assert_int_equal(dsn_parse(soft, sizeof soft - 1, &d), 0);
    assert_string_equal(d.rcpt[0].status, "4.2.2");
    assert_int_equal(dsn_verdict(&d), DSN_SOFT);
    assert_int_equal(dsn_parse(delayed, sizeof delayed - 1, &d), 0);
    assert_string_equal(d.rcpt[0].action, "delayed");
    assert_string_equal(d.rcpt[0].status, "4.4.1");
    assert_int_equal(dsn_verdict(&d), DSN_NONE); /* a warning: the message may still arrive */
}

static void test_no_action(void **state)
{
    static const char *cases[][2] = {{"5.1.1", "h"}, {"4.2.2", "s"}, {"2.0.0", "n"}};
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char msg[4096];
        struct dsn d;
        int n = snprintf(msg, sizeof msg,
                         TOP "Final-Recipient: rfc822; x@example.net\r\n"
                             "Status: %s\r\n" TAIL,
                         cases[i][0]);
        assert_int_equal(dsn_parse(msg, (size_t)n, &d), 0);
        assert_int_equal(dsn_verdict(&d), cases[i][1][0] == 'h'   ? DSN_HARD
                                          : cases[i][1][0] == 's' ? DSN_SOFT
                                                                  : DSN_NONE);
    }
}

static void test_delivered(void **state)
{
    struct dsn d;
    (void)state;
    assert_int_equal(dsn_parse(delivered, sizeof delivered - 1, &d), 0);
    assert_true(d.is_dsn);
    assert_int_equal(dsn_verdict(&d), DSN_NONE);
}

static void test_exim_two_recipients(void **state)
{
    struct dsn d;
    (void)state;
    assert_int_equal(dsn_parse(exim, sizeof exim - 1, &d), 0);
    assert_true(d.is_dsn);
    assert_int_equal(d.nrcpt, 2);
    assert_string_equal(d.rcpt[0].action, "delayed");
    assert_string_equal(d.rcpt[1].action, "failed");
    assert_string_equal(d.rcpt[1].status, "5.7.1");
    assert_string_equal(d.rcpt[1].recipient, "rfc822;b@example.net");
    assert_int_equal(dsn_verdict(&d), DSN_HARD);
    assert_int_equal(d.naddrs, 2);
    assert_string_equal(d.addrs[0], VERP);
}

static void test_base64(void **state)
{
    struct dsn d;
    (void)state;
    assert_int_equal(dsn_parse(b64, sizeof b64 - 1, &d), 0);
    assert_true(d.is_dsn);
    assert_string_equal(d.rcpt[0].status, "5.2.1");
    assert_int_equal(dsn_verdict(&d), DSN_HARD);
}

static void test_not_dsn(void **state)
{
    struct dsn d;
    (void)state;
    const char *cases[] = {autoreply, receipt, loose, forwarded};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(dsn_parse(cases[i], strlen(cases[i]), &d), 0);
        assert_false(d.is_dsn);
        assert_int_equal(d.nrcpt, 0);
        assert_int_equal(dsn_verdict(&d), DSN_NONE);
    }
    /* the auto-reply still says where it went */
    assert_int_equal(dsn_parse(autoreply, sizeof autoreply - 1, &d), 0);
    assert_int_equal(d.naddrs, 2);
}

static void test_bad_status(void **state)
{
    static const char *bad[] = {"6.1.1", "5.1", "5..1", "5.1.1.", "51.1.1", "5.1234.1", "x"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char msg[4096];
        struct dsn d;
        int n = snprintf(msg, sizeof msg, TOP "Action: failed\r\nStatus: %s\r\n" TAIL, bad[i]);
        assert_int_equal(dsn_parse(msg, (size_t)n, &d), 0);
        assert_true(d.is_dsn);
        assert_string_equal(d.rcpt[0].status, "");
        assert_int_equal(dsn_verdict(&d), DSN_NONE);
    }
}

/* Every prefix of a DSN, and bytes of every value: no crash, no read past
 * the end (the copy is exactly n bytes on the heap, for ASan and valgrind). */
static void test_prefixes_and_garbage(void **state)
{
    struct dsn d;
    (void)state;
    for (size_t n = 0; n <= sizeof hard - 1; n++) {
        char *p = malloc(n ? n : 1);
        memcpy(p, hard, n);
        (void)dsn_parse(p, n, &d);
        (void)dsn_verdict(&d);
        free(p);
    }
    unsigned seed = 1;
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)(round * 7 % 900);
        char *p = malloc(n ? n : 1);
        memcpy(p, hard, n < sizeof hard - 1 ? n : sizeof hard - 1);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            if (i >= sizeof hard - 1 || (seed >> 16) % 13 == 0)
                p[i] = (char)(seed >> 8);
        }
        (void)dsn_parse(p, n, &d);
        (void)dsn_verdict(&d);
        free(p);
    }
    assert_int_equal(dsn_parse(NULL, 0, &d), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hard),
        cmocka_unit_test(test_soft),
        cmocka_unit_test(test_delivered),
        cmocka_unit_test(test_no_action),
        cmocka_unit_test(test_exim_two_recipients),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_not_dsn),
        cmocka_unit_test(test_bad_status),
        cmocka_unit_test(test_prefixes_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
