/* test-canned.c — STUB: the canned suite is still to be written. */
#include "common.h"
static const struct test_case cases[] = { { NULL, NULL } };
int main(void) { return test_main("canned", cases); }
