/*
 * filter.c - linked into every unit-test binary: UNIT_FILTER (a cmocka
 * pattern, '*' and '?') runs only the cases whose names match it
 * (`make unit U=test_lc F='lc_get*'`).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

__attribute__((constructor)) static void unit_filter(void)
{
    const char *f = getenv("UNIT_FILTER");
    if (f && *f)
        cmocka_set_test_filter(f);
}
