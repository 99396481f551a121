/*
 * time.c — RFC 3339 parsing and formatting, and the clock (overridable
 * with --now for deterministic replays).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "internal.h"

int64_t candor__now(int64_t now_or_zero)
{
    return now_or_zero ? now_or_zero : (int64_t)time(NULL);
}

/* Days from 1970-01-01 to Y-M-D (proleptic Gregorian; Howard Hinnant's
 * days_from_civil algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void candor__civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    /* Howard Hinnant's civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = y + (*month <= 2);
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!candor__is_digit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

candor_status_t candor_time_parse(int64_t *out, const char *s)
{
    int Y, M, D, h = 0, m = 0, sec = 0;
    if (!out || !s)
        return candor__fail(CANDOR_EINVAL, "time: no value");
    size_t len = strlen(s);
    if (len < 10 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) ||
        s[7] != '-' || !digits(s + 8, 2, &D))
        goto bad;
    const char *p = s + 10;
    int64_t off = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (strlen(p) < 6 || !digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &m))
            goto bad;
        p += 6;
        if (*p == ':') {
            if (!digits(p + 1, 2, &sec))
                goto bad;
            p += 3;
        }
        if (*p == '.') {
            p++;
            while (candor__is_digit((unsigned char)*p))
                p++;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
                goto bad;
            off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
            p += 6;
        } else if (*p) {
            goto bad;
        }
    }
    if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        goto bad;
    *out = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 + sec - off;
    return CANDOR_OK;
bad:
    return candor__fail(CANDOR_EINVAL, "time: not an RFC 3339 time (want 2026-11-24T10:00:00Z)");
}

void candor_time_format(char *buf, size_t size, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, size, "1970-01-01T00:00:00Z");
        return;
    }
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
