/*
 * error.c — the per-thread error message slot (candor_errmsg()).
 *
 * Failing must not allocate, so the slot is a fixed thread-local buffer;
 * messages longer than it are cut. No customer text goes into a message.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

#define ERRMSG_SIZE 1024

static _Thread_local char errmsg[ERRMSG_SIZE];

candor_status_t candor__fail(candor_status_t status, const char *fmt, ...)
{
    /* Formatted on the stack first: callers may pass candor_errmsg() as an
     * argument ("%s: %s", path, candor_errmsg()), and vsnprintf() into the
     * buffer it reads from is undefined (valgrind: overlap in mempcpy). */
    char tmp[ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(errmsg, tmp, strlen(tmp) + 1);
    /* one line, no control bytes, valid UTF-8: a dependency's message
     * (libxml2's) may quote raw input bytes, and the cut above may split a
     * character; each byte of a bad sequence becomes '?' (in place, since
     * failing allocates nothing). */
    size_t len = strlen(errmsg);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)errmsg[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                errmsg[i] = ' ';
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = candor__utf8_decode(errmsg + i, len - i, &cp);
        if (cp == 0xFFFD && !(n == 3 && memcmp(errmsg + i, "\xEF\xBF\xBD", 3) == 0)) {
            errmsg[i] = '?';
            n = 1;
        }
        i += n;
    }
    return status;
}

void candor__clear_error(void) { errmsg[0] = '\0'; }

const char *candor_errmsg(void) { return errmsg; }

const char *candor_status_str(candor_status_t status)
{
    switch (status) {
    case CANDOR_OK: return "CANDOR_OK";
    case CANDOR_ERROR: return "CANDOR_ERROR";
    case CANDOR_ENOMEM: return "CANDOR_ENOMEM";
    case CANDOR_EINVAL: return "CANDOR_EINVAL";
    case CANDOR_EIO: return "CANDOR_EIO";
    case CANDOR_ECONFIG: return "CANDOR_ECONFIG";
    case CANDOR_ELIMIT: return "CANDOR_ELIMIT";
    case CANDOR_ETEMPFAIL: return "CANDOR_ETEMPFAIL";
    case CANDOR_ENOTFOUND: return "CANDOR_ENOTFOUND";
    }
    return "CANDOR_UNKNOWN";
}
