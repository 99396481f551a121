/*
 * log.c — the per-ctx log callback. Lines are finished and sanitised (no
 * CR, LF or control bytes), as Postfix's msg_output does.
 */
#include <stdio.h>
#include "ctx.h"

void candor__log(const struct candor_ctx *ctx, candor_log_level_t level, const char *fmt, ...)
{
    if (!ctx || !ctx->log_fn)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    ctx->log_fn(level, line, ctx->log_data);
}
