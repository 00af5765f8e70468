/*
 * test_config.c - unit tests of the settings loader (config.h): defaults,
 * every key with good and bad values, the config file format, and the
 * precedence defaults < file < GRANARY_* environment < flags. Each test
 * gets a fresh directory in /tmp for its config files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "config.h"

struct fx {
    char dir[64];
    char file[128];
    struct config c;
    char err[512];
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/test_config-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->file, sizeof(fx->file), "%s/granary.conf", fx->dir);
    config_defaults(&fx->c);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    unlink(fx->file);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void write_file(const struct fx *fx, const char *text)
{
    FILE *f = fopen(fx->file, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int set(struct fx *fx, const char *key, const char *value)
{
    fx->err[0] = '\0';
    return config_set(&fx->c, key, value, fx->err, sizeof(fx->err));
}

/* Assert that key=value is refused with a message naming the key. */
static void assert_bad(struct fx *fx, const char *key, const char *value)
{
    int rc = set(fx, key, value);
    if (rc != GR_EINVAL)
        fail_msg("%s = '%s': rc %d, want GR_EINVAL", key, value, rc);
    if (strstr(fx->err, key) == NULL)
        fail_msg("%s = '%s': message '%s' does not name the key", key, value, fx->err);
}

/* argv and envp are char *const *; string literals are const, hence S(). */
#define ENVP(...) ((char *const[]){__VA_ARGS__, NULL})
#define S(x) ((char *)(x))

static int load(struct fx *fx, int argc, char *const *argv, char *const *envp)
{
    fx->err[0] = '\0';
    return config_load(&fx->c, argc, argv, envp, fx->err, sizeof(fx->err));
}

/* ---- defaults ------------------------------------------------------------- */

static void config_defaults__fresh__documented_values(void **state)
{
    (void)state;
    struct config c;
    memset(&c, 0xa5, sizeof(c));
    config_defaults(&c);
    assert_string_equal(c.data_dir, "/var/lib/granary");
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_string_equal(c.database_url, "");
    assert_int_equal(c.db_pool_size, 16);
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.max_body_size, 0);
    assert_int_equal(c.anonymous_read, -1);
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.cache_size_mb, 1024);
    assert_int_equal(c.connection_timeout, 60);
    assert_int_equal(c.shutdown_timeout, 30);
    assert_int_equal(c.npm_token_lifetime, 31536000);
    assert_false(c.show_help);
    assert_false(c.show_version);
}

/* ---- config_set ----------------------------------------------------------- */

static void config_set__data_dir__copied(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "data_dir", "/srv/granary"), GR_OK);
    assert_string_equal(fx->c.data_dir, "/srv/granary");
}

static void config_set__data_dir_too_long__einval(void **state)
{
    struct fx *fx = *state;
    char v[sizeof(fx->c.data_dir) + 1];
    memset(v, 'd', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    assert_bad(fx, "data_dir", v);
    assert_non_null(strstr(fx->err, "too long"));
    assert_string_equal(fx->c.data_dir, "/var/lib/granary");
    /* one byte less fits */
    v[sizeof(v) - 2] = '\0';
    assert_int_equal(set(fx, "data_dir", v), GR_OK);
    assert_string_equal(fx->c.data_dir, v);
}

static void config_set__key_spellings__accepted(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "data-dir", "/a"), GR_OK);
    assert_string_equal(fx->c.data_dir, "/a");
    assert_int_equal(set(fx, "DATA_DIR", "/b"), GR_OK);
    assert_string_equal(fx->c.data_dir, "/b");
    assert_int_equal(set(fx, "Db-Pool-Size", "3"), GR_OK);
    assert_int_equal(fx->c.db_pool_size, 3);
}

static void config_set__unknown_key__einval_with_message(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "no_such_key", "1"), GR_EINVAL);
    assert_string_equal(fx->err, "unknown setting 'no_such_key'");
    assert_int_equal(set(fx, "", "1"), GR_EINVAL);
    assert_string_equal(fx->err, "unknown setting ''");
}

static void config_set__small_err_buffer__truncated(void **state)
{
    struct fx *fx = *state;
    char err[8];
    memset(err, 'z', sizeof(err));
    assert_int_equal(config_set(&fx->c, "no_such_key", "1", err, sizeof(err)), GR_EINVAL);
    assert_int_equal(strlen(err), sizeof(err) - 1);
}

static void config_set__listen__host_and_port(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "listen", "0.0.0.0:9090"), GR_OK);
    assert_string_equal(fx->c.listen_host, "0.0.0.0");
    assert_int_equal(fx->c.listen_port, 9090);
    assert_int_equal(set(fx, "listen", "example.org:65535"), GR_OK);
    assert_string_equal(fx->c.listen_host, "example.org");
    assert_int_equal(fx->c.listen_port, 65535);
}

static void config_set__listen_ipv6_brackets__host_unbracketed(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "listen", "[::1]:8080"), GR_OK);
    assert_string_equal(fx->c.listen_host, "::1");
    assert_int_equal(fx->c.listen_port, 8080);
    assert_int_equal(set(fx, "listen", "[fe80::1:2]:443"), GR_OK);
    assert_string_equal(fx->c.listen_host, "fe80::1:2");
    assert_int_equal(fx->c.listen_port, 443);
}

static void config_set__listen_bare_ipv6__einval(void **state)
{
    struct fx *fx = *state;
    assert_bad(fx, "listen", "::1");
    assert_bad(fx, "listen", "fe80::1:8080");
}

static void config_set__cache_size_mb__plain_megabytes(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "cache_size_mb", "2048"), GR_OK);
    assert_int_equal(fx->c.cache_size_mb, 2048);
    assert_bad(fx, "cache_size_mb", "1G");
    assert_bad(fx, "cache_size_mb", "0");
}

static void config_set__listen_bad__einval_unchanged(void **state)
{
    struct fx *fx = *state;
    assert_bad(fx, "listen", "127.0.0.1:70000");
    assert_bad(fx, "listen", "127.0.0.1:-1");
    assert_bad(fx, "listen", "127.0.0.1:");
    assert_bad(fx, "listen", "127.0.0.1:80x");
    assert_bad(fx, "listen", "localhost");
    assert_bad(fx, "listen", ":8080");
    assert_bad(fx, "listen", "[::1]");
    assert_bad(fx, "listen", "");
    assert_string_equal(fx->c.listen_host, "127.0.0.1");
    assert_int_equal(fx->c.listen_port, 8080);
}

static void config_set__database_url__copied(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "database_url", "postgres://u:p@db/granary?sslmode=require"), GR_OK);
    assert_string_equal(fx->c.database_url, "postgres://u:p@db/granary?sslmode=require");
}

static void config_set__db_pool_size__range_checked(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "db_pool_size", "1"), GR_OK);
    assert_int_equal(set(fx, "db_pool_size", "256"), GR_OK);
    assert_int_equal(fx->c.db_pool_size, 256);
    assert_bad(fx, "db_pool_size", "0");
    assert_bad(fx, "db_pool_size", "257");
    assert_bad(fx, "db_pool_size", "-3");
    assert_bad(fx, "db_pool_size", "eight");
    assert_bad(fx, "db_pool_size", "8x");
    assert_bad(fx, "db_pool_size", "");
    assert_bad(fx, "db_pool_size", "99999999999999999999");
    assert_int_equal(fx->c.db_pool_size, 256);
}

static void config_set__threads__range_checked(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "threads", "0"), GR_OK);
    assert_int_equal(fx->c.threads, 0);
    assert_int_equal(set(fx, "threads", "16"), GR_OK);
    assert_int_equal(fx->c.threads, 16);
    assert_bad(fx, "threads", "-1");
    assert_bad(fx, "threads", "257");
}

static void config_set__max_body_size_suffixes__scaled(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "max_body_size", "1000"), GR_OK);
    assert_int_equal(fx->c.max_body_size, 1000);
    assert_int_equal(set(fx, "max_body_size", "10K"), GR_OK);
    assert_int_equal(fx->c.max_body_size, 10 * 1024);
    assert_int_equal(set(fx, "max_body_size", "10k"), GR_OK);
    assert_int_equal(fx->c.max_body_size, 10 * 1024);
    assert_int_equal(set(fx, "max_body_size", "5M"), GR_OK);
    assert_int_equal(fx->c.max_body_size, 5ULL << 20);
    assert_int_equal(set(fx, "max_body_size", "2G"), GR_OK);
    assert_int_equal(fx->c.max_body_size, 2ULL << 30);
    assert_int_equal(set(fx, "max_body_size", "0"), GR_OK);
    assert_int_equal(fx->c.max_body_size, 0);
    assert_int_equal(set(fx, "max_body_size", "18446744073709551615"), GR_OK);
    assert_true(fx->c.max_body_size == UINT64_MAX);
}

static void config_set__max_body_size_bad__einval(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "max_body_size", "7"), GR_OK);
    assert_bad(fx, "max_body_size", "-1");
    assert_bad(fx, "max_body_size", "-1K");
    assert_bad(fx, "max_body_size", "");
    assert_bad(fx, "max_body_size", "K");
    assert_bad(fx, "max_body_size", "10KB");
    assert_bad(fx, "max_body_size", "10T");
    assert_bad(fx, "max_body_size", "1.5G");
    assert_bad(fx, "max_body_size", "big");
    assert_bad(fx, "max_body_size", "18446744073709551616"); /* 2^64 */
    assert_bad(fx, "max_body_size", "17179869184G");         /* 2^34 * 2^30 */
    assert_int_equal(fx->c.max_body_size, 7);
}

static void config_set__size_negative_leading_space__einval(void **state)
{
    struct fx *fx = *state;
    /*
     * Regression guard (fixed): config__u64() refuses negatives by testing v[0] == '-',
     * but strtoull() skips leading white space and accepts a sign, so " -1"
     * (e.g. GRANARY_MAX_BODY_SIZE=" -1" or --max-body-size " -1") is taken
     * as 18446744073709551615 instead of being refused.
     */
    assert_bad(fx, "max_body_size", " -1");
    assert_bad(fx, "cache_size_mb", "\t-5");
}

static void config_set__cache_size_mb__parsed(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "cache_size_mb", "4096"), GR_OK);
    assert_int_equal(fx->c.cache_size_mb, 4096);
    assert_bad(fx, "cache_size_mb", "-1");
    assert_bad(fx, "cache_size_mb", "lots");
}

static void config_set__anonymous_read_bool_spellings__parsed(void **state)
{
    struct fx *fx = *state;
    static const char *const yes[] = {"true", "TRUE", "True", "on", "ON", "yes", "Yes", "1"};
    static const char *const no[] = {"false", "FALSE", "off", "Off", "no", "NO", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        fx->c.anonymous_read = -1;
        assert_int_equal(set(fx, "anonymous_read", yes[i]), GR_OK);
        assert_int_equal(fx->c.anonymous_read, 1);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        fx->c.anonymous_read = -1;
        assert_int_equal(set(fx, "anonymous_read", no[i]), GR_OK);
        assert_int_equal(fx->c.anonymous_read, 0);
    }
}

static void config_set__anonymous_read_bad__einval(void **state)
{
    struct fx *fx = *state;
    assert_bad(fx, "anonymous_read", "maybe");
    assert_bad(fx, "anonymous_read", "");
    assert_bad(fx, "anonymous_read", "2");
    assert_bad(fx, "anonymous_read", "y");
    assert_bad(fx, "anonymous_read", "truex");
    assert_int_equal(fx->c.anonymous_read, -1);
}

static void config_set__log_level__checked(void **state)
{
    struct fx *fx = *state;
    static const char *const ok[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(set(fx, "log_level", ok[i]), GR_OK);
        assert_string_equal(fx->c.log_level, ok[i]);
    }
    assert_bad(fx, "log_level", "trace");
    assert_bad(fx, "log_level", "");
    assert_string_equal(fx->c.log_level, "error");
}

static void config_set__timeouts__range_checked(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "connection_timeout", "1"), GR_OK);
    assert_int_equal(set(fx, "connection_timeout", "3600"), GR_OK);
    assert_int_equal(fx->c.connection_timeout, 3600);
    assert_bad(fx, "connection_timeout", "0");
    assert_bad(fx, "connection_timeout", "3601");
    assert_int_equal(set(fx, "shutdown_timeout", "0"), GR_OK);
    assert_int_equal(fx->c.shutdown_timeout, 0);
    assert_int_equal(set(fx, "shutdown_timeout", "3600"), GR_OK);
    assert_bad(fx, "shutdown_timeout", "-1");
    assert_bad(fx, "shutdown_timeout", "3601");
    assert_bad(fx, "shutdown_timeout", "10s");
    assert_int_equal(fx->c.shutdown_timeout, 3600);
}

static void config_set__npm_token_lifetime__range_checked(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "npm-token-lifetime", "0"), GR_OK);
    assert_int_equal(fx->c.npm_token_lifetime, 0);
    assert_int_equal(set(fx, "npm_token_lifetime", "315360000"), GR_OK);
    assert_int_equal(fx->c.npm_token_lifetime, 315360000);
    assert_bad(fx, "npm_token_lifetime", "-1");
    assert_bad(fx, "npm_token_lifetime", "315360001");
    assert_bad(fx, "npm_token_lifetime", "1y");
    assert_int_equal(fx->c.npm_token_lifetime, 315360000);
}

/* ---- config_load_file ----------------------------------------------------- */

static void config_load_file__comments_blanks_quotes__applied(void **state)
{
    struct fx *fx = *state;
    write_file(fx, "# granary settings\n"
                   "\n"
                   "   \n"
                   "  # indented comment\n"
                   "data_dir = /srv/granary\n"
                   "listen=[::1]:9000\n"
                   "\tthreads   =   4  \n"
                   "log-level = \"debug\"\n"
                   "database_url = \"postgres://u@h/db?sslmode=disable&x=1\"\n"
                   "max_body_size = 1G\r\n"
                   "anonymous_read = yes\n");
    assert_int_equal(config_load_file(&fx->c, fx->file, fx->err, sizeof(fx->err)), GR_OK);
    assert_string_equal(fx->c.data_dir, "/srv/granary");
    assert_string_equal(fx->c.listen_host, "::1");
    assert_int_equal(fx->c.listen_port, 9000);
    assert_int_equal(fx->c.threads, 4);
    assert_string_equal(fx->c.log_level, "debug");
    assert_string_equal(fx->c.database_url, "postgres://u@h/db?sslmode=disable&x=1");
    assert_int_equal(fx->c.max_body_size, 1ULL << 30);
    assert_int_equal(fx->c.anonymous_read, 1);
    /* untouched keys keep their defaults */
    assert_int_equal(fx->c.db_pool_size, 16);
}

static void config_load_file__empty_quoted__empty_value(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(set(fx, "database_url", "postgres://x"), GR_OK);
    write_file(fx, "database_url = \"\"\n");
    assert_int_equal(config_load_file(&fx->c, fx->file, fx->err, sizeof(fx->err)), GR_OK);
    assert_string_equal(fx->c.database_url, "");
}

static void config_load_file__empty_file__ok(void **state)
{
    struct fx *fx = *state;
    write_file(fx, "");
    assert_int_equal(config_load_file(&fx->c, fx->file, fx->err, sizeof(fx->err)), GR_OK);
    assert_int_equal(fx->c.listen_port, 8080);
}

static void config_load_file__line_without_equals__einval_file_line(void **state)
{
    struct fx *fx = *state;
    char want[256];
    write_file(fx, "# ok\nthreads = 2\nthis is not a setting\nthreads = 3\n");
    assert_int_equal(config_load_file(&fx->c, fx->file, fx->err, sizeof(fx->err)), GR_EINVAL);
    snprintf(want, sizeof(want), "%s:3: expected 'key = value'", fx->file);
    assert_string_equal(fx->err, want);
    /* it stops at the bad line */
    assert_int_equal(fx->c.threads, 2);
}

static void config_load_file__bad_value__einval_file_line(void **state)
{
    struct fx *fx = *state;
    char want[256];
    write_file(fx, "\nlisten = 127.0.0.1:70000\n");
    assert_int_equal(config_load_file(&fx->c, fx->file, fx->err, sizeof(fx->err)), GR_EINVAL);
    snprintf(want, sizeof(want), "%s:2: ", fx->file);
    assert_memory_equal(fx->err, want, strlen(want));
    assert_non_null(strstr(fx->err, "70000"));
}

static void config_load_file__unknown_key__einval_file_line(void **state)
{
    struct fx *fx = *state;
    char want[256];
    write_file(fx, "colour = blue\n");
    assert_int_equal(config_load_file(&fx->c, fx->file, fx->err, sizeof(fx->err)), GR_EINVAL);
    snprintf(want, sizeof(want), "%s:1: unknown setting 'colour'", fx->file);
    assert_string_equal(fx->err, want);
}

static void config_load_file__missing__eio(void **state)
{
    struct fx *fx = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/absent.conf", fx->dir);
    assert_int_equal(config_load_file(&fx->c, path, fx->err, sizeof(fx->err)), GR_EIO);
    assert_non_null(strstr(fx->err, path));
}

/* ---- config_load_env ------------------------------------------------------ */

static void config_load_env__granary_vars__applied(void **state)
{
    struct fx *fx = *state;
    char *const *envp =
        ENVP(S("PATH=/usr/bin"), S("GRANARY_LISTEN=0.0.0.0:81"), S("GRANARY_DB_POOL_SIZE=12"),
             S("GRANARY_ANONYMOUS_READ=off"), S("HOME=/root"));
    assert_int_equal(config_load_env(&fx->c, envp, fx->err, sizeof(fx->err)), GR_OK);
    assert_string_equal(fx->c.listen_host, "0.0.0.0");
    assert_int_equal(fx->c.listen_port, 81);
    assert_int_equal(fx->c.db_pool_size, 12);
    assert_int_equal(fx->c.anonymous_read, 0);
}

static void config_load_env__non_settings__ignored(void **state)
{
    struct fx *fx = *state;
    char *const *envp =
        ENVP(S("GRANARY_CONFIG=/nonexistent"), S("GRANARY_TEST_DB=x"),
             S("GRANARY_PG_BIN=/usr/lib/postgresql"), S("GRANARY"), S("NOTGRANARY_THREADS=3"));
    assert_int_equal(config_load_env(&fx->c, envp, fx->err, sizeof(fx->err)), GR_OK);
    assert_int_equal(fx->c.threads, 0);
    assert_int_equal(config_load_env(&fx->c, NULL, fx->err, sizeof(fx->err)), GR_OK);
}

static void config_load_env__bad_value__einval_names_variable(void **state)
{
    struct fx *fx = *state;
    char *const *envp = ENVP(S("GRANARY_THREADS=many"));
    assert_int_equal(config_load_env(&fx->c, envp, fx->err, sizeof(fx->err)), GR_EINVAL);
    assert_non_null(strstr(fx->err, "GRANARY_THREADS"));
    assert_non_null(strstr(fx->err, "many"));
}

static void config_load_env__unknown_setting__einval(void **state)
{
    struct fx *fx = *state;
    char *const *envp = ENVP(S("GRANARY_COLOUR=blue"));
    assert_int_equal(config_load_env(&fx->c, envp, fx->err, sizeof(fx->err)), GR_EINVAL);
    assert_non_null(strstr(fx->err, "GRANARY_COLOUR"));
}

/* ---- config_load: precedence and flags ------------------------------------ */

static void config_load__nothing__defaults(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"), NULL};
    fx->c.threads = 99;
    assert_int_equal(load(fx, 1, argv, NULL), GR_OK);
    assert_int_equal(fx->c.threads, 0);
    assert_int_equal(fx->c.listen_port, 8080);
    assert_false(fx->c.show_help);
}

static void config_load__env_over_file__env_wins(void **state)
{
    struct fx *fx = *state;
    char cfg[200];
    write_file(fx, "threads = 2\ndb_pool_size = 5\n");
    snprintf(cfg, sizeof(cfg), "GRANARY_CONFIG=%s", fx->file);
    char *const envp[] = {cfg, S("GRANARY_THREADS=3"), NULL};
    char *const argv[] = {S("granaryd"), NULL};
    assert_int_equal(load(fx, 1, argv, envp), GR_OK);
    assert_int_equal(fx->c.threads, 3);      /* env beats the file */
    assert_int_equal(fx->c.db_pool_size, 5); /* the file beats defaults */
}

static void config_load__flags_over_env__flags_win(void **state)
{
    struct fx *fx = *state;
    write_file(fx, "threads = 2\ndb_pool_size = 5\nlog_level = warn\n");
    char *const envp[] = {S("GRANARY_THREADS=3"), S("GRANARY_DB_POOL_SIZE=6"), NULL};
    char *const argv[] = {S("granaryd"), S("--config"), fx->file, S("--threads"), S("4"), NULL};
    assert_int_equal(load(fx, 5, argv, envp), GR_OK);
    assert_int_equal(fx->c.threads, 4);
    assert_int_equal(fx->c.db_pool_size, 6);
    assert_string_equal(fx->c.log_level, "warn");
}

static void config_load__config_flag_over_env_file__flag_file_used(void **state)
{
    struct fx *fx = *state;
    char flag[200];
    write_file(fx, "threads = 7\n");
    snprintf(flag, sizeof(flag), "--config=%s", fx->file);
    char *const envp[] = {S("GRANARY_CONFIG=/nonexistent/granary.conf"), NULL};
    char *const argv[] = {S("granaryd"), flag, NULL};
    assert_int_equal(load(fx, 2, argv, envp), GR_OK);
    assert_int_equal(fx->c.threads, 7);
}

static void config_load__both_flag_forms__parsed(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"),          S("--data-dir=/d1"),        S("--listen"),
                          S("[::1]:8081"),        S("--max-body-size"),       S("3M"),
                          S("--log_level=debug"), S("--anonymous-read=true"), NULL};
    assert_int_equal(load(fx, 8, argv, NULL), GR_OK);
    assert_string_equal(fx->c.data_dir, "/d1");
    assert_string_equal(fx->c.listen_host, "::1");
    assert_int_equal(fx->c.listen_port, 8081);
    assert_int_equal(fx->c.max_body_size, 3ULL << 20);
    assert_string_equal(fx->c.log_level, "debug");
    assert_int_equal(fx->c.anonymous_read, 1);
}

static void config_load__value_with_equals__kept_whole(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"), S("--database-url=postgres://h/db?a=b&c=d"), NULL};
    assert_int_equal(load(fx, 2, argv, NULL), GR_OK);
    assert_string_equal(fx->c.database_url, "postgres://h/db?a=b&c=d");
}

static void config_load__help_and_version__flags_set(void **state)
{
    struct fx *fx = *state;
    char *const a1[] = {S("granaryd"), S("--help"), NULL};
    assert_int_equal(load(fx, 2, a1, NULL), GR_OK);
    assert_true(fx->c.show_help);
    assert_false(fx->c.show_version);

    char *const a2[] = {S("granaryd"), S("--version"), NULL};
    assert_int_equal(load(fx, 2, a2, NULL), GR_OK);
    assert_false(fx->c.show_help);
    assert_true(fx->c.show_version);

    char *const a3[] = {S("granaryd"), S("-h"), NULL};
    assert_int_equal(load(fx, 2, a3, NULL), GR_OK);
    assert_true(fx->c.show_help);
}

static void config_load__usage__mentions_every_flag(void **state)
{
    (void)state;
    const char *u = config_usage();
    static const char *const flags[] = {"--config",
                                        "--data-dir",
                                        "--listen",
                                        "--database-url",
                                        "--db-pool-size",
                                        "--threads",
                                        "--max-body-size",
                                        "--anonymous-read",
                                        "--log-level",
                                        "--cache-size-mb",
                                        "--connection-timeout",
                                        "--shutdown-timeout",
                                        "--npm-token-lifetime",
                                        "--help",
                                        "--version"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strstr(u, flags[i]) == NULL)
            fail_msg("usage does not mention %s", flags[i]);
}

static void config_load__missing_value__einval(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"), S("--listen"), NULL};
    assert_int_equal(load(fx, 2, argv, NULL), GR_EINVAL);
    assert_string_equal(fx->err, "option '--listen' needs a value");

    char *const a2[] = {S("granaryd"), S("--config"), NULL};
    assert_int_equal(load(fx, 2, a2, NULL), GR_EINVAL);
    assert_non_null(strstr(fx->err, "--config"));
}

static void config_load__unknown_flag__einval(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"), S("--colour=blue"), NULL};
    assert_int_equal(load(fx, 2, argv, NULL), GR_EINVAL);
    assert_string_equal(fx->err, "unknown setting 'colour'");
}

static void config_load__bare_argument__einval(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"), S("serve"), NULL};
    assert_int_equal(load(fx, 2, argv, NULL), GR_EINVAL);
    assert_string_equal(fx->err, "unexpected argument 'serve'");
}

static void config_load__bad_flag_value__einval(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"), S("--listen=127.0.0.1:70000"), NULL};
    assert_int_equal(load(fx, 2, argv, NULL), GR_EINVAL);
    assert_non_null(strstr(fx->err, "70000"));
}

static void config_load__bad_file_line__einval_file_line(void **state)
{
    struct fx *fx = *state;
    char want[256];
    write_file(fx, "threads = 1\nthreads = lots\n");
    char *const argv[] = {S("granaryd"), S("--config"), fx->file, NULL};
    assert_int_equal(load(fx, 3, argv, NULL), GR_EINVAL);
    snprintf(want, sizeof(want), "%s:2: ", fx->file);
    assert_memory_equal(fx->err, want, strlen(want));
}

static void config_load__missing_config_file__einval(void **state)
{
    struct fx *fx = *state;
    char *const argv[] = {S("granaryd"), S("--config"), S("/nonexistent/granary.conf"), NULL};
    assert_int_equal(load(fx, 3, argv, NULL), GR_EINVAL);
    assert_non_null(strstr(fx->err, "/nonexistent/granary.conf"));
}

static void config_load__bad_env__einval(void **state)
{
    struct fx *fx = *state;
    char *const envp[] = {S("GRANARY_LISTEN=nowhere"), NULL};
    char *const argv[] = {S("granaryd"), NULL};
    assert_int_equal(load(fx, 1, argv, envp), GR_EINVAL);
    assert_non_null(strstr(fx->err, "GRANARY_LISTEN"));
}

/* ---- the binary provider's settings (docs/storage.md) --------------------- */

static void config_set__storage_provider__checked(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(fx->c.storage_provider, "local");
    assert_int_equal(fx->c.cache_max_bytes, -1); /* the default size */
    assert_int_equal(fx->c.s3_path_style, -1);   /* on unless set */
    assert_int_equal(set(fx, "storage_provider", "shared-fs"), GR_OK);
    assert_string_equal(fx->c.storage_provider, "shared-fs");
    assert_bad(fx, "storage_provider", "nfs");
    assert_bad(fx, "storage_provider", "S3");
    assert_string_equal(fx->c.storage_provider, "shared-fs");
    assert_int_equal(set(fx, "s3_endpoint", "https://s3.example.test:9000"), GR_OK);
    assert_bad(fx, "s3_endpoint", "s3.example.test");
    assert_bad(fx, "s3_endpoint", "ftp://s3.example.test");
    assert_string_equal(fx->c.s3_endpoint, "https://s3.example.test:9000");
    assert_int_equal(set(fx, "s3_path_style", "off"), GR_OK);
    assert_int_equal(fx->c.s3_path_style, 0);
    assert_bad(fx, "s3_path_style", "sometimes");
    assert_int_equal(set(fx, "cache_max_bytes", "0"), GR_OK);
    assert_int_equal(fx->c.cache_max_bytes, 0);
    assert_int_equal(set(fx, "cache_max_bytes", "2G"), GR_OK);
    assert_int_equal(fx->c.cache_max_bytes, 2LL << 30);
    assert_bad(fx, "cache_max_bytes", "-1");
    assert_bad(fx, "cache_max_bytes", "lots");
}

static void config_load__storage_settings__file_env_flags(void **state)
{
    struct fx *fx = *state;
    write_file(fx, "storage_provider = s3\n"
                   "s3_endpoint = http://127.0.0.1:4568\n"
                   "s3_bucket = from-file\n"
                   "s3_prefix = granary/\n"
                   "s3_access_key_file = /etc/granary/ak\n"
                   "s3_secret_key_file = /etc/granary/sk\n");
    char cfg[160];
    snprintf(cfg, sizeof(cfg), "GRANARY_CONFIG=%s", fx->file);
    char *const *envp =
        ENVP(S(cfg), S("GRANARY_S3_BUCKET=from-env"), S("GRANARY_S3_REGION=eu-west-1"),
             S("GRANARY_S3_SECRET_KEY=env-secret"));
    char *const argv[] = {
        S("granaryd"), S("--s3-region"),      S("eu-central-1"), S("--cache-max-bytes"),
        S("1M"),       S("--shared-fs-path"), S("/srv/granary"), NULL};
    assert_int_equal(load(fx, 7, argv, envp), GR_OK);
    assert_string_equal(fx->c.storage_provider, "s3");
    assert_string_equal(fx->c.s3_endpoint, "http://127.0.0.1:4568");
    assert_string_equal(fx->c.s3_bucket, "from-env");
    assert_string_equal(fx->c.s3_region, "eu-central-1");
    assert_string_equal(fx->c.s3_prefix, "granary/");
    assert_string_equal(fx->c.s3_access_key_file, "/etc/granary/ak");
    assert_string_equal(fx->c.s3_secret_key_file, "/etc/granary/sk");
    assert_string_equal(fx->c.s3_secret_key, "env-secret");
    assert_string_equal(fx->c.shared_fs_path, "/srv/granary");
    assert_int_equal(fx->c.cache_max_bytes, 1LL << 20);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_defaults__fresh__documented_values),
        T(config_set__data_dir__copied),
        T(config_set__listen_bare_ipv6__einval),
        T(config_set__cache_size_mb__plain_megabytes),
        T(config_set__data_dir_too_long__einval),
        T(config_set__key_spellings__accepted),
        T(config_set__unknown_key__einval_with_message),
        T(config_set__small_err_buffer__truncated),
        T(config_set__listen__host_and_port),
        T(config_set__listen_ipv6_brackets__host_unbracketed),
        T(config_set__listen_bad__einval_unchanged),
        T(config_set__database_url__copied),
        T(config_set__db_pool_size__range_checked),
        T(config_set__threads__range_checked),
        T(config_set__max_body_size_suffixes__scaled),
        T(config_set__max_body_size_bad__einval),
        T(config_set__size_negative_leading_space__einval),
        T(config_set__cache_size_mb__parsed),
        T(config_set__anonymous_read_bool_spellings__parsed),
        T(config_set__anonymous_read_bad__einval),
        T(config_set__log_level__checked),
        T(config_set__timeouts__range_checked),
        T(config_set__npm_token_lifetime__range_checked),
        T(config_load_file__comments_blanks_quotes__applied),
        T(config_load_file__empty_quoted__empty_value),
        T(config_load_file__empty_file__ok),
        T(config_load_file__line_without_equals__einval_file_line),
        T(config_load_file__bad_value__einval_file_line),
        T(config_load_file__unknown_key__einval_file_line),
        T(config_load_file__missing__eio),
        T(config_load_env__granary_vars__applied),
        T(config_load_env__non_settings__ignored),
        T(config_load_env__bad_value__einval_names_variable),
        T(config_load_env__unknown_setting__einval),
        T(config_load__nothing__defaults),
        T(config_load__env_over_file__env_wins),
        T(config_load__flags_over_env__flags_win),
        T(config_load__config_flag_over_env_file__flag_file_used),
        T(config_load__both_flag_forms__parsed),
        T(config_load__value_with_equals__kept_whole),
        T(config_load__help_and_version__flags_set),
        T(config_load__usage__mentions_every_flag),
        T(config_load__missing_value__einval),
        T(config_load__unknown_flag__einval),
        T(config_load__bare_argument__einval),
        T(config_load__bad_flag_value__einval),
        T(config_load__bad_file_line__einval_file_line),
        T(config_load__missing_config_file__einval),
        T(config_load__bad_env__einval),
        T(config_set__storage_provider__checked),
        T(config_load__storage_settings__file_env_flags),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
