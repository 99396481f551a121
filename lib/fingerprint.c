/* fingerprint.c — STUB: to be written (issue 5). */
#include "internal.h"
