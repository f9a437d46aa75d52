/*
 * timefmt: the dates of posts and feeds, independent of the C locale.
 *
 * Parsing: RFC 3339 ("2024-05-02T08:30:00Z", "...+03:00", fractional seconds
 * allowed and dropped), "YYYY-MM-DD" (00:00) and "YYYY-MM-DD HH:MM[:SS]" in
 * the given IANA time zone. Impossible dates (2024-02-30) are errors.
 * Formatting: RFC 822/1123 with English names ("Sat, 13 Apr 2024 07:00:00
 * +0000") and RFC 3339 in UTC ("2024-04-13T07:00:00Z"). Time zones are read
 * from the system's zoneinfo through TZ, set once with timefmt_set_zone().
 */
#ifndef NASHRA_TIMEFMT_H
#define NASHRA_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Sets the zone for local dates ("Asia/Riyadh"); -1 if zoneinfo lacks it. */
int timefmt_set_zone(const char *tzname);

/* Parses s into seconds since the epoch; -1 on error with msg (if not NULL)
 * set to a short English reason. */
int timefmt_parse(const char *s, int64_t *out, const char **msg);

/* Writes into out (at least 40 bytes); returns out. */
char *timefmt_rfc822(int64_t t, char *out, size_t outlen);
char *timefmt_rfc3339(int64_t t, char *out, size_t outlen);

/* "13 April 2024" (en) or "13 أبريل 2024" (ar), in the zone set above. */
char *timefmt_human(int64_t t, const char *lang, char *out, size_t outlen);

/* The year of t in the zone set above, and the first second of a year there
 * (archive pages are by local year). */
int timefmt_year(int64_t t);
int64_t timefmt_year_start(int year);

/* Now, or NASHRA_NOW (seconds since the epoch, or RFC 3339) when set: tests
 * pin the clock with it. */
int64_t timefmt_now(void);

#endif
