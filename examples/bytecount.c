/* bytecount.c — parse_byte_count() (see bytecount.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include "bytecount.h"

bool parse_byte_count(const char *arg, size_t *out)
{
    if (!arg || *arg < '0' || *arg > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || v == 0 || v > (unsigned long long)(SIZE_MAX >> shift))
        return false;
    *out = (size_t)(v << shift);
    return true;
}
