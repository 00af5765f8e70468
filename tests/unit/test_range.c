/* test_range.c - single byte ranges and HTTP dates (daemon/http/range.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/range.h"

static void expect_range(const char *v, uint64_t size, enum http_range_result want, uint64_t first,
                         uint64_t last)
{
    uint64_t f = 777, l = 777;
    assert_int_equal(http_range_parse(v, size, &f, &l), want);
    if (want == HTTP_RANGE_OK) {
        assert_int_equal(f, first);
        assert_int_equal(l, last);
    }
}

static void http_range_parse__forms__bounds(void **state)
{
    (void)state;
    expect_range("bytes=0-0", 10, HTTP_RANGE_OK, 0, 0);
    expect_range("bytes=2-5", 10, HTTP_RANGE_OK, 2, 5);
    expect_range("bytes=2-", 10, HTTP_RANGE_OK, 2, 9);
    expect_range("bytes=2-100", 10, HTTP_RANGE_OK, 2, 9);
    expect_range("bytes=-3", 10, HTTP_RANGE_OK, 7, 9);
    expect_range("bytes=-30", 10, HTTP_RANGE_OK, 0, 9);
    expect_range("bytes= 1-2", 10, HTTP_RANGE_OK, 1, 2);
}

static void http_range_parse__past_end__unsatisfiable(void **state)
{
    (void)state;
    expect_range("bytes=10-", 10, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    expect_range("bytes=10-20", 10, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    expect_range("bytes=-0", 10, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    expect_range("bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0);
}

static void http_range_parse__malformed_or_multiple__whole_body(void **state)
{
    (void)state;
    expect_range(NULL, 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("items=0-1", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("bytes=0-1,3-4", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("bytes=5-2", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("bytes=a-b", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("bytes=-", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("bytes=+1-2", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("bytes=1-2x", 10, HTTP_RANGE_NONE, 0, 0);
    expect_range("bytes=99999999999999999999999-", 10, HTTP_RANGE_NONE, 0, 0);
}

static void http_date_parse__imf_fixdate__epoch(void **state)
{
    (void)state;
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT"), -1);
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT junk"), -1);
    assert_int_equal(http_date_parse(""), -1);
    assert_int_equal(http_date_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_range_parse__forms__bounds),
        cmocka_unit_test(http_range_parse__past_end__unsatisfiable),
        cmocka_unit_test(http_range_parse__malformed_or_multiple__whole_body),
        cmocka_unit_test(http_date_parse__imf_fixdate__epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
