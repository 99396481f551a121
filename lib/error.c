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
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    /* one line, no control bytes */
    for (char *p = errmsg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
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
