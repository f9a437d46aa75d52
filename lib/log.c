/*
 * log: logfmt event lines on stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level min)
{
    min_level = min;
}

enum log_level log_get_level(void)
{
    return min_level;
}

void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

    char line[4096];
    int n = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s event=%s", ts, now.tv_nsec / 1000000,
                     level_names[lvl], event);
    if (n < 0)
        return;
    if (fmt && *fmt && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}

const char *log_quote(const char *s)
{
    static char ring[4][1024];
    static int next;
    char *out = ring[next];
    next = (next + 1) % 4;
    if (!s)
        s = "";
    int need = *s == '\0';
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            need = 1;
    if (!need) {
        snprintf(out, 1024, "%s", s);
        return out;
    }
    size_t o = 0;
    out[o++] = '"';
    for (const char *p = s; *p && o < 1024 - 6; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, 1024 - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    fputs("nashra: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
