/*
 * bytecount.h — the byte-count argument both programs take
 * (`candor --max-config-bytes N`, `candor-lmtpd --max-config-bytes N`),
 * parsed in one place (bytecount.c). Uses nothing but the C library.
 */
#ifndef CANDOR_EXAMPLES_BYTECOUNT_H
#define CANDOR_EXAMPLES_BYTECOUNT_H

#include <stdbool.h>
#include <stddef.h>

/* A byte count: digits with an optional binary suffix k (or K), M or G
 * (1M is 1048576). False (*OUT untouched) for anything else, 0 or an
 * overflow. */
bool parse_byte_count(const char *arg, size_t *out);

#endif
