/* test-message.c — STUB: the message suite is still to be written. */
#include "common.h"
static const struct test_case cases[] = { { NULL, NULL } };
int main(void) { return test_main("message", cases); }
