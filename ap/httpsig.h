/*
 * httpsig: HTTP message signatures for ActivityPub (SPEC §7): signing the
 * requests we send, verifying the ones our inbox receives, and the actor's
 * RSA key pair. OpenSSL's libcrypto (EVP only) does the cryptography.
 *
 * Signing follows draft-cavage-http-signatures-12 the way Mastodon does it:
 * rsa-sha256 over "(request-target) host date digest" for a request with a
 * body ("(request-target) host date" without), a "Digest: SHA-256=..." (RFC
 * 3230) and an RFC 9530 "Content-Digest: sha-256=:...:" of the body, and an
 * IMF-fixdate Date (RFC 9110 §5.6.7).
 *
 * Verifying accepts draft-cavage-12 ("Signature" or "Authorization:
 * Signature"; algorithm rsa-sha256 or hs2019) and RFC 9421 ("Signature-Input"
 * + "Signature"; alg rsa-v1_5-sha256 or rsa-pss-sha512) in two steps, because
 * the key has to be fetched in between:
 *
 *     struct httpsig_parsed sig;
 *     if (httpsig_parse(&req, &sig, &why) == HTTPSIG_OK) {
 *         EVP_PKEY *pub = fetch_actor_key(sig.key_id);  (the caller's part)
 *         rc = httpsig_verify(&sig, &req, pub, now, NULL, &why);
 *     }
 *
 * A request passes only when: the signature covers the method and target,
 * the host, the date (Date header or created parameter) and, when the
 * request has a body, a Digest or Content-Digest; every Digest/Content-Digest
 * present matches the body; Date/created lie in the policy's window and
 * expires is not past; and the signature verifies with the key. Every failure
 * returns a negative HTTPSIG_E_* code and a one-line reason in the diag (for
 * the log); hostile input never crashes nor allocates without a cap.
 *
 * Nothing here logs, reads the clock or touches the network: the caller
 * passes "now" and the keys.
 */
#ifndef NASHRA_HTTPSIG_H
#define NASHRA_HTTPSIG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "../lib/buf.h"
#include "../lib/diag.h"

/* Limits on what a request may carry (a request over a limit is MALFORMED). */
#define HTTPSIG_MAX_HEADER     8192  /* a Signature / Signature-Input value */
#define HTTPSIG_MAX_VALUE      8192  /* a covered header's (joined) value */
#define HTTPSIG_MAX_COMPONENTS 16    /* covered headers / components */
#define HTTPSIG_MAX_NAME       64    /* a component name, an RFC 9421 label */
#define HTTPSIG_MAX_KEYID      512   /* keyId / keyid */
#define HTTPSIG_MAX_SIG        1024  /* signature bytes: RSA keys up to 8192 bits */
#define HTTPSIG_MAX_PARAMS     2048  /* the serialized RFC 9421 @signature-params */
#define HTTPSIG_MAX_PEM        16384 /* a public key PEM */

/* The Date window by default: SPEC §7, "no more than 1 hour off". */
#define HTTPSIG_DEFAULT_MAX_AGE    3600
#define HTTPSIG_DEFAULT_MAX_FUTURE 3600
#define HTTPSIG_DEFAULT_MIN_BITS   2048

/* Results. Only HTTPSIG_E_SIGNATURE means "this key does not verify it": the
 * one case where re-fetching the key (it may have rotated) can help. */
enum httpsig_result {
    HTTPSIG_OK = 0,
    HTTPSIG_E_MISSING = -1,     /* no signature header at all: unsigned request */
    HTTPSIG_E_MALFORMED = -2,   /* syntax, caps, base64, a covered header absent */
    HTTPSIG_E_UNSUPPORTED = -3, /* algorithm, component or key type we do not do */
    HTTPSIG_E_WEAK = -4,        /* a component policy requires is not covered */
    HTTPSIG_E_DIGEST = -5,      /* Digest/Content-Digest missing, unusable or wrong */
    HTTPSIG_E_TIME = -6,        /* Date/created out of the window, or expired */
    HTTPSIG_E_SIGNATURE = -7,   /* the signature does not verify with this key */
    HTTPSIG_E_INTERNAL = -8,    /* out of memory, OpenSSL failure, bad arguments */
};

/* "ok", "missing", "malformed", ... : a short name for logs and metrics. */
const char *httpsig_result_name(int rc);

/* ---- Signing (outgoing requests) ---------------------------------------------- */

/* What to sign. Strings must be free of CR, LF and other controls. */
struct httpsig_sign_req {
    const char *method;       /* "POST", "GET" */
    const char *target;       /* path and query as on the request line: "/users/a/inbox" */
    const char *host;         /* the Host header as sent: "example.org", "example.org:8443" */
    const char *content_type; /* NULL, or a Content-Type to send and sign */
    const void *body;         /* NULL: no body and no digests (GET); else body_len bytes */
    size_t body_len;
    int64_t now; /* seconds since the epoch, for Date */
};

/* The header lines to send, in order: Host, Date, [Digest, Content-Digest],
 * [Content-Type], Signature. Each is "Name: value" without CR LF, ready for
 * curl_slist_append() (sending Host ourselves makes curl send exactly the
 * signed value). Owned by the struct: httpsig_out_free(). */
#define HTTPSIG_OUT_MAX 6
struct httpsig_out {
    size_t n;
    char *line[HTTPSIG_OUT_MAX];
};

/*
 * Signs r with key (an RSA private key) under key_id (the actor's
 * "{actor}#main-key") and fills out (zeroed first; free it even on failure).
 * Returns HTTPSIG_OK, or HTTPSIG_E_INTERNAL with why set (bad argument such
 * as a CR in host or a quote in key_id, not an RSA key, OpenSSL failure).
 */
__attribute__((warn_unused_result)) int httpsig_sign(EVP_PKEY *key, const char *key_id,
                                                     const struct httpsig_sign_req *r,
                                                     struct httpsig_out *out, struct diag *why);
void httpsig_out_free(struct httpsig_out *out);

/* Appends the lines as "Name: value\r\n" (for a raw HTTP/1.1 writer). */
__attribute__((warn_unused_result)) int httpsig_out_join(const struct httpsig_out *out,
                                                         struct buf *b);

/* Date as HTTP wants it: "Sun, 06 Nov 1994 08:49:37 GMT" (out: 30 bytes or more). */
char *httpsig_imf_date(int64_t t, char *out, size_t outlen);

/* Parses an IMF-fixdate (also accepting "UTC" or "+0000" for "GMT"); -1 if it
 * is not one. */
int httpsig_parse_imf_date(const char *s, int64_t *out);

/* ---- Verifying (incoming requests) ---------------------------------------------- */

struct httpsig_header {
    const char *name; /* any case */
    const char *value;
};

/* A received request. Header lines are given as received, in order; a name
 * repeated is several lines (their values are joined with ", "). Behind the
 * TLS proxy, "host" must be the Host the client sent (X-Forwarded-Host is
 * the proxy's business, not ours). */
struct httpsig_request {
    const char *method; /* as on the request line: "POST" */
    const char *target; /* path and query as on the request line: "/ap/inbox" */
    const char *scheme; /* for RFC 9421 @target-uri and @scheme; NULL means "https" */
    const struct httpsig_header *headers;
    size_t nheaders;
    const void *body; /* may be NULL when body_len is 0 */
    size_t body_len;
};

enum httpsig_scheme {
    HTTPSIG_CAVAGE = 1,  /* draft-cavage-http-signatures-12 */
    HTTPSIG_RFC9421 = 2, /* RFC 9421 */
};

enum httpsig_alg {
    HTTPSIG_ALG_UNSPECIFIED = 0, /* not given: PKCS#1 v1.5 SHA-256, then PSS SHA-512 */
    HTTPSIG_ALG_RSA_SHA256,      /* cavage rsa-sha256, RFC 9421 rsa-v1_5-sha256 */
    HTTPSIG_ALG_HS2019,          /* cavage hs2019: as UNSPECIFIED, for RSA keys */
    HTTPSIG_ALG_RSA_PSS_SHA512,  /* RFC 9421 rsa-pss-sha512 */
};

/* A parsed signature. Plain data, no heap: nothing to free, copyable. */
struct httpsig_parsed {
    enum httpsig_scheme scheme;
    enum httpsig_alg alg;
    char key_id[HTTPSIG_MAX_KEYID]; /* the key to fetch */
    char label[HTTPSIG_MAX_NAME];   /* RFC 9421: the signature's label ("sig1") */
    size_t ncomp;                   /* covered components, lower case, in order: */
    char comp[HTTPSIG_MAX_COMPONENTS][HTTPSIG_MAX_NAME]; /* "(request-target)", "@method", "host" */
    int has_created, has_expires;
    int64_t created, expires;
    size_t siglen;
    unsigned char sig[HTTPSIG_MAX_SIG];
    char params[HTTPSIG_MAX_PARAMS]; /* RFC 9421: the @signature-params value */
};

/*
 * Reads the signature of req into out: RFC 9421 when Signature-Input is
 * present (the first label found in both Signature-Input and Signature),
 * else draft-cavage from Signature or "Authorization: Signature ...".
 * Returns HTTPSIG_OK, HTTPSIG_E_MISSING, HTTPSIG_E_MALFORMED or
 * HTTPSIG_E_UNSUPPORTED, with why (may be NULL) set on failure.
 */
__attribute__((warn_unused_result)) int httpsig_parse(const struct httpsig_request *req,
                                                      struct httpsig_parsed *out, struct diag *why);

/* What verification insists on; NULL means the defaults above. */
struct httpsig_policy {
    int64_t max_age;    /* seconds Date/created may lie in the past */
    int64_t max_future; /* seconds they may lie in the future (clock skew) */
    int min_bits;       /* smallest RSA key accepted */
};

/*
 * Checks sig (from httpsig_parse on the same req) against req with pub, the
 * public key of sig->key_id, at time now (seconds since the epoch). Returns
 * HTTPSIG_OK or a negative HTTPSIG_E_* with why (may be NULL) set. The
 * checks run cheapest first (coverage, time, digests) and the signature last,
 * so HTTPSIG_E_SIGNATURE means everything else was right.
 */
__attribute__((warn_unused_result)) int
httpsig_verify(const struct httpsig_parsed *sig, const struct httpsig_request *req, EVP_PKEY *pub,
               int64_t now, const struct httpsig_policy *pol, struct diag *why);

/* Appends the signing string (cavage) or signature base (RFC 9421) that sig
 * covers in req: for logs and tests. HTTPSIG_OK or HTTPSIG_E_MALFORMED. */
__attribute__((warn_unused_result)) int httpsig_signature_base(const struct httpsig_parsed *sig,
                                                               const struct httpsig_request *req,
                                                               struct buf *out, struct diag *why);

/* ---- Keys ------------------------------------------------------------------------ */

/*
 * A public key from PEM text (a remote actor's publicKeyPem): SubjectPublic-
 * KeyInfo ("BEGIN PUBLIC KEY") or PKCS#1 ("BEGIN RSA PUBLIC KEY"), leading
 * blanks and CR LF line ends tolerated, at most HTTPSIG_MAX_PEM bytes, RSA
 * only. Returns a key the caller frees with EVP_PKEY_free(), or NULL with why.
 */
EVP_PKEY *httpsig_pubkey_from_pem(const char *pem, size_t len, struct diag *why);

/* Appends key's public half as SubjectPublicKeyInfo PEM (the actor's
 * publicKeyPem). 0, or -1 on failure. */
__attribute__((warn_unused_result)) int httpsig_pubkey_pem(EVP_PKEY *key, struct buf *out);

/* A new RSA key of bits bits (2048 for the actor), or NULL with why. */
EVP_PKEY *httpsig_key_generate(int bits, struct diag *why);

/*
 * Writes key (unencrypted PKCS#8 PEM) to path, mode 0600, never replacing
 * a file: it goes to a fresh temporary file (O_EXCL) that is fsynced and then
 * linked to path, so path is either absent or complete. 0, or -1 with why
 * (errno EEXIST when path exists).
 */
__attribute__((warn_unused_result)) int httpsig_key_save(const char *path, EVP_PKEY *key,
                                                         struct diag *why);

/* Reads the private key at path: a regular file (not a symlink) of at most
 * 64 KiB, no access for group or others (like ssh, it refuses otherwise:
 * "chmod 600" fixes it), an RSA key of at least 2048 bits, not encrypted.
 * NULL with why (errno ENOENT when there is no file). */
EVP_PKEY *httpsig_key_load(const char *path, struct diag *why);

/* The actor key on startup: loads path, or creates a 2048-bit key there when
 * there is none (*created set to 1). NULL with why. */
EVP_PKEY *httpsig_key_load_or_create(const char *path, int *created, struct diag *why);

#endif
