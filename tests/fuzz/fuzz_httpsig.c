/*
 * fuzz_httpsig: the signature headers of a request our inbox receives
 * (SPEC §7), through httpsig_parse(), httpsig_signature_base() and
 * httpsig_verify() (draft-cavage and RFC 9421), plus the IMF-fixdate and
 * public-key PEM readers. The input is a request in text form:
 *
 *     METHOD TARGET\n
 *     Name: value\n          (any number, in order; a repeated name is kept)
 *     \n
 *     body
 *
 * The body is also given to httpsig_pubkey_from_pem() (a remote actor's
 * publicKeyPem). Verification runs at a fixed time (Tue, 14 Nov 2023
 * 22:13:20 GMT) with a key made once at start.
 */
#include <openssl/evp.h>
#include <strings.h>

#include "../../ap/httpsig.h"
#include "fuzz.h"

#define NOW     1700000000
#define MAX_HDR 64

static EVP_PKEY *key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct diag d;
    if (!(key = httpsig_key_generate(2048, &d)))
        abort();
    return 0;
}

/* The next line of s (up to '\n', which is replaced by a NUL); NULL at the end. */
static char *next_line(char **s, char *end)
{
    char *line = *s;
    if (line >= end)
        return NULL;
    char *nl = memchr(line, '\n', (size_t)(end - line));
    if (!nl) {
        *s = end;
        return line; /* end is a NUL */
    }
    *nl = '\0';
    *s = nl + 1;
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size), *p = s, *end = s + size, *line;
    struct httpsig_header h[MAX_HDR];
    struct httpsig_request req = {.method = "POST", .target = "/ap/inbox", .headers = h};
    struct httpsig_parsed *sig = malloc(sizeof *sig);
    struct diag why;
    int64_t t;

    if (!sig)
        abort();
    if ((line = next_line(&p, end))) {
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = '\0';
            req.method = line;
            req.target = sp + 1;
            if (!strncmp(req.target, "http://", 7))
                req.scheme = "http";
        }
    }
    while ((line = next_line(&p, end)) && *line && req.nheaders < MAX_HDR) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        h[req.nheaders].name = line;
        h[req.nheaders].value = colon[1] == ' ' ? colon + 2 : colon + 1;
        if (!strcasecmp(line, "date"))
            (void)httpsig_parse_imf_date(h[req.nheaders].value, &t);
        req.nheaders++;
    }
    req.body = p;
    req.body_len = (size_t)(end - p);

    int rc = httpsig_parse(&req, sig, &why);
    if (rc == HTTPSIG_OK) {
        struct buf base;
        buf_init(&base, 1 << 16);
        if (httpsig_signature_base(sig, &req, &base, &why) == HTTPSIG_OK && !base.len)
            abort();
        buf_free(&base);
        rc = httpsig_verify(sig, &req, key, NOW, NULL, &why);
        if (rc == HTTPSIG_OK)
            abort(); /* nobody but us holds the key */
    }
    if (rc > 0 || rc < HTTPSIG_E_INTERNAL)
        abort();

    EVP_PKEY *pub = httpsig_pubkey_from_pem(req.body, req.body_len, &why);
    EVP_PKEY_free(pub);
    free(sig);
    free(s);
    return 0;
}
