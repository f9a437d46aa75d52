/*
 * timefmt: parsing and formatting the dates of posts and feeds, independent
 * of the C locale: RFC 3339 (parse and format), RFC 822/1123 dates (format,
 * English names), "YYYY-MM-DD[ HH:MM[:SS]]" in the zone set with
 * timefmt_set_zone() (through TZ and the system's zoneinfo).
 *
 * Not thread-safe: setenv("TZ") and tzset() change process-wide state; the
 * zone is meant to be set once at startup (and on a config reload).
 */
#include "timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The instants RFC 3339 can write (years 0001 to 9999, UTC): a date that an
 * offset, a leap second or the zone moves outside would be formatted with a
 * five-digit year or year 0000, which no feed reader (nor we) would read. */
#define TIME_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TIME_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

#define ZONEINFO_DIR "/usr/share/zoneinfo/"
#define ZONE_MAX     200

static int zone_ready; /* TZ has been set by us */

static const char *const day_en[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const mon_en3[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const mon_en[12] = {"January",   "February", "March",    "April",
                                       "May",       "June",     "July",     "August",
                                       "September", "October",  "November", "December"};
static const char *const mon_ar[12] = {"يناير", "فبراير", "مارس",   "أبريل",  "مايو",   "يونيو",
                                       "يوليو", "أغسطس",  "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"};

/* A zone name is a relative path under zoneinfo: letters, digits, "/_+-."
 * with no ".." and no leading '/', so TZ can never point elsewhere. */
static int zone_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > ZONE_MAX || name[0] == '/' || strstr(name, ".."))
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '+' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int timefmt_set_zone(const char *zone)
{
    char path[sizeof(ZONEINFO_DIR) + ZONE_MAX + 1];
    char tz[ZONE_MAX + 2];
    struct stat st;

    if (!zone || !*zone)
        zone = "UTC";
    if (!zone_name_ok(zone))
        return -1;
    snprintf(path, sizeof path, "%s%s", ZONEINFO_DIR, zone);
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    snprintf(tz, sizeof tz, ":%s", zone);
    if (setenv("TZ", tz, 1) < 0)
        return -1;
    tzset();
    zone_ready = 1;
    return 0;
}

/* Local dates default to UTC, whatever the environment says. */
static void zone_default(void)
{
    if (zone_ready)
        return;
    if (timefmt_set_zone("UTC") < 0) {
        setenv("TZ", "UTC0", 1); /* no zoneinfo: the POSIX form needs none */
        tzset();
        zone_ready = 1;
    }
}

/* Reads exactly n digits at *p into *v; 0, or -1 if a digit is missing. */
static int read_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* The fields of a date as written; off is in seconds east of UTC. */
struct tf_fields {
    int year, mon, day, hour, min, sec;
    int has_time, has_sec, has_frac, has_zone, t_sep;
    int off;
};

/* "Z", "z" or "+HH:MM"/"-HH:MM" at *p. */
static int parse_zone(const char **p, struct tf_fields *f, const char **msg)
{
    int oh, om;
    char sign = **p;

    if (sign == 'Z' || sign == 'z') {
        (*p)++;
        f->has_zone = 1;
        return 0;
    }
    if (sign != '+' && sign != '-')
        return 0;
    (*p)++;
    if (read_digits(p, 2, &oh) < 0 || **p != ':' || (++*p, read_digits(p, 2, &om)) < 0) {
        *msg = "bad UTC offset (expected +HH:MM)";
        return -1;
    }
    if (oh > 23 || om > 59) {
        *msg = "UTC offset out of range";
        return -1;
    }
    f->off = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
    f->has_zone = 1;
    return 0;
}

/* "HH:MM[:SS[.frac]]" at *p. */
static int parse_clock(const char **p, struct tf_fields *f)
{
    if (read_digits(p, 2, &f->hour) < 0 || **p != ':')
        return -1;
    (*p)++;
    if (read_digits(p, 2, &f->min) < 0)
        return -1;
    f->has_time = 1;
    if (**p != ':')
        return 0;
    (*p)++;
    if (read_digits(p, 2, &f->sec) < 0)
        return -1;
    f->has_sec = 1;
    if (**p != '.')
        return 0;
    (*p)++;
    if (**p < '0' || **p > '9')
        return -1;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    f->has_frac = 1;
    return 0;
}

/* Splits s into fields and checks the grammar (not the ranges). */
static int parse_fields(const char *s, struct tf_fields *f, const char **msg)
{
    static const char bad[] = "not a date (expected YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339)";
    const char *p = s;

    memset(f, 0, sizeof *f);
    *msg = bad;
    if (read_digits(&p, 4, &f->year) < 0 || *p++ != '-' || read_digits(&p, 2, &f->mon) < 0 ||
        *p++ != '-' || read_digits(&p, 2, &f->day) < 0)
        return -1;
    if (*p == '\0')
        return 0;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    f->t_sep = *p++ != ' ';
    if (parse_clock(&p, f) < 0 || parse_zone(&p, f, msg) < 0)
        return -1;
    if (*p != '\0')
        return -1;
    if (f->has_zone && !f->has_sec) {
        *msg = "RFC 3339 date needs seconds (YYYY-MM-DDTHH:MM:SSZ)";
        return -1;
    }
    if (!f->has_zone && (f->t_sep || f->has_frac)) {
        *msg = "RFC 3339 date needs Z or a UTC offset";
        return -1;
    }
    return 0;
}

static int check_ranges(const struct tf_fields *f, const char **msg)
{
    if (f->year < 1 || f->mon < 1 || f->mon > 12 || f->day < 1 ||
        f->day > days_in_month(f->year, f->mon)) {
        *msg = "no such date";
        return -1;
    }
    if (f->hour > 23 || f->min > 59 || f->sec > 60) {
        *msg = "no such time";
        return -1;
    }
    return 0;
}

int timefmt_parse(const char *s, int64_t *out, const char **msg)
{
    const char *dummy;
    struct tf_fields f;
    struct tm tm;
    time_t t;

    if (!msg)
        msg = &dummy;
    if (!s) {
        *msg = "no date";
        return -1;
    }
    if (parse_fields(s, &f, msg) < 0 || check_ranges(&f, msg) < 0)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = f.year - 1900;
    tm.tm_mon = f.mon - 1;
    tm.tm_mday = f.day;
    tm.tm_hour = f.hour;
    tm.tm_min = f.min;
    tm.tm_sec = f.sec; /* a leap second (60) becomes the next minute */
    if (f.has_zone) {
        t = timegm(&tm) - f.off;
    } else {
        zone_default();
        tm.tm_isdst = -1;
        errno = 0;
        t = mktime(&tm);
        if (t == (time_t)-1 && errno != 0) {
            *msg = "date out of range";
            return -1;
        }
    }
    if ((int64_t)t < TIME_MIN || (int64_t)t > TIME_MAX) {
        *msg = "date out of range (years 0001 to 9999 in UTC)";
        return -1;
    }
    *out = (int64_t)t;
    return 0;
}

char *timefmt_rfc822(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outlen, "%s", "");
        return out;
    }
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", day_en[tm.tm_wday], tm.tm_mday,
             mon_en3[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}

char *timefmt_rfc3339(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outlen, "%s", "");
        return out;
    }
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}

/* "ar", "ar-SA", "ar_SA": Arabic month names. */
static int lang_is_ar(const char *lang)
{
    return lang && (lang[0] == 'a' || lang[0] == 'A') && (lang[1] == 'r' || lang[1] == 'R') &&
           (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_');
}

char *timefmt_human(int64_t t, const char *lang, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    zone_default();
    if (!localtime_r(&tt, &tm)) {
        snprintf(out, outlen, "%s", "");
        return out;
    }
    snprintf(out, outlen, "%d %s %d", tm.tm_mday, (lang_is_ar(lang) ? mon_ar : mon_en)[tm.tm_mon],
             tm.tm_year + 1900);
    return out;
}

int64_t timefmt_now(void)
{
    const char *env = getenv("NASHRA_NOW");
    int64_t t;

    if (env && *env) {
        char *end;
        errno = 0;
        long long v = strtoll(env, &end, 10);
        if (errno == 0 && *end == '\0')
            return (int64_t)v;
        if (timefmt_parse(env, &t, NULL) == 0)
            return t;
    }
    return (int64_t)time(NULL);
}

int timefmt_year(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    zone_default();
    return localtime_r(&tt, &tm) ? tm.tm_year + 1900 : 1970;
}

int64_t timefmt_year_start(int year)
{
    struct tm tm = {.tm_year = year - 1900, .tm_mday = 1, .tm_isdst = -1};

    zone_default();
    return (int64_t)mktime(&tm);
}
