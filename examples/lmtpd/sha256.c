/*
 * sha256.c — SHA-256 of a message for the redelivery key, through
 * Nettle (Debian libnettle-dev). A collision there would make the daemon
 * drop a message as "already delivered", so a cryptographic digest.
 */
#include <nettle/sha2.h>
#include "lmtpd.h"

void lmtpd_sha256(const void *data, size_t len, unsigned char out[32])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, SHA256_DIGEST_SIZE, out);
}

void lmtpd_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}
