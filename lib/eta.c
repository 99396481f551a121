/*
 * eta.c — the reply-by time an acknowledgement may promise.
 *
 * The calendar: business hours per weekday (<hours days= open= close=>,
 * several per day allowed), holidays (<holiday date="YYYY-MM-DD"/>) and a
 * time zone from the TZ database (<eta timezone="Europe/Paris">, else $TZ
 * at load time, else /etc/localtime). The zone file (TZif, RFC 8536) is
 * read once into the ctx, so the shared ctx never touches the process's
 * TZ or calls localtime(); times after the file's last transition use its
 * last offset (Debian ships "fat" files that run to 2037).
 *
 * The promise: the PERCENTILE (90th by default) of the business time to
 * first reply of the last HISTORY-DAYS days for this intent (at most
 * MAX-SAMPLES, newest first). Open tickets of the same window that have
 * already waited longer than that are counted with their current age — a
 * queue that is slowing down pushes the promise out before the late
 * replies are in. Too few samples for the intent: the same over all
 * intents; still too few: the configured target, worded "we aim to".
 * The business time is laid onto the calendar from now and rounded up to
 * the next quarter hour.
 *
 * Limits: calendar walks stop after 3660 days; zone files over 1 MiB are
 * refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "eta.h"
#include "store.h"

#define MAX_WALK_DAYS 3660
#define MAX_INTERVALS 4
#define MAX_TZ_BYTES (1024 * 1024)
#define CONFIDENCE_Z 1.0
#define CALIBRATION_DAYS 3
#define MAX_CORRECTION 4.0

struct interval { int open, close; };   /* minutes since local midnight */

struct target { char *intent; double hours; };

struct candor_eta_conf {
    /* zone */
    int64_t *trans;        /* transition times, ascending */
    uint8_t *trans_type;
    size_t n_trans;
    int32_t *type_off;
    char (*type_abbr)[8];
    size_t n_types;
    int first_std;         /* type used before the first transition */
    char *zone_name;
    /* calendar */
    struct interval hours[7][MAX_INTERVALS];   /* [0]=Sunday */
    int n_hours[7];
    int64_t *holidays;     /* local day numbers, sorted */
    size_t n_holidays;
    char calendar[160];
    /* estimate */
    int percentile;
    int min_samples;
    int history_days;
    int max_samples;
    double half_life_days;  /* weight of a ticket halves every so many days */
    struct target *targets;
    size_t n_targets;
    double default_target;  /* business hours */
};

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{ return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static int64_t be64(const unsigned char *p)
{ return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

static bool tz_parse(struct candor_eta_conf *c, const unsigned char *d, size_t len)
{
    if (len < 44 || memcmp(d, "TZif", 4) != 0)
        return false;
    int version = d[4] ? d[4] - '0' : 1;
    size_t cnt[6];
    for (int i = 0; i < 6; i++)
        cnt[i] = be32(d + 20 + 4 * i);
    /* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
    size_t tsize = 4;
    const unsigned char *p = d + 44;
    if (version >= 2) {
        size_t v1 = cnt[3] * 4 + cnt[3] + cnt[4] * 6 + cnt[5] + cnt[2] * 8 + cnt[1] + cnt[0];
        if (44 + v1 + 44 > len || memcmp(d + 44 + v1, "TZif", 4) != 0)
            return false;
        const unsigned char *h = d + 44 + v1;
        for (int i = 0; i < 6; i++)
            cnt[i] = be32(h + 20 + 4 * i);
        p = h + 44;
        tsize = 8;
    }
    size_t need = cnt[3] * tsize + cnt[3] + cnt[4] * 6 + cnt[5];
    if (cnt[4] == 0 || cnt[4] > 256 || cnt[3] > 100000 || (size_t)(d + len - p) < need)
        return false;
    c->n_trans = cnt[3];
    c->n_types = cnt[4];
    c->trans = calloc(c->n_trans + 1, sizeof *c->trans);
    c->trans_type = calloc(c->n_trans + 1, 1);
    c->type_off = calloc(c->n_types, sizeof *c->type_off);
    c->type_abbr = calloc(c->n_types, sizeof *c->type_abbr);
    if (!c->trans || !c->trans_type || !c->type_off || !c->type_abbr)
        return false;
    for (size_t i = 0; i < c->n_trans; i++)
        c->trans[i] = tsize == 8 ? be64(p + 8 * i) : (int32_t)be32(p + 4 * i);
    p += c->n_trans * tsize;
    for (size_t i = 0; i < c->n_trans; i++) {
        c->trans_type[i] = p[i];
        if (p[i] >= c->n_types)
            return false;
    }
    p += c->n_trans;
    const unsigned char *abbr = p + c->n_types * 6;
    c->first_std = -1;
    for (size_t i = 0; i < c->n_types; i++) {
        c->type_off[i] = (int32_t)be32(p + 6 * i);
        bool dst = p[6 * i + 4] != 0;
        size_t ai = p[6 * i + 5];
        if (ai < cnt[5]) {
            size_t k = 0;
            for (; k < 7 && ai + k < cnt[5] && abbr[ai + k]; k++)
                c->type_abbr[i][k] = (char)abbr[ai + k];
            c->type_abbr[i][k] = '\0';
        }
        if (!dst && c->first_std < 0)
            c->first_std = (int)i;
    }
    if (c->first_std < 0)
        c->first_std = 0;
    return true;
}

static size_t zone_type(const struct candor_eta_conf *c, int64_t t)
{
    if (c->n_types == 0)
        return 0;
    if (c->n_trans == 0 || t < c->trans[0])
        return (size_t)c->first_std;
    size_t lo = 0, hi = c->n_trans;   /* last transition <= t */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (c->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return c->trans_type[lo];
}

static int32_t utc_offset(const struct candor_eta_conf *c, int64_t t)
{
    return c->n_types ? c->type_off[zone_type(c, t)] : 0;
}

int32_t candor__eta_utc_offset(const struct candor_ctx *ctx, int64_t t)
{
    return ctx && ctx->eta ? utc_offset(ctx->eta, t) : 0;
}

/* Local wall-clock seconds L -> UTC (in a gap or overlap: the first fit). */
static int64_t local_to_utc(const struct candor_eta_conf *c, int64_t l)
{
    int64_t u = l - utc_offset(c, l);
    return l - utc_offset(c, u);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static candor_status_t load_zone(struct candor_ctx *ctx, struct candor_eta_conf *c,
                                 const char *name, bool from_config, xmlNodePtr node)
{
    char path[1024];
    const char *n = name;
    if (n && *n == ':')
        n++;
    if (!n || !*n)
        snprintf(path, sizeof path, "/etc/localtime");
    else if (*n == '/')
        snprintf(path, sizeof path, "%s", n);
    else {
        const char *dir = getenv("TZDIR");
        if (strstr(n, "..")) {
            if (from_config)
                return candor__config_fail(ctx->config_path, node, "timezone \"%.60s\": bad name", n);
            n = "UTC";
        }
        snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", n);
    }
    char link[1024];
    ssize_t ll = (!n || !*n) ? readlink("/etc/localtime", link, sizeof link - 1) : -1;
    const char *zi = NULL;
    if (ll > 0) {
        link[ll] = '\0';
        zi = strstr(link, "zoneinfo/");
    }
    c->zone_name = candor__strdup(n && *n ? n : zi ? zi + 9 : "local time");
    char *data = NULL;
    size_t len = 0;
    if (candor__read_file(path, MAX_TZ_BYTES, &data, &len) == CANDOR_OK &&
        tz_parse(c, (const unsigned char *)data, len)) {
        free(data);
        return CANDOR_OK;
    }
    free(data);
    /* keep going in UTC when the zone came from the environment */
    free(c->trans); c->trans = NULL;
    free(c->trans_type); c->trans_type = NULL;
    free(c->type_off); c->type_off = NULL;
    free(c->type_abbr); c->type_abbr = NULL;
    c->n_trans = c->n_types = 0;
    bool utc = n && (strcmp(n, "UTC") == 0 || strcmp(n, "GMT") == 0 || strcmp(n, "UTC0") == 0 ||
                     strcmp(n, "Etc/UTC") == 0);
    if (from_config && !utc)
        return candor__config_fail(ctx->config_path, node,
                                   "timezone \"%.60s\": not in the time zone database", n);
    if (!utc)
        candor__log(ctx, CANDOR_LOG_WARN, "eta: time zone %s unreadable, using UTC", path);
    free(c->zone_name);
    c->zone_name = candor__strdup("UTC");
    return CANDOR_OK;
}

/* ---- configuration ---- */

static bool parse_hhmm(const char *s, int *min)
{
    if (!s || strlen(s) != 5 || s[2] != ':' || !candor__is_digit((unsigned char)s[0]) ||
        !candor__is_digit((unsigned char)s[1]) || !candor__is_digit((unsigned char)s[3]) ||
        !candor__is_digit((unsigned char)s[4]))
        return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m))
        return false;
    *min = h * 60 + m;
    return true;
}

static const char *const day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
static const char *const day_words[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

static int day_index(const char *s, size_t len)
{
    for (int i = 0; i < 7; i++)
        if (len >= 3 && candor__strncasecmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

/* "mon tue wed", "mon-fri", "sat,sun" -> bit mask (bit 0 = Sunday). */
static int parse_days(const char *s)
{
    int mask = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t n = 0;
        while (candor__is_alpha((unsigned char)p[n]))
            n++;
        int a = day_index(p, n);
        if (a < 0)
            return -1;
        p += n;
        int b = a;
        if (*p == '-') {
            p++;
            n = 0;
            while (candor__is_alpha((unsigned char)p[n]))
                n++;
            b = day_index(p, n);
            if (b < 0)
                return -1;
            p += n;
        }
        for (int d = a;; d = (d + 1) % 7) {
            mask |= 1 << d;
            if (d == b)
                break;
        }
    }
    return mask;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_interval(const void *a, const void *b)
{
    return ((const struct interval *)a)->open - ((const struct interval *)b)->open;
}

static void describe_calendar(struct candor_eta_conf *c)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    /* group consecutive days (Mon..Sun order) with identical hours */
    static const int order[7] = { 1, 2, 3, 4, 5, 6, 0 };
    for (int i = 0; i < 7;) {
        int d = order[i];
        if (!c->n_hours[d]) {
            i++;
            continue;
        }
        int j = i + 1;
        while (j < 7 && c->n_hours[order[j]] == c->n_hours[d] &&
               memcmp(c->hours[order[j]], c->hours[d], sizeof c->hours[d]) == 0)
            j++;
        if (b.len)
            candor__buf_puts(&b, ", ");
        candor__buf_puts(&b, day_words[d]);
        if (j - i > 1)
            candor__buf_printf(&b, "-%s", day_words[order[j - 1]]);
        for (int k = 0; k < c->n_hours[d]; k++)
            candor__buf_printf(&b, "%s%02d:%02d-%02d:%02d", k ? ", " : " ",
                               c->hours[d][k].open / 60, c->hours[d][k].open % 60,
                               c->hours[d][k].close / 60, c->hours[d][k].close % 60);
        i = j;
    }
    candor__buf_printf(&b, " [%s]", c->zone_name ? c->zone_name : "UTC");
    snprintf(c->calendar, sizeof c->calendar, "%s", b.data ? b.data : "");
    candor__buf_free(&b);
}

candor_status_t candor__eta_load(struct candor_ctx *ctx, xmlNodePtr section)
{
    struct candor_eta_conf *c = calloc(1, sizeof *c);
    if (!c)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    ctx->eta = c;
    const char *file = ctx->config_path;
    double v;
    c->percentile = 90;
    c->min_samples = 10;
    c->history_days = 14;
    c->max_samples = 200;
    c->half_life_days = 3;
    c->default_target = 8;
    if (section) {
        if (!candor__config_attr_double(section, "percentile", 90, &v, file))
            return CANDOR_ECONFIG;
        if (v < 50 || v > 100)
            return candor__config_fail(file, section, "percentile must be 50..100");
        c->percentile = (int)v;
        if (!candor__config_attr_double(section, "min-samples", 10, &v, file))
            return CANDOR_ECONFIG;
        if (v < 1 || v > 100000)
            return candor__config_fail(file, section, "min-samples must be 1..100000");
        c->min_samples = (int)v;
        if (!candor__config_attr_double(section, "history-days", 14, &v, file))
            return CANDOR_ECONFIG;
        if (v < 1 || v > 3650)
            return candor__config_fail(file, section, "history-days must be 1..3650");
        c->history_days = (int)v;
        if (!candor__config_attr_double(section, "max-samples", 200, &v, file))
            return CANDOR_ECONFIG;
        if (v < 1 || v > 100000)
            return candor__config_fail(file, section, "max-samples must be 1..100000");
        c->max_samples = (int)v;
        if (!candor__config_attr_double(section, "half-life-days", 3, &v, file))
            return CANDOR_ECONFIG;
        if (v < 0 || v > 3650)
            return candor__config_fail(file, section, "half-life-days must be 0..3650 (0: none)");
        c->half_life_days = v;
    }
    char *tzname = candor__config_attr(section, "timezone");
    candor_status_t st = tzname ? load_zone(ctx, c, tzname, true, section)
                                : load_zone(ctx, c, getenv("TZ"), false, NULL);
    free(tzname);
    if (st != CANDOR_OK)
        return st;

    bool any_hours = false;
    for (xmlNodePtr h = candor__config_child(section, "hours"); h; h = candor__config_next(h)) {
        char *days = candor__config_attr(h, "days");
        char *o = candor__config_attr(h, "open");
        char *cl = candor__config_attr(h, "close");
        int mask = days ? parse_days(days) : -1;
        int om = 0, cm = 0;
        bool ok = mask > 0 && parse_hhmm(o, &om) && parse_hhmm(cl, &cm) && cm > om;
        free(days);
        free(o);
        free(cl);
        if (!ok)
            return candor__config_fail(file, h, "hours: want days=\"mon-fri\" open=\"09:00\" "
                                       "close=\"17:00\" (close after open)");
        for (int d = 0; d < 7; d++) {
            if (!(mask & (1 << d)))
                continue;
            if (c->n_hours[d] == MAX_INTERVALS)
                return candor__config_fail(file, h, "hours: more than %d intervals on %s",
                                           MAX_INTERVALS, day_names[d]);
            c->hours[d][c->n_hours[d]++] = (struct interval){ om, cm };
            qsort(c->hours[d], (size_t)c->n_hours[d], sizeof c->hours[d][0], cmp_interval);
            for (int k = 1; k < c->n_hours[d]; k++)
                if (c->hours[d][k].open < c->hours[d][k - 1].close)
                    return candor__config_fail(file, h, "hours: overlapping intervals on %s",
                                               day_names[d]);
        }
        any_hours = true;
    }
    if (!any_hours)
        for (int d = 1; d <= 5; d++) {
            c->hours[d][0] = (struct interval){ 9 * 60, 17 * 60 };
            c->n_hours[d] = 1;
        }
    size_t nh = 0;
    for (xmlNodePtr h = candor__config_child(section, "holiday"); h; h = candor__config_next(h))
        nh++;
    c->holidays = calloc(nh + 1, sizeof *c->holidays);
    if (!c->holidays)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    for (xmlNodePtr h = candor__config_child(section, "holiday"); h; h = candor__config_next(h)) {
        char *d = candor__config_attr(h, "date");
        int64_t t;
        bool ok = d && strlen(d) == 10 && candor_time_parse(&t, d) == CANDOR_OK;
        free(d);
        if (!ok)
            return candor__config_fail(file, h, "holiday: want date=\"YYYY-MM-DD\"");
        c->holidays[c->n_holidays++] = t / 86400;
    }
    qsort(c->holidays, c->n_holidays, sizeof *c->holidays, cmp_i64);

    size_t nt = 0;
    for (xmlNodePtr h = candor__config_child(section, "target"); h; h = candor__config_next(h))
        nt++;
    c->targets = calloc(nt + 1, sizeof *c->targets);
    if (!c->targets)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    for (xmlNodePtr h = candor__config_child(section, "target"); h; h = candor__config_next(h)) {
        if (!candor__config_attr_double(h, "hours", -1, &v, file))
            return CANDOR_ECONFIG;
        if (v <= 0 || v > 10000)
            return candor__config_fail(file, h, "target: hours must be > 0 business hours");
        char *intent = candor__config_attr(h, "intent");
        if (!intent || !*intent) {
            free(intent);
            c->default_target = v;
        } else {
            c->targets[c->n_targets].intent = intent;
            c->targets[c->n_targets++].hours = v;
        }
    }
    describe_calendar(c);
    return CANDOR_OK;
}

void candor__eta_conf_free(struct candor_eta_conf *c)
{
    if (!c)
        return;
    free(c->trans);
    free(c->trans_type);
    free(c->type_off);
    free(c->type_abbr);
    free(c->zone_name);
    free(c->holidays);
    for (size_t i = 0; i < c->n_targets; i++)
        free(c->targets[i].intent);
    free(c->targets);
    free(c);
}

const char *candor__eta_calendar(const struct candor_ctx *ctx)
{
    return ctx && ctx->eta ? ctx->eta->calendar : "";
}

/* ---- business time ---- */

static bool is_holiday(const struct candor_eta_conf *c, int64_t day)
{
    return bsearch(&day, c->holidays, c->n_holidays, sizeof day, cmp_i64) != NULL;
}

static int weekday(int64_t day)   /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    int64_t w = (day + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* Call FN for each business interval [open, close) in UTC of local days
 * FIRST.. in order until it returns false or the walk limit is hit. */
typedef bool (*interval_fn)(int64_t open, int64_t close, void *data);

static void walk(const struct candor_eta_conf *c, int64_t from_utc, interval_fn fn, void *data)
{
    int64_t day = floor_div(from_utc + utc_offset(c, from_utc), 86400) - 1;
    for (int i = 0; i < MAX_WALK_DAYS; i++, day++) {
        int wd = weekday(day);
        if (!c->n_hours[wd] || is_holiday(c, day))
            continue;
        for (int k = 0; k < c->n_hours[wd]; k++) {
            int64_t o = local_to_utc(c, day * 86400 + c->hours[wd][k].open * 60);
            int64_t e = local_to_utc(c, day * 86400 + c->hours[wd][k].close * 60);
            if (e <= o)
                continue;
            if (!fn(o, e, data))
                return;
        }
    }
}

struct span { int64_t a, b, sum; };

static bool span_fn(int64_t o, int64_t e, void *data)
{
    struct span *s = data;
    if (o >= s->b)
        return false;
    int64_t lo = o > s->a ? o : s->a, hi = e < s->b ? e : s->b;
    if (hi > lo)
        s->sum += hi - lo;
    return true;
}

int64_t candor__eta_business_seconds(const struct candor_ctx *ctx, int64_t a, int64_t b)
{
    if (!ctx || !ctx->eta || b <= a)
        return 0;
    struct span s = { a, b, 0 };
    walk(ctx->eta, a, span_fn, &s);
    return s.sum;
}

struct add { int64_t a, left, result; bool done; };

static bool add_fn(int64_t o, int64_t e, void *data)
{
    struct add *s = data;
    if (e <= s->a)
        return true;
    int64_t start = o > s->a ? o : s->a;
    if (s->left <= e - start) {
        s->result = start + s->left;
        s->done = true;
        return false;
    }
    s->left -= e - start;
    return true;
}

int64_t candor__eta_add_business(const struct candor_ctx *ctx, int64_t a, int64_t secs)
{
    if (!ctx || !ctx->eta)
        return a + secs;
    struct add s = { a, secs < 0 ? 0 : secs, 0, false };
    walk(ctx->eta, a, add_fn, &s);
    return s.done ? s.result : a + secs;
}

void candor__eta_format_local(const struct candor_ctx *ctx, int64_t t, char *buf, size_t size)
{
    const struct candor_eta_conf *c = ctx ? ctx->eta : NULL;
    int32_t off = c ? utc_offset(c, t) : 0;
    int64_t l = t + off;
    int64_t day = floor_div(l, 86400);
    int64_t sod = l - day * 86400;
    int64_t y;
    unsigned m, d;
    candor__civil_from_days(day, &y, &m, &d);
    const char *abbr = c && c->n_types ? c->type_abbr[zone_type(c, t)] : "UTC";
    char zone[16];
    if (abbr[0] && !(abbr[0] == '+' || abbr[0] == '-'))
        snprintf(zone, sizeof zone, "%s", abbr);
    else
        snprintf(zone, sizeof zone, "UTC%c%02d:%02d", off < 0 ? '-' : '+',
                 abs(off) / 3600, abs(off) % 3600 / 60);
    snprintf(buf, size, "%04lld-%02u-%02u %02d:%02d %s", (long long)y, m, d,
             (int)(sod / 3600), (int)(sod % 3600 / 60), zone);
}

/* ---- the estimate ---- */

/* One ticket of the recent cohort: its first reply came after TIME
 * seconds of business time (EVENT), or it is still waiting and has waited
 * TIME so far (censored). */
struct obs { int64_t time; bool event; double weight; };

static int cmp_obs(const void *a, const void *b)
{
    const struct obs *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return (int)y->event - (int)x->event;   /* events before censoring at ties */
}

/* The recent cohort: the last MAX-SAMPLES tickets (of INTENT, or all when
 * NULL) that arrived within HISTORY-DAYS before NOW. */
static candor_status_t load_cohort(const struct candor_ctx *ctx, struct candor_store *store,
                                   const char *intent, int64_t now, struct obs **out,
                                   size_t *n, size_t *events)
{
    const struct candor_eta_conf *c = ctx->eta;
    *out = NULL;
    *n = *events = 0;
    struct candor_stmt *q = NULL;
    candor_status_t st = candor__store_prepare(store, "tickets",
        "SELECT t.created, f.business_wait, f.replied FROM tickets t "
        "LEFT JOIN first_replies f ON f.ticket = t.id "
        "WHERE (CAST(?1 AS TEXT) IS NULL OR t.intent = ?1) AND t.created > ?2 AND t.created <= ?3 "
        "ORDER BY t.created DESC, t.id DESC LIMIT ?4", &q);
    if (st != CANDOR_OK)
        return st;
    struct obs *v = calloc((size_t)c->max_samples + 1, sizeof *v);
    if (!v) {
        candor__stmt_free(q);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    candor__stmt_bind_text(q, 1, intent);   /* NULL: all intents */
    candor__stmt_bind_int64(q, 2, now - (int64_t)c->history_days * 86400);
    candor__stmt_bind_int64(q, 3, now);
    candor__stmt_bind_int64(q, 4, c->max_samples);
    int rc;
    while ((rc = candor__stmt_step(q)) == CANDOR_DB_ROW && *n < (size_t)c->max_samples) {
        int64_t created = candor__stmt_int64(q, 0);
        /* recent arrivals weigh more: the estimate follows a team that
         * is slowing down or speeding up within days */
        double age_days = (double)(now - created) / 86400.0;
        double w = c->half_life_days > 0 ? pow(0.5, age_days / c->half_life_days) : 1.0;
        bool replied = !candor__stmt_null(q, 2) && candor__stmt_int64(q, 2) <= now;
        struct obs *o = &v[(*n)++];
        o->weight = w;
        if (replied) {
            o->time = candor__stmt_int64(q, 1);
            o->event = true;
            (*events)++;
        } else {
            o->time = candor__eta_business_seconds(ctx, created, now);
            o->event = false;
        }
    }
    if (rc != CANDOR_DB_ROW && rc != CANDOR_DB_DONE)
        st = (candor_status_t)rc;
    candor__stmt_free(q);
    if (st != CANDOR_OK) {
        free(v);
        *n = *events = 0;
        return st;
    }
    *out = v;
    return CANDOR_OK;
}

/* The PCT percentile of the time to first reply by the Kaplan-Meier
 * estimate over V (sorted): tickets still waiting count for as long as
 * they have waited. When the waiting ones keep the curve above 1 - PCT
 * (most of the queue is late), the longest time seen. */
static int64_t km_quantile(const struct obs *v, size_t n, int pct)
{
    double surv = 1.0, at_risk = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        at_risk += v[i].weight;
        sq += v[i].weight * v[i].weight;
    }
    /* an upper confidence bound, not the bare sample percentile: with
     * N_EFF effective samples, aim below 1 - P by CONFIDENCE_Z standard
     * errors, so that the promise holds for P of the replies with about
     * 85% confidence rather than half the time */
    double p = (double)pct / 100.0;
    double n_eff = sq > 0 ? at_risk * at_risk / sq : 1.0;
    double goal = (1.0 - p) - CONFIDENCE_Z * sqrt(p * (1.0 - p) / n_eff);
    if (goal < 0)
        goal = 0;
    goal += 1e-9;
    size_t i = 0;
    int64_t longest = 0;
    while (i < n && at_risk > 1e-12) {
        int64_t t = v[i].time;
        double d = 0, gone = 0;
        size_t j = i;
        for (; j < n && v[j].time == t; j++) {
            if (v[j].event)
                d += v[j].weight;
            gone += v[j].weight;
        }
        if (d > 0) {
            surv *= 1.0 - d / at_risk;
            if (surv <= goal)
                return t;
        }
        at_risk -= gone;
        longest = t;
        i = j;
    }
    return longest;
}

/* Keeping our word: for the promises of the last CALIBRATION_DAYS that
 * can be judged (answered, or still waiting past their time), the ratio of
 * the business time they took (or have waited so far) to the business
 * time they promised. When more than 1 - P of them (recency-weighted, the
 * same confidence bound as above) ran late, the new estimate is stretched
 * by the ratio that would have kept P of them: a team that has just slowed
 * down stops promising last week's times within hours, not days. Over all
 * intents: the speed of the team is shared. Never shrinks an estimate. */
static candor_status_t calibration(const struct candor_ctx *ctx, struct candor_store *store,
                                   int64_t now, double *factor)
{
    const struct candor_eta_conf *c = ctx->eta;
    *factor = 1.0;
    struct candor_stmt *q = NULL;
    candor_status_t st = candor__store_prepare(store, "promises",
        "SELECT p.made, p.due, f.business_wait, f.replied FROM promises p "
        "LEFT JOIN first_replies f ON f.ticket = p.ticket "
        "WHERE p.measured = 1 AND p.made > ?1 AND p.made <= ?2 "
        "ORDER BY p.made DESC LIMIT ?3", &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_int64(q, 1, now - CALIBRATION_DAYS * 86400);
    candor__stmt_bind_int64(q, 2, now);
    candor__stmt_bind_int64(q, 3, c->max_samples);
    struct obs *v = calloc((size_t)c->max_samples + 1, sizeof *v);
    if (!v) {
        candor__stmt_free(q);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    size_t n = 0;
    int rc;
    while ((rc = candor__stmt_step(q)) == CANDOR_DB_ROW && n < (size_t)c->max_samples) {
        int64_t made = candor__stmt_int64(q, 0), due = candor__stmt_int64(q, 1);
        bool replied = !candor__stmt_null(q, 3) && candor__stmt_int64(q, 3) <= now;
        if (!replied && due > now)
            continue;   /* not judged yet */
        int64_t promised = candor__eta_business_seconds(ctx, made, due);
        int64_t took = replied ? candor__stmt_int64(q, 2)
                               : candor__eta_business_seconds(ctx, made, now);
        if (promised < 60)
            promised = 60;
        double age_days = (double)(now - made) / 86400.0;
        v[n].weight = c->half_life_days > 0 ? pow(0.5, age_days / c->half_life_days) : 1.0;
        /* ratios in thousandths, as KM times */
        v[n].time = (int64_t)(1000.0 * (double)took / (double)promised);
        v[n].event = true;
        n++;
    }
    if (rc != CANDOR_DB_ROW && rc != CANDOR_DB_DONE)
        st = (candor_status_t)rc;
    candor__stmt_free(q);
    if (st == CANDOR_OK && n >= (size_t)c->min_samples) {
        qsort(v, n, sizeof *v, cmp_obs);
        double f = (double)km_quantile(v, n, c->percentile) / 1000.0;
        *factor = f > MAX_CORRECTION ? MAX_CORRECTION : f;
    }
    free(v);
    return st;
}

static double target_for(const struct candor_eta_conf *c, const char *intent)
{
    for (size_t i = 0; intent && i < c->n_targets; i++)
        if (strcmp(c->targets[i].intent, intent) == 0)
            return c->targets[i].hours;
    return c->default_target;
}

candor_status_t candor__eta_promise(const struct candor_ctx *ctx, struct candor_store *store,
                                    const char *intent, int64_t now,
                                    struct candor_eta_promise *out)
{
    const struct candor_eta_conf *c = ctx->eta;
    memset(out, 0, sizeof *out);
    out->history_days = c->history_days;
    out->percentile = c->percentile;
    int64_t secs = -1;
    for (int pass = 0; store && pass < 2 && secs < 0; pass++) {
        const char *which = pass == 0 ? intent : NULL;
        if (pass == 0 && !intent)
            continue;
        struct obs *v = NULL;
        size_t n = 0, events = 0;
        candor_status_t st = load_cohort(ctx, store, which, now, &v, &n, &events);
        if (st != CANDOR_OK)
            return st;
        if (events >= (size_t)c->min_samples) {
            qsort(v, n, sizeof *v, cmp_obs);
            secs = km_quantile(v, n, c->percentile);
            out->measured = true;
            out->pooled = pass == 1;
            out->samples = n;
        }
        free(v);
    }
    out->correction = 1.0;
    if (secs >= 0) {
        double f = 1.0;
        candor_status_t st = calibration(ctx, store, now, &f);
        if (st != CANDOR_OK)
            return st;
        if (f > 1.0) {
            out->correction = f;
            secs = (int64_t)((double)secs * f);
        }
    }
    if (secs < 0)
        secs = (int64_t)(target_for(c, intent) * 3600.0);
    out->business_hours = (double)secs / 3600.0;
    int64_t by = candor__eta_add_business(ctx, now, secs);
    /* round up to the next quarter hour: a time people can hold us to */
    by = (by + 899) / 900 * 900;
    out->by = by;
    return CANDOR_OK;
}

char *candor__eta_basis(const struct candor_ctx *ctx, const struct candor_eta_promise *p,
                        const char *intent)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    const char *what = intent ? intent : "all";
    if (p->measured) {
        candor__buf_printf(&b, "measured: %d%% of the first replies to the last %zu %s "
                           "requests (last %d days; recent ones weigh more, those still "
                           "waiting count as they stand) came within %.1f business hours "
                           "(upper confidence bound)",
                           p->percentile, p->samples, p->pooled ? "(all kinds of)" : what,
                           p->history_days, p->business_hours / (p->correction > 1 ? p->correction : 1));
        if (p->correction > 1.005)
            candor__buf_printf(&b, ", stretched x%.2f to %.1f business hours because recent "
                               "promises ran late", p->correction, p->business_hours);
        candor__buf_printf(&b, "; counted from now in business hours %s",
                           candor__eta_calendar(ctx));
    }
    else
        candor__buf_printf(&b, "target: too little history to measure (fewer than %d first "
                           "replies in the last %d days), so the configured target of %.1f "
                           "business hours for %s requests, counted from now in business "
                           "hours %s",
                           ctx->eta->min_samples, p->history_days, p->business_hours, what,
                           candor__eta_calendar(ctx));
    return candor__buf_steal(&b);
}

int candor__eta_min_samples(const struct candor_ctx *ctx)
{
    return ctx && ctx->eta ? ctx->eta->min_samples : 0;
}
