/*
 * ap_fetch: the policy for remote ActivityPub fetches (SPEC §7): the GETs of
 * actor documents and their keys, made with libcurl.
 *
 *   - https only; activitypub.allow_insecure_loopback (tests only) also lets
 *     http://127.0.0.1, http://[::1] and http://localhost through;
 *   - never a private, loopback, link-local, unique-local, CGNAT, multicast,
 *     unspecified, documentation or otherwise reserved address, IPv4 or IPv6
 *     (IPv4-mapped, NAT64 and 6to4 forms judged by the IPv4 address inside).
 *     The check runs on the address curl is about to connect to (its
 *     open-socket callback), after DNS, so a name that resolves, or later
 *     re-resolves (DNS rebinding), to a forbidden address is still refused;
 *     with allow_insecure_loopback, loopback addresses pass as well;
 *   - at most AP_FETCH_MAX_REDIRECTS redirects, followed here (not by curl)
 *     so that each target passes the same URL and address checks;
 *   - a total timeout over all hops (10 s by default) and a body cap (1 MiB
 *     by default): a transfer that goes past the cap is aborted;
 *   - Accept: application/activity+json, application/ld+json;
 *     profile="https://www.w3.org/ns/activitystreams"
 *     User-Agent: nashra/VERSION (+SITE_URL), no proxy from the environment.
 *
 * The caller passes extra request headers ("Name: value", no CR/LF), in
 * practice the signed-GET headers of ap/httpsig. They go with every hop:
 * a signature covers the first URL's host and target, so a server that
 * redirects a signed fetch elsewhere sees a signature that does not match.
 *
 * curl_global_init() must have been called (the daemon does it at start).
 * Blocking: ap_fetch() returns when the transfer is over or has timed out.
 */
#ifndef NASHRA_AP_FETCH_H
#define NASHRA_AP_FETCH_H

#include <stdatomic.h>

#include <stddef.h>
#include <sys/socket.h>

#include "../lib/buf.h"
#include "../lib/diag.h"

#define AP_FETCH_TIMEOUT_MS    10000L        /* SPEC §7: 10 s */
#define AP_FETCH_MAX_BODY      (1024 * 1024) /* SPEC §7: 1 MiB */
#define AP_FETCH_MAX_REDIRECTS 3
#define AP_FETCH_MAX_URL       4096
#define AP_FETCH_ACCEPT                                                                            \
    "application/activity+json, application/ld+json; "                                             \
    "profile=\"https://www.w3.org/ns/activitystreams\""

/* Results: 0, or one of these (with a one-line reason in the diag). */
#define AP_FETCH_OK          0
#define AP_FETCH_E_URL       -1 /* URL (or a redirect's target) refused or malformed */
#define AP_FETCH_E_ADDR      -2 /* refused at connect: a forbidden address */
#define AP_FETCH_E_REDIRECTS -3 /* more than AP_FETCH_MAX_REDIRECTS redirects */
#define AP_FETCH_E_TOOBIG    -4 /* the body went past the cap (transfer aborted) */
#define AP_FETCH_E_TIMEOUT   -5 /* the total timeout passed */
#define AP_FETCH_E_NET       -6 /* any other transfer failure (DNS, TLS, reset...) */
#define AP_FETCH_E_ARG       -7 /* a bad argument (header with CR/LF...) or no memory */

struct ap_fetch_opts {
    int allow_insecure_loopback; /* activitypub.allow_insecure_loopback */
    long timeout_ms;             /* over all hops; 0: AP_FETCH_TIMEOUT_MS */
    size_t max_body;             /* 0: AP_FETCH_MAX_BODY */
    const char *version;         /* for the User-Agent; NULL: "0" */
    const char *site_url;        /* for the User-Agent; NULL: left out */
    const char *ca_file;         /* trusted CAs; NULL: the system's */
    const atomic_int *cancel;    /* NULL, or set non-zero (by another thread) to give up:
                                    the transfer ends with AP_FETCH_E_NET within ~1 s */
};

/*
 * GETs url under the policy above. headers: nheaders extra "Name: value"
 * lines (may be NULL when nheaders is 0). On 0, *http_status holds the final
 * response's status (any status: the caller judges it) and body_out its body
 * (reset first; body_out's own cap applies as well as max_body). On an error
 * body_out holds whatever arrived and *http_status is 0 or the last status.
 */
__attribute__((warn_unused_result)) int ap_fetch(const struct ap_fetch_opts *o, const char *url,
                                                 const char *const *headers, size_t nheaders,
                                                 struct buf *body_out, long *http_status,
                                                 struct diag *why);

/*
 * 1 when sa (AF_INET or AF_INET6) may be connected to: a global unicast
 * address, or a loopback one when allow_loopback; 0 otherwise (and for any
 * other family).
 */
int ap_fetch_addr_ok(const struct sockaddr *sa, int allow_loopback);

/*
 * 0 when url may be fetched: absolute, https (or http to 127.0.0.1, [::1],
 * localhost with allow_insecure_loopback), a host, no userinfo, any port, and
 * an IP-literal host that passes ap_fetch_addr_ok. -1 with a reason otherwise.
 */
__attribute__((warn_unused_result)) int
ap_fetch_url_ok(const char *url, int allow_insecure_loopback, struct diag *why);

#endif
