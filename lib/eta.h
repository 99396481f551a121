/* eta.h — the reply-by time (eta.c, issue 4): business-hours calendar in
 * a time zone read from the TZ database, and the promise derived from
 * measured first-reply times. Used by ack.c. */
#ifndef CANDOR_ETA_H
#define CANDOR_ETA_H
#include "internal.h"

struct candor_store;

struct candor_eta_promise {
    int64_t by;            /* reply-by time, Unix UTC */
    bool measured;         /* true: from history ("we will"); false: target ("we aim to") */
    size_t samples;        /* first replies the estimate rests on */
    bool pooled;           /* measured over all intents (too few for this one) */
    double business_hours; /* the business time laid onto the calendar */
    int history_days;      /* the look-back window */
    int percentile;        /* e.g. 90 */
    double correction;     /* >= 1: how much recent promises fell short */
};

/* The promise for a new ticket of INTENT arriving at NOW, from the first
 * replies in STORE (NULL: none, so the target). */
CANDOR_HIDDEN candor_status_t candor__eta_promise(const struct candor_ctx *ctx,
        struct candor_store *store, const char *intent, int64_t now,
        struct candor_eta_promise *out);
/* Seconds of business time between A and B (0 when B <= A). */
CANDOR_HIDDEN int64_t candor__eta_business_seconds(const struct candor_ctx *ctx, int64_t a, int64_t b);
/* The time at which SECS of business time have passed after A. */
CANDOR_HIDDEN int64_t candor__eta_add_business(const struct candor_ctx *ctx, int64_t a, int64_t secs);
/* T as local time of the calendar: "2026-11-24 10:00 CET" into BUF. */
CANDOR_HIDDEN void candor__eta_format_local(const struct candor_ctx *ctx, int64_t t,
                                            char *buf, size_t size);
/* The calendar in words: "Mon-Fri 09:00-17:00 [Europe/Paris]". Borrowed. */
CANDOR_HIDDEN const char *candor__eta_calendar(const struct candor_ctx *ctx);
/* The UTC offset (seconds east) of the calendar's zone at T. */
CANDOR_HIDDEN int32_t candor__eta_utc_offset(const struct candor_ctx *ctx, int64_t t);
/* The English basis sentence of P for INTENT into a new string. */
CANDOR_HIDDEN char *candor__eta_basis(const struct candor_ctx *ctx, const struct candor_eta_promise *p,
                                      const char *intent);
/* The configured minimum number of samples for a measured promise. */
CANDOR_HIDDEN int candor__eta_min_samples(const struct candor_ctx *ctx);
#endif
