/*
 * publish: one publish pass (SPEC §4, §5, §9): content folder → store →
 * announcement log → outputs. `nashra build` runs it once; the daemon runs
 * it at start and for each change.
 */
#ifndef NASHRA_PUBLISH_H
#define NASHRA_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../feeds/feeds.h"
#include "../store/store.h"

struct publish_stats {
    size_t files;     /* post files found */
    size_t rejected;  /* files reported as errors */
    size_t parsed;    /* files read and rendered (unchanged ones are not) */
    size_t published; /* posts in the outputs */
    size_t announced; /* events appended to the announcement log */
    size_t written;   /* output files whose bytes changed */
    int64_t next_due; /* date of the next scheduled post, 0 if none */
};

/*
 * Reads the content folder into the store and appends the announcements, in
 * one transaction; then rewrites the outputs that changed. Rejected posts are
 * printed on stderr as FILE:LINE:COL: error: ... Returns 0, or -1 when the
 * pass could not complete (state or output not writable): nothing is lost,
 * the next pass redoes it.
 */
int publish_run(const struct config *cfg, struct store *st, const struct html_templates *tpl,
                struct publish_stats *stats);

/*
 * The same pass for a few changed files (relative paths, reordered): only
 * they are read, only the pages they affect and the feeds and index are
 * written. Scheduled posts whose date has come are published too (npaths 0
 * does only that). Falls back to publish_run when the settings the posts
 * are rendered with changed.
 */
int publish_changes(const struct config *cfg, struct store *st, const struct html_templates *tpl,
                    char **paths, size_t npaths, struct publish_stats *stats);

/* Asked now and then during a long pass (NULL: never): 1 makes the pass give
 * up (state rolled back, or outputs left for the next pass) so the daemon
 * stops within its deadline. */
extern int (*publish_should_stop)(void);

/* Reads every post without writing anything; prints each problem. Returns
 * the number of problems, or -1 when the folder cannot be read. */
long publish_check(const struct config *cfg);

#endif
