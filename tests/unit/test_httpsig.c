/*
 * test_httpsig: HTTP signatures (ap/httpsig.c) against a real peer and
 * published vectors. The peer is tests/unit/httpsig_peer.py, an independent
 * implementation on Debian's python3-cryptography, run for each case:
 * signatures it makes (draft-cavage as Mastodon makes them, RFC 9421 with
 * rsa-v1_5-sha256 and rsa-pss-sha512) must verify here, and ours must verify
 * there. Known answers: draft-cavage-12 appendix C (its 1024-bit "Test" key:
 * our signer reproduces C.2's signature byte for byte, our verifier accepts
 * C.3) and RFC 9421 §4.3's rsa-v1_5-sha256 example (signature base text and
 * signature). Then every way to break a request: tampered method, path, host,
 * date, body, digest, signature bytes, a signed-headers list without digest
 * or date, stale and future dates, expiry, wrong key; malformed headers
 * (unterminated quotes, 100k values, missing or duplicate parameters, bad
 * base64, structured-field garbage) and a mutation fuzzer, which must all
 * fail cleanly with a reason. Last, the actor key file: 0600, O_EXCL, loose
 * modes, symlinks, encrypted and short keys refused.
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
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "../../ap/httpsig.h"

#define NOW    1700000000
#define KEY_ID "https://remote.example/users/bob#main-key"
#define HOST   "nashra.example"
#define INBOX  "/ap/inbox"
#define BODY   "{\"type\":\"Follow\",\"actor\":\"https://remote.example/users/bob\",\"ar\":\"مرحبا\"}"
#define BODY2  "{\"type\":\"Follow\",\"actor\":\"https://evil.example/users/eve\",\"ar\":\"مرحبا\"}"

static char tmpdir[64];
static char keypath[128], pubpath[128];
static EVP_PKEY *ckey; /* made by httpsig_key_load_or_create: the peer signs with it too */
static EVP_PKEY *cpub; /* its public half, read back through httpsig_pubkey_from_pem */

/* ---- the peer ------------------------------------------------------------------ */

/* tests/unit/httpsig_peer.py, found next to this file. */
static const char *peer_script(void)
{
    static char p[512];
    const char *slash = strrchr(__FILE__, '/');
    int n = slash ? (int)(slash - __FILE__) : 0;
    snprintf(p, sizeof p, "%.*s%shttpsig_peer.py", n, __FILE__, slash ? "/" : "");
    return p;
}

/* Runs the peer with the NULL-terminated args; its stdout into out (if not
 * NULL). Returns its exit status, or -1. */
static int peer_argv(struct buf *out, const char *const *args)
{
    const char *argv[48] = {"/usr/bin/python3", peer_script()};
    int a = 2, pfd[2], status;
    char chunk[4096];
    ssize_t r;

    while (*args && a < 47)
        argv[a++] = *args++;
    argv[a] = NULL;
    if (pipe(pfd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    while ((r = read(pfd[0], chunk, sizeof chunk)) > 0)
        if (out)
            assert_int_equal(buf_append(out, chunk, (size_t)r), 0);
    close(pfd[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

#define peer(out, ...) peer_argv(out, (const char *const[]){__VA_ARGS__, NULL})

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static char *tmp(const char *name)
{
    static char p[8][160];
    static int i;
    i = (i + 1) % 8;
    snprintf(p[i], sizeof p[i], "%s/%s", tmpdir, name);
    return p[i];
}

/* ---- requests ------------------------------------------------------------------ */

#define MAXH 40

struct req {
    struct httpsig_header h[MAXH];
    size_t n;
    char *store[128];
    size_t nstore;
    struct httpsig_request r;
};

static char *keep(struct req *q, const char *s)
{
    assert_true(q->nstore < 128);
    return q->store[q->nstore++] = strdup(s);
}

static void req_init(struct req *q, const char *method, const char *target, const char *body)
{
    memset(q, 0, sizeof *q);
    q->r.method = method;
    q->r.target = target;
    q->r.body = body;
    q->r.body_len = body ? strlen(body) : 0;
}

static void req_add(struct req *q, const char *name, const char *value)
{
    assert_true(q->n < MAXH);
    q->h[q->n].name = keep(q, name);
    q->h[q->n].value = keep(q, value);
    q->n++;
}

/* Replaces the lines named name by one with value (NULL: removes them). */
static void req_set(struct req *q, const char *name, const char *value)
{
    size_t o = 0;
    for (size_t i = 0; i < q->n; i++)
        if (strcasecmp(q->h[i].name, name))
            q->h[o++] = q->h[i];
    q->n = o;
    if (value)
        req_add(q, name, value);
}

static const char *req_get(const struct req *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (!strcasecmp(q->h[i].name, name))
            return q->h[i].value;
    return NULL;
}

/* Adds "Name: value" lines (LF or CRLF). */
static void req_add_lines(struct req *q, const char *text)
{
    char *copy = keep(q, text), *save = NULL;
    for (char *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        *colon = '\0';
        assert_true(q->n < MAXH);
        q->h[q->n].name = line;
        q->h[q->n].value = colon + 1 + (colon[1] == ' ');
        q->n++;
    }
}

static void set_body(struct req *q, const char *body)
{
    q->r.body = body;
    q->r.body_len = body ? strlen(body) : 0;
}

static void req_free(struct req *q)
{
    for (size_t i = 0; i < q->nstore; i++)
        free(q->store[i]);
    q->nstore = 0;
}

/* httpsig_parse then httpsig_verify, as the inbox will. */
static int check(struct req *q, EVP_PKEY *pub, int64_t now, const struct httpsig_policy *pol,
                 struct diag *why)
{
    struct httpsig_parsed p;
    memset(why, 0, sizeof *why);
    q->r.headers = q->h;
    q->r.nheaders = q->n;
    int rc = httpsig_parse(&q->r, &p, why);
    if (rc == HTTPSIG_OK)
        rc = httpsig_verify(&p, &q->r, pub, now, pol, why);
    return rc;
}

/* The outcome must be want, with sub in the reason (for failures). */
static void expect_at(int line, struct req *q, EVP_PKEY *pub, int64_t now,
                      const struct httpsig_policy *pol, int want, const char *sub)
{
    struct diag why;
    int rc = check(q, pub, now, pol, &why);
    if (rc != want || (sub && !strstr(why.msg, sub))) {
        print_error("line %d: got %s \"%s\", want %s \"%s\"\n", line, httpsig_result_name(rc),
                    why.msg, httpsig_result_name(want), sub ? sub : "");
        fail();
    }
    if (rc != HTTPSIG_OK)
        assert_true(why.msg[0] != '\0');
}

#define expect(...) expect_at(__LINE__, __VA_ARGS__)

/* A request signed by the peer with our key. */
static void peer_signed_argv(struct req *q, const char *cmd, const char *method, const char *target,
                             const char *body, int64_t now, const char *const *extra)
{
    const char *args[40] = {cmd,    "--key",    keypath, "--key-id", KEY_ID, "--method",
                            method, "--target", target,  "--host",   HOST,   "--now"};
    char nowbuf[32];
    int a = 12;
    struct buf out;

    snprintf(nowbuf, sizeof nowbuf, "%lld", (long long)now);
    args[a++] = nowbuf;
    if (body) {
        write_file(tmp("body.in"), body, strlen(body));
        args[a++] = "--body";
        args[a++] = tmp("body.in");
    }
    while (extra && *extra && a < 39)
        args[a++] = *extra++;
    args[a] = NULL;
    buf_init(&out, 1 << 20);
    assert_int_equal(peer_argv(&out, args), 0);
    req_init(q, method, target, body);
    req_add_lines(q, buf_str(&out));
    req_add(q, "Content-Type", "application/activity+json");
    buf_free(&out);
}

#define peer_signed(q, cmd, m, t, b, now, ...)                                                     \
    peer_signed_argv(q, cmd, m, t, b, now, (const char *const[]){__VA_ARGS__ NULL})

/* Our signature checked by the peer: its exit status (0: it verified). */
static int peer_verifies(const struct httpsig_out *o, const char *method, const char *target,
                         const char *body, int64_t now, struct buf *reason)
{
    struct buf h;
    char nowbuf[32];
    buf_init(&h, 0);
    assert_int_equal(httpsig_out_join(o, &h), 0);
    write_file(tmp("headers.out"), h.data, h.len);
    buf_free(&h);
    write_file(tmp("body.out"), body ? body : "", body ? strlen(body) : 0);
    snprintf(nowbuf, sizeof nowbuf, "%lld", (long long)now);
    return peer(reason, "verify-cavage", "--pub", pubpath, "--method", method, "--target", target,
                "--headers", tmp("headers.out"), "--body", tmp("body.out"), "--now", nowbuf);
}

static const char *out_get(const struct httpsig_out *o, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < o->n; i++)
        if (!strncmp(o->line[i], name, n) && o->line[i][n] == ':')
            return o->line[i] + n + 2;
    return NULL;
}

/* ---- setup ----------------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct diag why = {0};
    struct buf pem;
    int created = 0;

    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_httpsig.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(keypath, sizeof keypath, "%s/actor.pem", tmpdir);
    snprintf(pubpath, sizeof pubpath, "%s/actor.pub", tmpdir);
    ckey = httpsig_key_load_or_create(keypath, &created, &why);
    if (!ckey || !created) {
        fprintf(stderr, "key: %s\n", why.msg);
        return -1;
    }
    buf_init(&pem, 0);
    if (httpsig_pubkey_pem(ckey, &pem) < 0)
        return -1;
    FILE *fp = fopen(pubpath, "w");
    if (!fp || fwrite(pem.data, 1, pem.len, fp) != pem.len || fclose(fp))
        return -1;
    cpub = httpsig_pubkey_from_pem(pem.data, pem.len, &why);
    buf_free(&pem);
    return cpub ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[128];
    EVP_PKEY_free(ckey);
    EVP_PKEY_free(cpub);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- known answers ---------------------------------------------------------------- */

/* draft-cavage-http-signatures-12, appendix C: the "Test" key (1024 bits). */
static const char cavage_priv[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF\n"
    "NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F\n"
    "UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB\n"
    "AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA\n"
    "QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK\n"
    "kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg\n"
    "f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u\n"
    "412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc\n"
    "mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7\n"
    "kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA\n"
    "gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW\n"
    "G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI\n"
    "7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==\n"
    "-----END RSA PRIVATE KEY-----\n";

static const char cavage_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3\n"
    "6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6\n"
    "Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw\n"
    "oYi+1hqp1fIekaxsyQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

#define CAVAGE_NOW 1388957500 /* Sun, 05 Jan 2014 21:31:40 GMT */
#define CAVAGE_C2                                                                                  \
    "qdx+H7PHHDZgy4y/"                                                                             \
    "Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+"   \
    "efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0="
#define CAVAGE_C3                                                                                  \
    "vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+"                           \
    "MFHB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+"                                                       \
    "TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE="
#define HELLO        "{\"hello\": \"world\"}"
#define HELLO_SHA256 "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="

static EVP_PKEY *private_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(k);
    return k;
}

static void cavage_request(struct req *q, const char *signature)
{
    req_init(q, "POST", "/foo?param=value&pet=dog", HELLO);
    req_add(q, "Host", "example.com");
    req_add(q, "Date", "Sun, 05 Jan 2014 21:31:40 GMT");
    req_add(q, "Content-Type", "application/json");
    req_add(q, "Digest", "SHA-256=" HELLO_SHA256);
    req_add(q, "Content-Length", "18");
    req_add(q, "Signature", signature);
}

static void test_kat_cavage_sign(void **state)
{
    EVP_PKEY *k = private_from_pem(cavage_priv);
    struct httpsig_out o;
    struct diag why = {0};
    struct httpsig_sign_req r = {
        "POST", "/foo?param=value&pet=dog", "example.com", NULL, NULL, 0, CAVAGE_NOW};

    /* C.2 ("(request-target) host date"): PKCS#1 v1.5 is deterministic, so
     * the signature must be the draft's, byte for byte. */
    assert_int_equal(httpsig_sign(k, "Test", &r, &o, &why), HTTPSIG_OK);
    assert_int_equal(o.n, 3);
    assert_string_equal(o.line[0], "Host: example.com");
    assert_string_equal(o.line[1], "Date: Sun, 05 Jan 2014 21:31:40 GMT");
    assert_string_equal(o.line[2],
                        "Signature: keyId=\"Test\",algorithm=\"rsa-sha256\","
                        "headers=\"(request-target) host date\",signature=\"" CAVAGE_C2 "\"");
    httpsig_out_free(&o);

    /* With the body: the draft's Digest, and RFC 9530's Content-Digest. */
    r.body = HELLO;
    r.body_len = strlen(HELLO);
    r.content_type = "application/json";
    assert_int_equal(httpsig_sign(k, "Test", &r, &o, &why), HTTPSIG_OK);
    assert_int_equal(o.n, 6);
    assert_string_equal(out_get(&o, "Digest"), "SHA-256=" HELLO_SHA256);
    assert_string_equal(out_get(&o, "Content-Digest"), "sha-256=:" HELLO_SHA256 ":");
    assert_string_equal(out_get(&o, "Content-Type"), "application/json");
    assert_non_null(strstr(out_get(&o, "Signature"),
                           "headers=\"(request-target) host date digest content-type\""));
    for (size_t i = 0; i < o.n; i++)
        assert_null(strpbrk(o.line[i], "\r\n"));
    struct buf joined;
    buf_init(&joined, 0);
    assert_int_equal(httpsig_out_join(&o, &joined), 0);
    assert_non_null(strstr(joined.data, "\r\nDate: Sun, 05 Jan 2014 21:31:40 GMT\r\n"));
    assert_int_equal(memcmp(joined.data + joined.len - 2, "\r\n", 2), 0);
    buf_free(&joined);
    httpsig_out_free(&o);
    EVP_PKEY_free(k);
}

static void test_kat_cavage_verify(void **state)
{
    struct diag why = {0};
    EVP_PKEY *pub = httpsig_pubkey_from_pem(cavage_pub, strlen(cavage_pub), &why);
    struct httpsig_policy small = {3600, 3600, 1024};
    struct httpsig_parsed p;
    struct req q;
    struct buf base;

    assert_non_null(pub);
    /* C.3, all headers: verifies (given that we accept its 1024-bit key). */
    cavage_request(&q, "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"(request-target) host "
                       "date content-type digest content-length\",signature=\"" CAVAGE_C3 "\"");
    expect(&q, pub, CAVAGE_NOW, &small, HTTPSIG_OK, NULL);
    expect(&q, pub, CAVAGE_NOW, NULL, HTTPSIG_E_UNSUPPORTED, "1024 bits");
    req_free(&q);

    /* C.2: the draft's signing string, and a valid signature that does not
     * cover the body: not enough for a POST. */
    cavage_request(&q, "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"(request-target) host "
                       "date\",signature=\"" CAVAGE_C2 "\"");
    q.r.headers = q.h;
    q.r.nheaders = q.n;
    assert_int_equal(httpsig_parse(&q.r, &p, &why), HTTPSIG_OK);
    assert_int_equal(p.scheme, HTTPSIG_CAVAGE);
    assert_string_equal(p.key_id, "Test");
    buf_init(&base, 0);
    assert_int_equal(httpsig_signature_base(&p, &q.r, &base, &why), HTTPSIG_OK);
    assert_string_equal(base.data, "(request-target): post /foo?param=value&pet=dog\n"
                                   "host: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT");
    buf_free(&base);
    expect(&q, pub, CAVAGE_NOW, &small, HTTPSIG_E_WEAK, "digest is not signed");
    /* the same as a GET has nothing more to cover */
    q.r.method = "GET";
    set_body(&q, NULL);
    req_set(&q, "Digest", NULL);
    expect(&q, pub, CAVAGE_NOW, &small, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
    EVP_PKEY_free(pub);
}

/* RFC 9421 §4.3: the proxy's signature, rsa-v1_5-sha256 with test-key-rsa
 * (given in PKCS#1 form, "BEGIN RSA PUBLIC KEY"). */
static const char rfc_pub[] = "-----BEGIN RSA PUBLIC KEY-----\n"
                              "MIIBCgKCAQEAhAKYdtoeoy8zcAcR874L8cnZxKzAGwd7v36APp7Pv6Q2jdsPBRrw\n"
                              "WEBnez6d0UDKDwGbc6nxfEXAy5mbhgajzrw3MOEt8uA5txSKobBpKDeBLOsdJKFq\n"
                              "MGmXCQvEG7YemcxDTRPxAleIAgYYRjTSd/QBwVW9OwNFhekro3RtlinV0a75jfZg\n"
                              "kne/YiktSvLG34lw2zqXBDTC5NHROUqGTlML4PlNZS5Ri2U4aCNx2rUPRcKIlE0P\n"
                              "uKxI4T+HIaFpv8+rdV6eUgOrB2xeI1dSFFn/nnv5OoZJEIB+VmuKn3DCUcCZSFlQ\n"
                              "PSXSfBDiUGhwOw76WuSSsf1D4b/vLoJ10wIDAQAB\n"
                              "-----END RSA PUBLIC KEY-----\n";

#define RFC_DIGEST                                                                                 \
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXv"  \
    "Jwew==:"
#define RFC_PARAMS                                                                                 \
    "(\"@method\" \"@authority\" \"@path\" \"content-digest\" \"content-type\" "                   \
    "\"content-length\" \"forwarded\");created=1618884480;keyid=\"test-key-rsa\";"                 \
    "alg=\"rsa-v1_5-sha256\";expires=1618884540"

static void rfc_request(struct req *q)
{
    req_init(q, "POST", "/foo?param=Value&Pet=dog", HELLO);
    req_add(q, "Host", "origin.host.internal.example");
    req_add(q, "Date", "Tue, 20 Apr 2021 02:07:56 GMT");
    req_add(q, "Content-Type", "application/json");
    req_add(q, "Content-Length", "18");
    req_add(q, "Forwarded", "for=192.0.2.123;host=example.com;proto=https");
    req_add(q, "Content-Digest", RFC_DIGEST);
    req_add(q, "Signature-Input", "proxy_sig=" RFC_PARAMS);
    req_add(
        q, "Signature",
        "proxy_sig=:S6ZzPXSdAMOPjN/6KXfXWNO/f7V6cHm7BXYUh3YD/fRad4BCaRZxP+JH+8XY1I6+8Cy+CM5g92iH"
        "gxtRPz+MjniOaYmdkDcnL9cCpXJleXsOckpURl49GwiyUpZ10KHgOEe11sx3G2gxI8S0jnxQB+Pu68U9vVcas"
        "qOWAEObtNKKZd8tSFu7LB5YAv0RAGhB8tmpv7sFnIm9y+7X5kXQfi8NMaZaA8i2ZHwpBdg7a6CMfwnnrtflzv"
        "ZdXAsD3LH2TwevU+/PBPv0B6NMNk93wUs/vfJvye+YuI87HU38lZHowtznbLVdp770I6VHR6WfgS9ddzirrsw"
        "sE1w5o0LV/g==:");
}

static void test_kat_rfc9421(void **state)
{
    struct diag why = {0};
    EVP_PKEY *pub = httpsig_pubkey_from_pem(rfc_pub, strlen(rfc_pub), &why);
    struct httpsig_parsed p;
    struct req q;
    struct buf base;

    assert_non_null(pub);
    rfc_request(&q);
    q.r.headers = q.h;
    q.r.nheaders = q.n;
    assert_int_equal(httpsig_parse(&q.r, &p, &why), HTTPSIG_OK);
    assert_int_equal(p.scheme, HTTPSIG_RFC9421);
    assert_string_equal(p.label, "proxy_sig");
    assert_string_equal(p.key_id, "test-key-rsa");
    assert_int_equal(p.alg, HTTPSIG_ALG_RSA_SHA256);
    assert_int_equal(p.created, 1618884480);
    assert_int_equal(p.expires, 1618884540);
    buf_init(&base, 0);
    assert_int_equal(httpsig_signature_base(&p, &q.r, &base, &why), HTTPSIG_OK);
    assert_string_equal(base.data, "\"@method\": POST\n"
                                   "\"@authority\": origin.host.internal.example\n"
                                   "\"@path\": /foo\n"
                                   "\"content-digest\": " RFC_DIGEST "\n"
                                   "\"content-type\": application/json\n"
                                   "\"content-length\": 18\n"
                                   "\"forwarded\": for=192.0.2.123;host=example.com;proto=https\n"
                                   "\"@signature-params\": " RFC_PARAMS);
    buf_free(&base);
    /* The vector covers @path but not @query: with a query in the target,
     * that is too weak for us (the query could be changed at will). */
    expect(&q, pub, 1618884480, NULL, HTTPSIG_E_WEAK, "@query is not signed");
    /* As our inbox sees it, without a query: it verifies, its sha-512
     * Content-Digest checked against the body... */
    q.r.target = "/foo";
    expect(&q, pub, 1618884480, NULL, HTTPSIG_OK, NULL);
    /* ...until its expires, */
    expect(&q, pub, 1618884541, NULL, HTTPSIG_E_TIME, "expired 1 s ago");
    /* or with any covered part changed. */
    req_set(&q, "Forwarded", "for=192.0.2.124;host=example.com;proto=https");
    expect(&q, pub, 1618884480, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_set(&q, "Forwarded", "for=192.0.2.123;host=example.com;proto=https");
    expect(&q, pub, 1618884480, NULL, HTTPSIG_OK, NULL);
    set_body(&q, "{\"hello\": \"World\"}");
    expect(&q, pub, 1618884480, NULL, HTTPSIG_E_DIGEST, "Content-Digest sha-512 does not match");
    set_body(&q, HELLO);
    q.r.method = "PUT";
    expect(&q, pub, 1618884480, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
    EVP_PKEY_free(pub);
}

/* ---- interoperability with the peer ------------------------------------------------- */

static void test_peer_signs_cavage(void **state)
{
    struct req q;

    /* A Mastodon-style POST: (request-target) host date digest. */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    assert_non_null(
        strstr(req_get(&q, "Signature"), "headers=\"(request-target) host date digest\""));
    expect(&q, cpub, NOW + 5, NULL, HTTPSIG_OK, NULL);
    req_free(&q);
    /* hs2019, and no algorithm at all */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, "--alg", "hs2019", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, "--alg", "none", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_free(&q);
    /* a signed GET (authorized fetch), with a query */
    peer_signed(&q, "sign-cavage", "GET", "/ap/outbox?page=2", NULL, NOW, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_free(&q);
    /* the same through "Authorization: Signature ..." */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    char *auth = malloc(strlen(req_get(&q, "Signature")) + 16);
    sprintf(auth, "Signature %s", req_get(&q, "Signature"));
    req_set(&q, "Signature", NULL);
    req_set(&q, "Authorization", auth);
    free(auth);
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_set(&q, "Authorization", "Bearer abc");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_MISSING, "no Signature header");
    req_free(&q);
}

static void test_peer_signs_rfc9421(void **state)
{
    struct req q;
    struct httpsig_parsed p;
    struct diag why;

    /* What Mastodon sends: @method @target-uri content-digest, created. */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    q.r.headers = q.h;
    q.r.nheaders = q.n;
    assert_int_equal(httpsig_parse(&q.r, &p, &why), HTTPSIG_OK);
    assert_string_equal(p.key_id, KEY_ID);
    assert_string_equal(p.label, "sig1");
    assert_int_equal(p.created, NOW);
    req_free(&q);
    /* rsa-pss-sha512, derived components, Date covered, a query */
    peer_signed(&q, "sign-9421", "POST", "/ap/inbox?x=1", BODY, NOW, "--alg", "rsa-pss-sha512",
                "--components", "@method @path @query @authority date content-digest", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_free(&q);
    /* no alg: determined from the key (PKCS#1 v1.5 here) */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, "--alg", "none", "--components",
                "@request-target @method host date content-digest", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_set(&q, "Date", NULL);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_MALFORMED, "covered header date is absent");
    req_free(&q);
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, "--alg", "none", "--components",
                "@request-target @method host content-digest", "--label", "fedi", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_free(&q);
    /* a signed GET, no body: no digest needed */
    peer_signed(&q, "sign-9421", "GET", "/ap/actor", NULL, NOW, "--components",
                "@method @target-uri", "--expires", "1700000300", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    expect(&q, cpub, NOW + 301, NULL, HTTPSIG_E_TIME, "expired");
    req_free(&q);
    /* Host with a default port and upper case: @authority normalizes */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, "--components",
                "@method @path @authority content-digest", );
    req_set(&q, "Host", "NASHRA.example:443");
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_set(&q, "Host", "nashra.example:8443");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
}

static void test_we_sign_peer_verifies(void **state)
{
    struct httpsig_out o;
    struct diag why = {0};
    struct buf reason;
    struct httpsig_sign_req r = {"POST", INBOX,        HOST, "application/activity+json",
                                 BODY,   strlen(BODY), NOW};

    buf_init(&reason, 4096);
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &r, &o, &why), HTTPSIG_OK);
    assert_int_equal(peer_verifies(&o, "POST", INBOX, BODY, NOW + 10, &reason), 0);
    assert_string_equal(reason.data, "ok\n");
    /* the peer is not a rubber stamp: */
    buf_reset(&reason);
    assert_int_equal(peer_verifies(&o, "POST", INBOX, BODY2, NOW, &reason), 1);
    assert_non_null(strstr(reason.data, "Digest does not match"));
    buf_reset(&reason);
    assert_int_equal(peer_verifies(&o, "POST", "/ap/inbox2", BODY, NOW, &reason), 1);
    assert_non_null(strstr(reason.data, "does not verify"));
    buf_reset(&reason);
    assert_int_equal(peer_verifies(&o, "POST", INBOX, BODY, NOW + 7200, &reason), 1);
    assert_non_null(strstr(reason.data, "window"));
    httpsig_out_free(&o);

    /* A signed GET (no body, no digests) */
    struct httpsig_sign_req g = {"GET", "/users/bob?x=1", "remote.example", NULL, NULL, 0, NOW};
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &g, &o, &why), HTTPSIG_OK);
    assert_int_equal(o.n, 3);
    assert_null(out_get(&o, "Digest"));
    buf_reset(&reason);
    assert_int_equal(peer_verifies(&o, "GET", "/users/bob?x=1", NULL, NOW, &reason), 0);
    httpsig_out_free(&o);

    /* An empty body is still a body: digests of "" */
    struct httpsig_sign_req e = {"POST", INBOX, HOST, NULL, "", 0, NOW};
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &e, &o, &why), HTTPSIG_OK);
    assert_string_equal(out_get(&o, "Digest"),
                        "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    buf_reset(&reason);
    assert_int_equal(peer_verifies(&o, "POST", INBOX, "", NOW, &reason), 0);
    httpsig_out_free(&o);
    buf_free(&reason);

    /* and our own verifier agrees with our signer */
    struct req q;
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &r, &o, &why), HTTPSIG_OK);
    req_init(&q, "POST", INBOX, BODY);
    for (size_t i = 0; i < o.n; i++)
        req_add_lines(&q, o.line[i]);
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_free(&q);
    httpsig_out_free(&o);
}

static void test_peer_keys(void **state)
{
    struct req q;
    struct diag why = {0};
    char *pem = NULL;
    size_t len = 0;
    FILE *fp;

    /* The peer's own keys, public halves in SPKI and in PKCS#1 */
    for (int f = 0; f < 2; f++) {
        if (f == 0)
            assert_int_equal(
                peer(NULL, "genkey", "--priv", tmp("peer.key"), "--pub", tmp("peer.pub")), 0);
        else
            assert_int_equal(peer(NULL, "genkey", "--priv", tmp("peer.key"), "--pub",
                                  tmp("peer.pub"), "--pkcs1", "--bits", "3072"),
                             0);
        fp = fopen(tmp("peer.pub"), "r");
        assert_non_null(fp);
        assert_int_equal(getdelim(&pem, &len, '\0', fp) > 0, 1);
        fclose(fp);
        if (f == 0)
            assert_non_null(strstr(pem, "BEGIN PUBLIC KEY"));
        else
            assert_non_null(strstr(pem, "BEGIN RSA PUBLIC KEY"));
        EVP_PKEY *pub = httpsig_pubkey_from_pem(pem, strlen(pem), &why);
        assert_non_null(pub);

        /* sign with the peer's key (keypath swapped for the call) */
        char saved[sizeof keypath];
        memcpy(saved, keypath, sizeof keypath);
        snprintf(keypath, sizeof keypath, "%s", tmp("peer.key"));
        peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
        memcpy(keypath, saved, sizeof keypath);
        expect(&q, pub, NOW, NULL, HTTPSIG_OK, NULL);
        /* ... which our own key does not verify */
        expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify with the key of " KEY_ID);
        req_free(&q);
        EVP_PKEY_free(pub);
    }

    /* publicKeyPem as found in the wild: leading blanks, CR LF, no final LF */
    struct buf crlf;
    buf_init(&crlf, 0);
    assert_int_equal(buf_puts(&crlf, "  \n"), 0);
    for (char *p = pem; *p; p++)
        assert_int_equal(*p == '\n' ? buf_puts(&crlf, "\r\n") : buf_putc(&crlf, *p), 0);
    crlf.len -= 2;
    EVP_PKEY *pub = httpsig_pubkey_from_pem(crlf.data, crlf.len, &why);
    assert_non_null(pub);
    EVP_PKEY_free(pub);
    buf_free(&crlf);
    free(pem);
}

/* ---- tampering -------------------------------------------------------------------- */

/* Replaces the first occurrence of from by to in the request's header name. */
static void edit_header(struct req *q, const char *name, const char *from, const char *to)
{
    const char *v = req_get(q, name);
    assert_non_null(v);
    const char *at = strstr(v, from);
    assert_non_null(at);
    char *n = malloc(strlen(v) + strlen(to) + 1);
    sprintf(n, "%.*s%s%s", (int)(at - v), v, to, at + strlen(from));
    req_set(q, name, n);
    free(n);
}

static void test_tamper_cavage(void **state)
{
    struct req q;
    char date[64], digest[80];

    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    q.r.method = "PUT";
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "rsa-sha256 signature does not verify");
    q.r.method = "POST";
    q.r.target = "/ap/inbox?x";
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    q.r.target = INBOX;
    req_set(&q, "Host", "evil.example");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_set(&q, "Host", HOST);
    req_set(&q, "Date", httpsig_imf_date(NOW + 1, date, sizeof date));
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_set(&q, "Date", httpsig_imf_date(NOW, date, sizeof date));
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    /* the body changed: its digest no longer matches */
    set_body(&q, BODY2);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_DIGEST, "Digest SHA-256 does not match the body");
    /* body and Digest changed together: the signature catches it */
    unsigned char md[32];
    unsigned mdlen;
    EVP_Digest(BODY2, strlen(BODY2), md, &mdlen, EVP_sha256(), NULL);
    BIO *bio = BIO_push(BIO_new(BIO_f_base64()), BIO_new(BIO_s_mem()));
    BIO_set_flags(bio, BIO_FLAGS_BASE64_NO_NL);
    BIO_write(bio, md, (int)mdlen);
    (void)BIO_flush(bio);
    char *p;
    long n = BIO_get_mem_data(BIO_next(bio), &p);
    snprintf(digest, sizeof digest, "SHA-256=%.*s", (int)n, p);
    BIO_free_all(bio);
    req_set(&q, "Digest", digest);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    set_body(&q, BODY);
    /* a Digest that is not one */
    req_set(&q, "Digest", "SHA-256=not*base64");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_DIGEST, "not a valid base64 digest");
    req_set(&q, "Digest", "MD5=abc");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_DIGEST, "neither SHA-256 nor SHA-512");
    /* no Digest at all, though signed */
    req_set(&q, "Digest", NULL);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_MALFORMED, "signed header digest is absent");
    req_free(&q);

    /* signature bytes: one base64 character changed */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    const char *sig = strstr(req_get(&q, "Signature"), "signature=\"") + 11;
    /* a piece long enough to occur only in the signature (two characters
     * could match inside "(request-target)" first) */
    char from[13], to[13];
    memcpy(from, sig, 12);
    from[12] = '\0';
    memcpy(to, from, sizeof to);
    to[10] = from[10] == 'A' ? 'B' : 'A';
    edit_header(&q, "Signature", from, to);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);

    /* an unsigned Content-Digest that lies is refused too */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    req_add(&q, "Content-Digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_DIGEST, "Content-Digest sha-256 does not match");
    req_free(&q);

    /* signed-headers lists that leave something out */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, "--headers",
                "(request-target) host date", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "digest is not signed");
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, "--headers",
                "(request-target) host digest", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "date is not signed");
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, "--headers", "host date digest", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "(request-target) is not signed");
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, "--headers",
                "(request-target) date digest", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "host is not signed");
    req_free(&q);
    /* the list edited after signing */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    edit_header(&q, "Signature", " digest\"", "\"");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "digest is not signed");
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    edit_header(&q, "Signature", " date", "");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "date is not signed");
    req_free(&q);
    /* headers reordered: a different signing string */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    edit_header(&q, "Signature", "host date", "date host");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
    /* a signed header sent twice is joined, which breaks the signature */
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    req_add(&q, "host", "evil.example");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
}

static void test_tamper_rfc9421(void **state)
{
    struct req q;

    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    set_body(&q, BODY2);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_DIGEST, "Content-Digest sha-256 does not match");
    set_body(&q, BODY);
    q.r.method = "PATCH";
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    q.r.method = "POST";
    q.r.target = "/ap/inbox/";
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    q.r.target = INBOX;
    q.r.scheme = "http";
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    q.r.scheme = NULL;
    req_set(&q, "Host", "evil.example");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
    /* components dropped from Signature-Input after signing */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, );
    edit_header(&q, "Signature-Input", " \"content-digest\"", "");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "content-digest is not signed");
    req_free(&q);
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, );
    edit_header(&q, "Signature-Input", "\"@method\" ", "");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "@method is not signed");
    req_free(&q);
    /* created moved: the parameters are signed too */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, );
    edit_header(&q, "Signature-Input", "created=1700000000", "created=1700000001");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
    /* signature bytes */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, );
    const char *sig = strstr(req_get(&q, "Signature"), "=:") + 2;
    char from[3] = {sig[20], sig[21], 0}, to[3] = {sig[20] == 'z' ? 'y' : 'z', sig[21], 0};
    edit_header(&q, "Signature", from, to);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "does not verify");
    req_free(&q);
    /* pss signature claimed as v1_5 and the reverse */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, "--alg", "rsa-pss-sha512", );
    edit_header(&q, "Signature-Input", "rsa-pss-sha512", "rsa-v1_5-sha256");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_SIGNATURE, "rsa-sha256 signature does not verify");
    req_free(&q);
    /* the body not covered at all */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, "--components", "@method @target-uri", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "content-digest is not signed");
    req_free(&q);
    /* no time: neither created (removed) nor date */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, );
    edit_header(&q, "Signature-Input", ";created=1700000000", "");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_WEAK, "date or created is not signed");
    req_free(&q);
}

/* ---- time ---------------------------------------------------------------------------- */

static void test_time_window(void **state)
{
    struct req q;
    struct httpsig_policy mastodon = {12 * 3600, 3600, 2048}, strict = {3600, 300, 2048};

    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW - 2 * 3600, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_TIME, "Date is 7200 s old (limit 3600)");
    expect(&q, cpub, NOW, &mastodon, HTTPSIG_OK, NULL);
    expect(&q, cpub, NOW + 13 * 3600, &mastodon, HTTPSIG_E_TIME, "Date is 54000 s old");
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW + 2 * 3600, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_TIME, "Date is 7200 s in the future");
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW + 600, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    expect(&q, cpub, NOW, &strict, HTTPSIG_E_TIME, "600 s in the future (limit 300)");
    req_free(&q);
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW - 3599, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_OK, NULL);
    req_set(&q, "Date", "yesterday");
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_MALFORMED, "not an IMF-fixdate");
    req_free(&q);

    /* RFC 9421: created, and expires */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW - 2 * 3600, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_TIME, "created is 7200 s old");
    req_free(&q);
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW + 2 * 3600, );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_TIME, "created is 7200 s in the future");
    req_free(&q);
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW, "--created", "1699999900", "--expires",
                "1699999990", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_TIME, "signature expired 10 s ago");
    req_free(&q);
    /* a fresh created with a stale covered Date: both are checked */
    peer_signed(&q, "sign-9421", "POST", INBOX, BODY, NOW - 7200, "--created", "1700000000",
                "--components", "@method @target-uri date content-digest", );
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_TIME, "Date is 7200 s old");
    req_free(&q);
}

static void test_imf_date(void **state)
{
    char d[64];
    int64_t t;

    assert_string_equal(httpsig_imf_date(0, d, sizeof d), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(httpsig_imf_date(784111777, d, sizeof d), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(httpsig_imf_date(951782400, d, sizeof d), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_string_equal(httpsig_imf_date(-1, d, sizeof d), "Wed, 31 Dec 1969 23:59:59 GMT");
    for (int64_t x = -86400 * 800; x < 4102444800; x += 86400 * 37 + 3607) {
        assert_int_equal(httpsig_parse_imf_date(httpsig_imf_date(x, d, sizeof d), &t), 0);
        assert_int_equal(t, x);
    }
    assert_int_equal(httpsig_parse_imf_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(httpsig_parse_imf_date("Sun, 06 Nov 1994 08:49:37 +0000", &t), 0);
    assert_int_equal(t, 784111777);
    const char *bad[] = {"Sun, 06 Nov 1994 08:49:37 EST",
                         "Sun, 06 Nov 1994 08:49:37 GMT ",
                         "Sunday, 06-Nov-94 08:49:37 GMT",
                         "Sun Nov  6 08:49:37 1994",
                         "Sun, 31 Feb 1994 08:49:37 GMT",
                         "Tue, 29 Feb 2100 00:00:00 GMT",
                         "Sun, 06 Nov 1994 24:00:00 GMT",
                         "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:60 GMT",
                         "Xyz, 06 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:3",
                         "",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(httpsig_parse_imf_date(bad[i], &t), -1);
    assert_int_equal(httpsig_parse_imf_date(NULL, &t), -1);
}

/* ---- malformed input -------------------------------------------------------------------- */

#define GOODSIG "keyId=\"k\",headers=\"(request-target) host date\",signature=\"" CAVAGE_C2 "\""

static void try_cavage(const char *sig, int want, const char *sub, int line)
{
    struct req q;
    req_init(&q, "GET", INBOX, NULL);
    req_add(&q, "Host", HOST);
    req_add(&q, "Date", "Tue, 14 Nov 2023 22:13:20 GMT");
    req_add(&q, "Signature", sig);
    expect_at(line, &q, cpub, NOW, NULL, want, sub);
    req_free(&q);
}

static void try_rfc9421(const char *input, const char *sig, int want, const char *sub, int line)
{
    struct req q;
    req_init(&q, "POST", INBOX, BODY);
    req_add(&q, "Host", HOST);
    req_add(&q, "Signature-Input", input);
    if (sig)
        req_add(&q, "Signature", sig);
    expect_at(line, &q, cpub, NOW, NULL, want, sub);
    req_free(&q);
}

static void test_malformed_cavage(void **state)
{
    const struct {
        const char *sig;
        int want;
        const char *sub;
    } cases[] = {
        {"", HTTPSIG_E_MALFORMED, "no keyId"},
        {"garbage", HTTPSIG_E_MALFORMED, "expected name=value"},
        {",,,", HTTPSIG_E_MALFORMED, "expected name=value"},
        {"keyId=\"k", HTTPSIG_E_MALFORMED, "unterminated quoted string in keyId"},
        {"keyId=\"k\",signature=\"abc", HTTPSIG_E_MALFORMED, "unterminated"},
        {"keyId=\"k\\", HTTPSIG_E_MALFORMED, "unterminated"},
        {"signature=\"" CAVAGE_C2 "\"", HTTPSIG_E_MALFORMED, "no keyId"},
        {"keyId=\"k\",headers=\"date\"", HTTPSIG_E_MALFORMED, "no signature"},
        {"keyId=\"k\",keyId=\"j\",signature=\"" CAVAGE_C2 "\"", HTTPSIG_E_MALFORMED,
         "duplicate parameter keyId"},
        {"keyId=\"k\",signature=\"" CAVAGE_C2 "\",Signature=\"" CAVAGE_C2 "\"", HTTPSIG_E_MALFORMED,
         "duplicate parameter Signature"},
        {"keyId=\"k\",signature=\"!!!not base64!!!\"", HTTPSIG_E_MALFORMED, "not base64"},
        {"keyId=\"k\",signature=\"abc=def\"", HTTPSIG_E_MALFORMED, "not base64"},
        {"keyId=\"k\",signature=\"a\"", HTTPSIG_E_MALFORMED, "not base64"},
        {"keyId=\"k\",signature=\"\"", HTTPSIG_E_MALFORMED, "not base64"},
        {"keyId=\"k\",signature=\"ab cd\"", HTTPSIG_E_MALFORMED, "not base64"},
        {"keyId=\"k\"signature=\"abcd\"", HTTPSIG_E_MALFORMED, "expected ','"},
        {"keyId=\"\",signature=\"abcd\"", HTTPSIG_E_MALFORMED, "keyId of 0 bytes"},
        {"keyId=\"k\x01\",signature=\"abcd\"", HTTPSIG_E_MALFORMED, "control or non-ASCII"},
        {"keyId=\"k\xc3\xa9\",signature=\"abcd\"", HTTPSIG_E_MALFORMED, "control or non-ASCII"},
        {"keyId=\"k\",algorithm=\"hmac-sha256\",signature=\"abcd\"", HTTPSIG_E_UNSUPPORTED,
         "algorithm \"hmac-sha256\""},
        {"keyId=\"k\",algorithm=\"ecdsa-sha256\",signature=\"abcd\"", HTTPSIG_E_UNSUPPORTED,
         "not supported"},
        {"keyId=\"k\",headers=\"(request-target) (algorithm)\",signature=\"abcd\"",
         HTTPSIG_E_UNSUPPORTED, "pseudo-header (algorithm)"},
        {"keyId=\"k\",headers=\"host host\",signature=\"abcd\"", HTTPSIG_E_MALFORMED,
         "covered twice"},
        {"keyId=\"k\",headers=\"ho\\\"st\",signature=\"abcd\"", HTTPSIG_E_MALFORMED,
         "bad character"},
        {"keyId=\"k\",headers=\"  \",signature=\"abcd\"", HTTPSIG_E_MALFORMED, "empty headers"},
        {"keyId=\"k\",headers=\"(created) host\",signature=\"abcd\"", HTTPSIG_E_MALFORMED,
         "(created)/(expires) covered but not given"},
        {"keyId=\"k\",created=12x,signature=\"abcd\"", HTTPSIG_E_MALFORMED,
         "created is not an integer"},
        {"keyId=\"k\",created=12 x,signature=\"abcd\"", HTTPSIG_E_MALFORMED, "expected ','"},
        {"keyId=\"k\",created=\"-5\",signature=\"abcd\"", HTTPSIG_E_MALFORMED,
         "created is not an integer"},
        /* quoted commas and escapes are fine; the result is still weak */
        {"keyId=\"a,b=\\\"c\\\"\", signature=\"" CAVAGE_C2 "\" , foo=bar", HTTPSIG_E_WEAK,
         "(request-target) is not signed"},
        /* the draft's signature over another request: does not verify */
        {GOODSIG, HTTPSIG_E_SIGNATURE, "does not verify with the key of k"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        try_cavage(cases[i].sig, cases[i].want, cases[i].sub, __LINE__ * 1000 + (int)i);

    /* 100k values: refused by size, before any parsing */
    char *big = malloc(100050);
    memset(big, 'A', 100049);
    big[100049] = '\0';
    memcpy(big, "keyId=\"", 7);
    try_cavage(big, HTTPSIG_E_MALFORMED, "longer than 8192", __LINE__);
    /* just under the cap: a 8100-byte keyId is over its own limit */
    big[8100] = '"';
    big[8101] = '\0';
    try_cavage(big, HTTPSIG_E_MALFORMED, "keyId of 8093 bytes", __LINE__);
    /* a 6000-byte signature decodes past 1024 bytes */
    snprintf(big, 100050, "keyId=\"k\",signature=\"");
    memset(big + strlen(big), 'A', 6000);
    strcpy(big + 21 + 6000, "\"");
    try_cavage(big, HTTPSIG_E_MALFORMED, "not base64 of at most 1024", __LINE__);
    /* 17 parameters */
    big[0] = '\0';
    for (int i = 0; i < 17; i++)
        sprintf(big + strlen(big), "%sx%d=\"1\"", i ? "," : "", i);
    try_cavage(big, HTTPSIG_E_MALFORMED, "more than 16 parameters", __LINE__);
    /* 17 headers */
    strcpy(big, "keyId=\"k\",signature=\"abcd\",headers=\"");
    for (int i = 0; i < 17; i++)
        sprintf(big + strlen(big), "h%d ", i);
    strcat(big, "\"");
    try_cavage(big, HTTPSIG_E_MALFORMED, "more than 16 covered components", __LINE__);
    /* a 100-byte header name */
    strcpy(big, "keyId=\"k\",signature=\"abcd\",headers=\"");
    memset(big + strlen(big), 'h', 100);
    strcpy(big + 37 + 100, "\"");
    try_cavage(big, HTTPSIG_E_MALFORMED, "header name longer than 63", __LINE__);
    free(big);

    /* two Signature headers; none at all */
    struct req q;
    req_init(&q, "POST", INBOX, BODY);
    req_add(&q, "Signature", GOODSIG);
    req_add(&q, "signature", GOODSIG);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_MALFORMED, "more than one Signature header");
    req_set(&q, "Signature", NULL);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_MISSING, "no Signature header");
    /* a line break inside a covered value (a broken HTTP parser upstream) */
    req_add(&q, "Signature", GOODSIG);
    req_add(&q, "Host", "a\r\nhost: b");
    req_add(&q, "Date", "Tue, 14 Nov 2023 22:13:20 GMT");
    q.r.method = "GET";
    set_body(&q, NULL);
    expect(&q, cpub, NOW, NULL, HTTPSIG_E_MALFORMED, "signed header host is too long or bad");
    req_free(&q);
}

static void test_malformed_rfc9421(void **state)
{
    const char *S = "sig1=:" CAVAGE_C2 ":";
    const struct {
        const char *input, *sig;
        int want;
        const char *sub;
    } cases[] = {
        {"sig1=(\"@method\"", NULL, HTTPSIG_E_MALFORMED, "Signature-Input without Signature"},
        {"sig1=(\"@method\"", S, HTTPSIG_E_MALFORMED, "unterminated inner list"},
        {"sig1=(\"@method)", S, HTTPSIG_E_MALFORMED, "unterminated string"},
        {"sig1=(\"@method\" \"\\x\");keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "bad escape"},
        {"sig2=(\"@method\");keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "no Signature-Input label"},
        {"sig1=(\"@method\");keyid=\"k\"", "sig1=:@@@:", HTTPSIG_E_MALFORMED, "bad byte sequence"},
        {"sig1=(\"@method\");keyid=\"k\"", "sig1=:Q:", HTTPSIG_E_MALFORMED, "not base64"},
        {"sig1=(\"@method\");keyid=\"k\"", "sig1=\"abc\"", HTTPSIG_E_MALFORMED,
         "not a byte sequence"},
        {"sig1=(\"@method\");keyid=\"k\"", "sig1=:QQ==:, sig1=:QQ==:", HTTPSIG_E_MALFORMED,
         "duplicate label"},
        {"sig1=(\"@method\");keyid=\"k\", sig1=(\"@path\")", S, HTTPSIG_E_MALFORMED,
         "duplicate label"},
        {"sig1=(\"@method\");keyid=\"k\";keyid=\"j\"", S, HTTPSIG_E_MALFORMED,
         "duplicate parameter"},
        {"sig1=(\"@method\");keyid=\"k\",", S, HTTPSIG_E_MALFORMED, "trailing comma"},
        {"sig1=(\"@method\");keyid=\"k\" x", S, HTTPSIG_E_MALFORMED, "expected ','"},
        {"Sig1=(\"@method\");keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "expected a key"},
        {"sig1=\"@method\";keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "not an inner list"},
        {"sig1=(\"@method\")", S, HTTPSIG_E_MALFORMED, "no keyid"},
        {"sig1=(\"@method\");keyid=k", S, HTTPSIG_E_MALFORMED, "keyid is not a string"},
        {"sig1=(\"@method\");keyid=\"\"", S, HTTPSIG_E_MALFORMED, "keyid is not a string"},
        {"sig1=(\"@method\");keyid=\"k\";created=\"1\"", S, HTTPSIG_E_MALFORMED,
         "created is not a non-negative integer"},
        {"sig1=(\"@method\");keyid=\"k\";created=1234567890123456", S, HTTPSIG_E_MALFORMED,
         "bad integer"},
        {"sig1=(\"@method\");keyid=\"k\";created=1.5", S, HTTPSIG_E_MALFORMED,
         "created is not a non-negative integer"},
        {"sig1=(\"@method\" \"@method\");keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "covered twice"},
        {"sig1=(\"Host\");keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "not a lower-case field name"},
        {"sig1=(\"a b\");keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "not a lower-case field name"},
        {"sig1=(@method);keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "unexpected character"},
        {"sig1=(method);keyid=\"k\"", S, HTTPSIG_E_MALFORMED, "a component is not a string"},
        {"sig1=(\"@query-param\";name=\"x\");keyid=\"k\"", S, HTTPSIG_E_UNSUPPORTED,
         "component parameters"},
        {"sig1=(\"content-digest\";sf);keyid=\"k\"", S, HTTPSIG_E_UNSUPPORTED,
         "component parameters"},
        {"sig1=(\"@status\");keyid=\"k\"", S, HTTPSIG_E_UNSUPPORTED, "@status is not supported"},
        {"sig1=(\"@signature-params\");keyid=\"k\"", S, HTTPSIG_E_UNSUPPORTED, "not supported"},
        {"sig1=(\"@method\");keyid=\"k\";alg=\"ed25519\"", S, HTTPSIG_E_UNSUPPORTED,
         "alg \"ed25519\" is not supported"},
        {"sig1=(\"@method\");keyid=\"k\";alg=\"hmac-sha256\"", S, HTTPSIG_E_UNSUPPORTED,
         "not supported"},
        {"sig1=(\"@method\");keyid=\"k\";x=?2", S, HTTPSIG_E_MALFORMED, "unexpected character"},
        {"sig1=();keyid=\"k\";created=1700000000", S, HTTPSIG_E_WEAK, "@method is not signed"},
        /* valid syntax, every RFC 8941 type in parameters: fails only on coverage */
        {"sig0=?0, sig1=(\"@method\" \"@target-uri\");keyid=\"k\";created=1700000000;"
         "tag=tok/en:x;n=-1.25;b=:QQ==:;f=?0;t",
         S, HTTPSIG_E_WEAK, "content-digest is not signed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        try_rfc9421(cases[i].input, cases[i].sig, cases[i].want, cases[i].sub,
                    __LINE__ * 1000 + (int)i);

    /* caps: a 100k Signature-Input; 17 members; 17 components */
    char *big = malloc(100050);
    memset(big, 'a', 100049);
    big[100049] = '\0';
    try_rfc9421(big, S, HTTPSIG_E_MALFORMED, "longer than 8192", __LINE__);
    big[0] = '\0';
    for (int i = 0; i < 17; i++)
        sprintf(big + strlen(big), "%ss%d=(\"@method\");keyid=\"k\"", i ? ", " : "", i);
    try_rfc9421(big, "s16=:QQ==:", HTTPSIG_E_MALFORMED, "too many members", __LINE__);
    strcpy(big, "sig1=(");
    for (int i = 0; i < 17; i++)
        sprintf(big + strlen(big), "%s\"h%d\"", i ? " " : "", i);
    strcat(big, ");keyid=\"k\"");
    try_rfc9421(big, S, HTTPSIG_E_MALFORMED, "too many items", __LINE__);
    strcpy(big, "sig1=(\"@method\");keyid=\"");
    memset(big + strlen(big), 'k', 600);
    strcpy(big + 25 + 600, "\"");
    try_rfc9421(big, S, HTTPSIG_E_MALFORMED, "keyid is not a string of 1 to 511", __LINE__);
    free(big);
}

/* A mutation fuzzer over real signature headers: parse and verify must
 * return a valid code, with a reason, and never crash (ASan watches). */
static uint64_t rng = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void mutate(char *s, size_t cap)
{
    static const char special[] = "\"\\,=():;? *\t\x01\x7f\xff@-";
    size_t n = strlen(s);
    for (int k = 1 + (int)rnd(6); k > 0; k--) {
        size_t at = n ? rnd((unsigned)n) : 0;
        switch (rnd(5)) {
        case 0: /* replace a byte */
            if (n)
                s[at] = rnd(2) ? special[rnd(sizeof special - 1)] : (char)(1 + rnd(255));
            break;
        case 1: /* delete a range */
            if (n) {
                size_t len = 1 + rnd((unsigned)(n - at));
                memmove(s + at, s + at + len, n - at - len + 1);
                n -= len;
            }
            break;
        case 2: /* duplicate a range */
            if (n && n * 2 < cap) {
                size_t len = 1 + rnd((unsigned)(n - at));
                memmove(s + at + len, s + at, n - at + 1);
                n += len;
            }
            break;
        case 3: /* truncate */
            s[at] = '\0';
            n = at;
            break;
        default: /* insert a special character */
            if (n + 2 < cap) {
                memmove(s + at + 1, s + at, n - at + 1);
                s[at] = special[rnd(sizeof special - 1)];
                n++;
            }
        }
    }
}

static void test_fuzz(void **state)
{
    struct req base9421, basecav;
    char buf1[20000], buf2[20000];
    int counts[9] = {0};

    peer_signed(&basecav, "sign-cavage", "POST", INBOX, BODY, NOW, );
    peer_signed(&base9421, "sign-9421", "POST", INBOX, BODY, NOW, );
    for (int i = 0; i < 3000; i++) {
        struct req *b = i % 2 ? &base9421 : &basecav;
        struct req q = *b;
        struct diag why;
        const char *name = i % 2 ? (rnd(2) ? "Signature-Input" : "Signature") : "Signature";
        q.nstore = 0; /* shares b's strings */
        snprintf(buf1, sizeof buf1, "%s", req_get(b, name));
        mutate(buf1, sizeof buf1);
        for (size_t h = 0; h < q.n; h++)
            if (!strcasecmp(q.h[h].name, name))
                q.h[h].value = buf1;
        if (rnd(4) == 0) { /* and a covered header */
            const char *other = rnd(2) ? "Digest" : "Content-Digest";
            if (req_get(b, other)) {
                snprintf(buf2, sizeof buf2, "%s", req_get(b, other));
                mutate(buf2, sizeof buf2);
                for (size_t h = 0; h < q.n; h++)
                    if (!strcasecmp(q.h[h].name, other))
                        q.h[h].value = buf2;
            }
        }
        int rc = check(&q, cpub, NOW, NULL, &why);
        assert_true(rc <= 0 && rc >= HTTPSIG_E_INTERNAL && rc != HTTPSIG_E_INTERNAL);
        assert_true(rc == HTTPSIG_OK || why.msg[0]);
        counts[-rc]++;
        if (rc == HTTPSIG_OK && getenv("FUZZ_DEBUG")) /* expected: keyId edits, \-escapes */
            print_message("ok: %s: %s\n", name, buf1);
    }
    print_message("fuzz: ok %d missing %d malformed %d unsupported %d weak %d digest %d time %d "
                  "signature %d\n",
                  counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
                  counts[7]);
    req_free(&basecav);
    req_free(&base9421);
}

/* ---- keys -------------------------------------------------------------------------------- */

static void test_keys(void **state)
{
    struct diag why = {0};
    struct stat st;
    char dir[128], path[160], link_path[160];
    int created = -1;

    snprintf(dir, sizeof dir, "%s/keys", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/actor.pem", dir);

    /* missing: ENOENT, then created 0600 with nothing left beside it */
    assert_null(httpsig_key_load(path, &why));
    assert_int_equal(errno, ENOENT);
    EVP_PKEY *k1 = httpsig_key_load_or_create(path, &created, &why);
    assert_non_null(k1);
    assert_int_equal(created, 1);
    assert_int_equal(EVP_PKEY_get_bits(k1), 2048);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 1);
    /* again: the same key */
    EVP_PKEY *k2 = httpsig_key_load_or_create(path, &created, &why);
    assert_non_null(k2);
    assert_int_equal(created, 0);
    assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
    /* never replaced */
    EVP_PKEY *k3 = httpsig_key_generate(2048, &why);
    assert_int_equal(httpsig_key_save(path, k3, &why), -1);
    assert_int_equal(errno, EEXIST);
    EVP_PKEY_free(k2);
    k2 = httpsig_key_load(path, &why);
    assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
    EVP_PKEY_free(k2);
    /* group or others may not read it */
    assert_int_equal(chmod(path, 0640), 0);
    assert_null(httpsig_key_load(path, &why));
    assert_int_equal(errno, EPERM);
    assert_non_null(strstr(why.msg, "mode 640): chmod 600 it"));
    assert_null(httpsig_key_load_or_create(path, &created, &why));
    assert_int_equal(chmod(path, 0600), 0);
    /* not through a symlink, not a directory */
    snprintf(link_path, sizeof link_path, "%s/link.pem", dir);
    assert_int_equal(symlink(path, link_path), 0);
    assert_null(httpsig_key_load(link_path, &why));
    assert_int_equal(errno, ELOOP);
    assert_null(httpsig_key_load(dir, &why));
    assert_non_null(strstr(why.msg, "not a regular file"));
    /* garbage, a public key, an encrypted key (no prompt), a short key */
    snprintf(link_path, sizeof link_path, "%s/bad.pem", dir);
    write_file(link_path, "hello\n", 6);
    assert_int_equal(chmod(link_path, 0600), 0);
    assert_null(httpsig_key_load(link_path, &why));
    assert_non_null(strstr(why.msg, "not an unencrypted PEM private key"));
    write_file(link_path, cavage_pub, strlen(cavage_pub));
    assert_null(httpsig_key_load(link_path, &why));
    assert_int_equal(
        peer(NULL, "genkey", "--priv", link_path, "--pub", tmp("x.pub"), "--encrypt", "secret"), 0);
    assert_int_equal(chmod(link_path, 0600), 0);
    assert_null(httpsig_key_load(link_path, &why));
    assert_non_null(strstr(why.msg, "not an unencrypted PEM private key"));
    assert_int_equal(unlink(link_path), 0);
    assert_int_equal(
        peer(NULL, "genkey", "--priv", link_path, "--pub", tmp("x.pub"), "--bits", "1024"), 0);
    assert_int_equal(chmod(link_path, 0600), 0);
    assert_null(httpsig_key_load(link_path, &why));
    assert_non_null(strstr(why.msg, "not an RSA key of 2048 bits or more"));
    /* a peer-made 2048-bit PKCS#8 key loads */
    assert_int_equal(unlink(link_path), 0);
    assert_int_equal(peer(NULL, "genkey", "--priv", link_path, "--pub", tmp("x.pub")), 0);
    assert_int_equal(chmod(link_path, 0600), 0);
    k2 = httpsig_key_load(link_path, &why);
    assert_non_null(k2);
    EVP_PKEY_free(k2);
    /* a directory we cannot write to */
    snprintf(link_path, sizeof link_path, "%s/nope/actor.pem", dir);
    assert_int_equal(httpsig_key_save(link_path, k3, &why), -1);
    assert_int_equal(errno, ENOENT);

    /* public keys: round trip, caps, garbage */
    struct buf pem;
    buf_init(&pem, 0);
    assert_int_equal(httpsig_pubkey_pem(k1, &pem), 0);
    assert_non_null(strstr(pem.data, "-----BEGIN PUBLIC KEY-----\n"));
    assert_null(strstr(pem.data, "PRIVATE"));
    EVP_PKEY *pub = httpsig_pubkey_from_pem(pem.data, pem.len, &why);
    assert_int_equal(EVP_PKEY_eq(pub, k1), 1);
    EVP_PKEY_free(pub);
    char *big = calloc(1, HTTPSIG_MAX_PEM + 2);
    memset(big, ' ', HTTPSIG_MAX_PEM + 1);
    memcpy(big + HTTPSIG_MAX_PEM - pem.len, pem.data, pem.len);
    assert_null(httpsig_pubkey_from_pem(big, HTTPSIG_MAX_PEM + 1, &why));
    assert_non_null(strstr(why.msg, "limit 16384"));
    assert_non_null(pub = httpsig_pubkey_from_pem(big, HTTPSIG_MAX_PEM, &why));
    EVP_PKEY_free(pub);
    free(big);
    assert_null(httpsig_pubkey_from_pem("garbage", 7, &why));
    assert_non_null(strstr(why.msg, "not an RSA public key"));
    assert_null(httpsig_pubkey_from_pem("", 0, &why));
    pem.data[40] ^= 1;
    pub = httpsig_pubkey_from_pem(pem.data, pem.len, &why);
    assert_true(!pub || !EVP_PKEY_eq(pub, k1));
    EVP_PKEY_free(pub);
    buf_free(&pem);
    assert_null(httpsig_key_generate(512, &why));

    EVP_PKEY_free(k1);
    EVP_PKEY_free(k3);
}

static void test_bad_arguments(void **state)
{
    struct httpsig_out o;
    struct diag why = {0};
    struct httpsig_sign_req r = {"POST", INBOX, HOST, NULL, BODY, strlen(BODY), NOW};

    assert_int_equal(httpsig_sign(ckey, "a\"b", &r, &o, &why), HTTPSIG_E_INTERNAL);
    assert_non_null(strstr(why.msg, "keyId"));
    assert_int_equal(o.n, 0);
    r.host = "a\r\nX-Evil: 1";
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    assert_non_null(strstr(why.msg, "bad host"));
    r.host = HOST;
    r.target = "ap/inbox";
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    r.target = "/ap/inbox\n";
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    r.target = INBOX;
    r.method = "PO ST";
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    r.method = "POST";
    r.content_type = "text/plain\r\n";
    assert_int_equal(httpsig_sign(ckey, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    r.content_type = NULL;
    assert_int_equal(httpsig_sign(NULL, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    /* a public key cannot sign; an EC key is not RSA */
    assert_int_equal(httpsig_sign(cpub, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    assert_non_null(strstr(why.msg, "signing failed"));
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    assert_int_equal(httpsig_sign(ec, KEY_ID, &r, &o, &why), HTTPSIG_E_INTERNAL);
    assert_non_null(strstr(why.msg, "not an RSA key"));

    /* verifying with an EC key */
    struct req q;
    peer_signed(&q, "sign-cavage", "POST", INBOX, BODY, NOW, );
    expect(&q, ec, NOW, NULL, HTTPSIG_E_UNSUPPORTED, "not an RSA key");
    EVP_PKEY_free(ec);
    /* NULLs */
    struct httpsig_parsed p;
    q.r.headers = q.h;
    q.r.nheaders = q.n;
    assert_int_equal(httpsig_parse(&q.r, &p, NULL), HTTPSIG_OK);
    assert_int_equal(httpsig_verify(&p, &q.r, NULL, NOW, NULL, NULL), HTTPSIG_E_INTERNAL);
    assert_int_equal(httpsig_verify(NULL, &q.r, cpub, NOW, NULL, &why), HTTPSIG_E_INTERNAL);
    assert_int_equal(httpsig_parse(NULL, &p, &why), HTTPSIG_E_INTERNAL);
    q.r.method = NULL;
    assert_int_equal(httpsig_verify(&p, &q.r, cpub, NOW, NULL, &why), HTTPSIG_E_INTERNAL);
    req_free(&q);
    assert_string_equal(httpsig_result_name(HTTPSIG_E_DIGEST), "digest");
    assert_string_equal(httpsig_result_name(42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat_cavage_sign),
        cmocka_unit_test(test_kat_cavage_verify),
        cmocka_unit_test(test_kat_rfc9421),
        cmocka_unit_test(test_peer_signs_cavage),
        cmocka_unit_test(test_peer_signs_rfc9421),
        cmocka_unit_test(test_we_sign_peer_verifies),
        cmocka_unit_test(test_peer_keys),
        cmocka_unit_test(test_tamper_cavage),
        cmocka_unit_test(test_tamper_rfc9421),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_imf_date),
        cmocka_unit_test(test_malformed_cavage),
        cmocka_unit_test(test_malformed_rfc9421),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
