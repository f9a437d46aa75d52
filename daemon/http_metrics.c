/*
 * http_metrics: the built-in routes /healthz ("ok") and /metrics, the
 * Prometheus text exposition format 0.0.4: the daemon's own metrics from
 * its callback, then the HTTP server's counters.
 */
#include <string.h>

#include "http_int.h"

void http_metrics_count(struct http_server *srv, int status, uint64_t bytes)
{
    if (status >= 100 && status < 600)
        srv->by_code[status]++;
    srv->resp_bytes += bytes;
}

static int http_metrics_own(struct http_server *srv, struct buf *out)
{
    if (buf_puts(out, "# HELP nashra_http_requests_total HTTP requests answered, by status.\n"
                      "# TYPE nashra_http_requests_total counter\n") < 0)
        return -1;
    for (int code = 100; code < 600; code++)
        if (srv->by_code[code] && buf_printf(out, "nashra_http_requests_total{code=\"%d\"} %llu\n",
                                             code, (unsigned long long)srv->by_code[code]) < 0)
            return -1;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return buf_printf(out,
                      "# HELP nashra_http_response_bytes_total Bytes of response bodies.\n"
                      "# TYPE nashra_http_response_bytes_total counter\n"
                      "nashra_http_response_bytes_total %llu\n"
                      "# HELP nashra_http_request_timeouts_total Connections closed because a "
                      "request did not arrive whole within the request timeout.\n"
                      "# TYPE nashra_http_request_timeouts_total counter\n"
                      "nashra_http_request_timeouts_total %llu\n"
                      "# HELP nashra_http_connections Open HTTP connections.\n"
                      "# TYPE nashra_http_connections gauge\n"
                      "nashra_http_connections %u\n",
                      (unsigned long long)srv->resp_bytes, (unsigned long long)srv->deadline_cuts,
                      di ? di->num_connections : 0u);
}

static enum http_verdict http_metrics_page(const struct http_request *rq, struct http_response *rs,
                                           void *arg)
{
    (void)rq;
    struct http_server *srv = arg;
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (srv->metrics_fn && srv->metrics_fn(srv->metrics_arg, &rs->body) < 0)
        return HTTP_ERROR;
    if (rs->body.len && rs->body.data[rs->body.len - 1] != '\n' && buf_putc(&rs->body, '\n') < 0)
        return HTTP_ERROR;
    return http_metrics_own(srv, &rs->body) < 0 ? HTTP_ERROR : HTTP_DONE;
}

static enum http_verdict http_healthz(const struct http_request *rq, struct http_response *rs,
                                      void *arg)
{
    (void)rq;
    (void)arg;
    return http_response_text(rs, 200, "ok") < 0 ? HTTP_ERROR : HTTP_DONE;
}

int http_metrics_routes(struct http_server *srv)
{
    if (http_route_capped(srv, "GET", "/healthz", 0, http_healthz, NULL) < 0 ||
        http_route_capped(srv, "GET", "/metrics", 0, http_metrics_page, srv) < 0)
        return -1;
    return 0;
}
