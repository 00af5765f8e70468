/*
 * test_maven.c - unit tests of the Maven layout (formats/maven/maven.h): path
 * parsing (files, classifiers, unique snapshots, checksum suffixes,
 * metadata at both levels, refusals), Maven's ComparableVersion order,
 * maven-metadata.xml rendering at both levels, SNAPSHOT resolution and
 * POM coordinates. Pure functions: no fixtures needed.
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

#include "base/arena.h"
#include "base/err.h"
#include "base/sbuf.h"
#include "formats/maven/maven.h"

static struct maven_path mp;

static void parse_ok(const char *path)
{
    const char *why = NULL;
    if (maven_parse_path(path, &mp, &why) != GR_OK)
        fail_msg("'%s' should parse: %s", path, why);
}

static void parse_bad(const char *path)
{
    const char *why = NULL;
    if (maven_parse_path(path, &mp, &why) == GR_OK)
        fail_msg("'%s' should not parse", path);
    assert_non_null(why);
}

static void maven_parse_path__release_jar__all_fields(void **state)
{
    (void)state;
    parse_ok("com/example/lib/x/1.0/x-1.0.jar");
    assert_int_equal(mp.kind, MAVEN_FILE);
    assert_string_equal(mp.group, "com.example.lib");
    assert_string_equal(mp.group_path, "com/example/lib");
    assert_string_equal(mp.artifact, "x");
    assert_string_equal(mp.version, "1.0");
    assert_string_equal(mp.file_version, "1.0");
    assert_string_equal(mp.classifier, "");
    assert_string_equal(mp.ext, "jar");
    assert_string_equal(mp.checksum, "");
    assert_false(mp.snapshot);
    assert_false(mp.timestamped);
}

static void maven_parse_path__classifier_and_compound_ext__split(void **state)
{
    (void)state;
    parse_ok("g/x-y/2.1.0/x-y-2.1.0-sources.jar");
    assert_string_equal(mp.artifact, "x-y");
    assert_string_equal(mp.classifier, "sources");
    assert_string_equal(mp.ext, "jar");
    parse_ok("g/x/1.0/x-1.0.tar.gz");
    assert_string_equal(mp.classifier, "");
    assert_string_equal(mp.ext, "tar.gz");
    parse_ok("g/x/1.0/x-1.0-bin.jar.asc");
    assert_string_equal(mp.classifier, "bin");
    assert_string_equal(mp.ext, "jar.asc");
}

static void maven_parse_path__checksum_suffix__stripped(void **state)
{
    (void)state;
    static const char *const sums[] = {"sha1", "md5", "sha256", "sha512"};
    for (int i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof(p), "g/x/1.0/x-1.0.pom.%s", sums[i]);
        parse_ok(p);
        assert_string_equal(mp.checksum, sums[i]);
        assert_string_equal(mp.base, "g/x/1.0/x-1.0.pom");
        assert_string_equal(mp.ext, "pom");
    }
}

static void maven_parse_path__unique_snapshot__timestamp_and_build(void **state)
{
    (void)state;
    parse_ok("org/a/x/1.0-SNAPSHOT/x-1.0-20261128.002356-3.jar");
    assert_true(mp.snapshot);
    assert_true(mp.timestamped);
    assert_string_equal(mp.version, "1.0-SNAPSHOT");
    assert_string_equal(mp.file_version, "1.0-20261128.002356-3");
    assert_string_equal(mp.timestamp, "20261128.002356");
    assert_int_equal(mp.build, 3);
    parse_ok("org/a/x/1.0-SNAPSHOT/x-1.0-20261128.002356-12-tests.jar");
    assert_int_equal(mp.build, 12);
    assert_string_equal(mp.classifier, "tests");
    parse_ok("org/a/x/1.0-SNAPSHOT/x-1.0-SNAPSHOT.jar");
    assert_true(mp.snapshot);
    assert_false(mp.timestamped);
    assert_string_equal(mp.file_version, "1.0-SNAPSHOT");
}

static void maven_parse_path__metadata__both_levels(void **state)
{
    (void)state;
    parse_ok("com/example/x/maven-metadata.xml");
    assert_int_equal(mp.kind, MAVEN_META_ARTIFACT);
    assert_string_equal(mp.group, "com.example");
    assert_string_equal(mp.artifact, "x");
    parse_ok("com/example/x/maven-metadata.xml.sha512");
    assert_int_equal(mp.kind, MAVEN_META_ARTIFACT);
    assert_string_equal(mp.checksum, "sha512");
    parse_ok("com/example/x/1.0-SNAPSHOT/maven-metadata.xml.md5");
    assert_int_equal(mp.kind, MAVEN_META_VERSION);
    assert_string_equal(mp.version, "1.0-SNAPSHOT");
    assert_string_equal(mp.artifact, "x");
    assert_string_equal(mp.group, "com.example");
}

static void maven_parse_path__off_layout__refused(void **state)
{
    (void)state;
    parse_bad("x-1.0.jar");
    parse_bad("g/x/1.0");
    parse_bad("g/x/1.0/y-1.0.jar");  /* another artifactId */
    parse_bad("g/x/1.0/x-1.1.jar");  /* another version */
    parse_bad("g/x/1.0/x-1.0");      /* no extension */
    parse_bad("g/x/1.0/x-1.0-.jar"); /* empty classifier */
    parse_bad("g/x/1.0/x-1.0extra.jar");
    parse_bad("g/x/1.0-SNAPSHOT/x-1.0-2026.jar");
    parse_bad("maven-metadata.xml");
}

static void cmp(const char *a, const char *b, int want)
{
    int got = maven_version_cmp(a, b);
    got = got < 0 ? -1 : got > 0 ? 1 : 0;
    if (got != want)
        fail_msg("cmp(%s, %s) = %d, expected %d", a, b, got, want);
    int rev = maven_version_cmp(b, a);
    rev = rev < 0 ? -1 : rev > 0 ? 1 : 0;
    if (rev != -want)
        fail_msg("cmp(%s, %s) = %d, expected %d", b, a, rev, -want);
}

/* Cases from Maven's ComparableVersionTest. */
static void maven_version_cmp__comparable_version__maven_order(void **state)
{
    (void)state;
    cmp("1", "2", -1);
    cmp("1.9", "1.10", -1);
    cmp("1.0", "1", 0);
    cmp("1.0.0", "1", 0);
    cmp("1-ga", "1", 0);
    cmp("1.final", "1", 0);
    cmp("1-alpha-1", "1-beta-1", -1);
    cmp("1-a1", "1-alpha-1", 0);
    cmp("1-beta-1", "1-milestone-1", -1);
    cmp("1-m1", "1-rc1", -1);
    cmp("1-rc1", "1-cr1", 0);
    cmp("1-rc1", "1-SNAPSHOT", -1);
    cmp("1-SNAPSHOT", "1", -1);
    cmp("1", "1-sp", -1);
    cmp("1-sp", "1-foo", -1);
    cmp("1.0-SNAPSHOT", "1.0", -1);
    cmp("1.0", "1.0.1", -1);
    cmp("1.0.1-SNAPSHOT", "1.0.1", -1);
    cmp("1.0", "1.0-1", -1);
    cmp("2.0", "10.0", -1);
    cmp("1.0-alpha", "1.0", -1);
    cmp("1.0.RELEASE", "1.0", 0);
    cmp("1.0-20261128.002356-3", "1.0", 1); /* a number after "-" is post-release */
    cmp("123456789012345678901234567890", "123456789012345678901234567891", -1);
    cmp("1.0.0.0.0.0.0.0.0.0.0.1", "1", 1);
}

static void render_artifact(const struct maven_file *f, int n, struct gr_sbuf *sb)
{
    assert_int_equal(maven_metadata_artifact("com.example", "x", f, n, sb), GR_OK);
}

static void maven_metadata_artifact__versions__sorted_latest_release(void **state)
{
    (void)state;
    /* 2026-11-28T00:23:56Z = 1795825436000 */
    const struct maven_file f[] = {
        {"com/example/x/1.10/x-1.10.jar", 1795825436000},
        {"com/example/x/1.10/x-1.10.pom", 1795825430000},
        {"com/example/x/1.9/x-1.9.jar", 1795825000000},
        {"com/example/x/2.0-SNAPSHOT/x-2.0-20261128.002356-1.jar", 1795825000000},
        {"com/example/x/junk.txt", 1895832000000},             /* off layout */
        {"com/example/x/y/1.0/y-1.0.jar", 1895832000000},      /* com.example.x:y */
        {"com/example/x/1.11/x-1.11.jar.sha1", 1895832000000}, /* checksum only */
    };
    struct gr_sbuf sb = GR_SBUF_INIT;
    render_artifact(f, 7, &sb);
    assert_string_equal(sb.buf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<metadata>\n"
                                "  <groupId>com.example</groupId>\n"
                                "  <artifactId>x</artifactId>\n"
                                "  <versioning>\n"
                                "    <latest>2.0-SNAPSHOT</latest>\n"
                                "    <release>1.10</release>\n"
                                "    <versions>\n"
                                "      <version>1.9</version>\n"
                                "      <version>1.10</version>\n"
                                "      <version>2.0-SNAPSHOT</version>\n"
                                "    </versions>\n"
                                "    <lastUpdated>20261128002356</lastUpdated>\n"
                                "  </versioning>\n"
                                "</metadata>\n");
    gr_sbuf_release(&sb);
    struct gr_sbuf none = GR_SBUF_INIT;
    assert_int_equal(maven_metadata_artifact("com.example", "x", f + 4, 3, &none), GR_ENOTFOUND);
    gr_sbuf_release(&none);
}

static const struct maven_file snap[] = {
    {"g/x/1.0-SNAPSHOT/x-1.0-20261128.002356-1.jar", 1795825436000},
    {"g/x/1.0-SNAPSHOT/x-1.0-20261128.002356-1.pom", 1795825436000},
    {"g/x/1.0-SNAPSHOT/x-1.0-20261128.002400-2.jar", 1795825440000},
    {"g/x/1.0-SNAPSHOT/x-1.0-20261128.002400-2.pom", 1795825440000},
    {"g/x/1.0-SNAPSHOT/x-1.0-20261128.002356-1-sources.jar", 1795825436000},
};

static void maven_metadata_snapshot__builds__newest_per_classifier(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    assert_int_equal(maven_metadata_snapshot("g", "x", "1.0-SNAPSHOT", snap, 5, &sb), GR_OK);
    assert_string_equal(sb.buf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<metadata modelVersion=\"1.1.0\">\n"
                                "  <groupId>g</groupId>\n"
                                "  <artifactId>x</artifactId>\n"
                                "  <version>1.0-SNAPSHOT</version>\n"
                                "  <versioning>\n"
                                "    <snapshot>\n"
                                "      <timestamp>20261128.002400</timestamp>\n"
                                "      <buildNumber>2</buildNumber>\n"
                                "    </snapshot>\n"
                                "    <lastUpdated>20261128002400</lastUpdated>\n"
                                "    <snapshotVersions>\n"
                                "      <snapshotVersion>\n"
                                "        <extension>jar</extension>\n"
                                "        <value>1.0-20261128.002400-2</value>\n"
                                "        <updated>20261128002400</updated>\n"
                                "      </snapshotVersion>\n"
                                "      <snapshotVersion>\n"
                                "        <extension>pom</extension>\n"
                                "        <value>1.0-20261128.002400-2</value>\n"
                                "        <updated>20261128002400</updated>\n"
                                "      </snapshotVersion>\n"
                                "      <snapshotVersion>\n"
                                "        <classifier>sources</classifier>\n"
                                "        <extension>jar</extension>\n"
                                "        <value>1.0-20261128.002356-1</value>\n"
                                "        <updated>20261128002356</updated>\n"
                                "      </snapshotVersion>\n"
                                "    </snapshotVersions>\n"
                                "  </versioning>\n"
                                "</metadata>\n");
    gr_sbuf_release(&sb);
}

static void maven_snapshot_resolve__non_unique_name__newest_build(void **state)
{
    (void)state;
    struct gr_arena *a = gr_arena_new();
    const char *out;
    parse_ok("g/x/1.0-SNAPSHOT/x-1.0-SNAPSHOT.jar");
    assert_int_equal(maven_snapshot_resolve(a, &mp, snap, 5, &out), GR_OK);
    assert_string_equal(out, "g/x/1.0-SNAPSHOT/x-1.0-20261128.002400-2.jar");
    parse_ok("g/x/1.0-SNAPSHOT/x-1.0-SNAPSHOT-sources.jar");
    assert_int_equal(maven_snapshot_resolve(a, &mp, snap, 5, &out), GR_OK);
    assert_string_equal(out, "g/x/1.0-SNAPSHOT/x-1.0-20261128.002356-1-sources.jar");
    parse_ok("g/x/1.0-SNAPSHOT/x-1.0-SNAPSHOT-javadoc.jar");
    assert_int_equal(maven_snapshot_resolve(a, &mp, snap, 5, &out), GR_ENOTFOUND);
    gr_arena_free(a);
}

static void maven_pom_gav__own_and_parent__coordinates(void **state)
{
    (void)state;
    struct gr_arena *a = gr_arena_new();
    const char *g, *art, *v;
    const char *pom =
        "<?xml version=\"1.0\"?>\n<project xmlns=\"http://maven.apache.org/POM/4.0.0\">"
        "<modelVersion>4.0.0</modelVersion><groupId> com.example </groupId>"
        "<artifactId>x</artifactId><version>1.0</version>"
        "<dependencies><dependency><groupId>o</groupId></dependency></dependencies>"
        "</project>";
    assert_int_equal(maven_pom_gav(a, pom, strlen(pom), &g, &art, &v), GR_OK);
    assert_string_equal(g, "com.example");
    assert_string_equal(art, "x");
    assert_string_equal(v, "1.0");
    const char *child = "<project><parent><groupId>p.g</groupId><artifactId>par</artifactId>"
                        "<version>2.0</version></parent><artifactId>kid</artifactId></project>";
    assert_int_equal(maven_pom_gav(a, child, strlen(child), &g, &art, &v), GR_OK);
    assert_string_equal(g, "p.g");
    assert_string_equal(art, "kid");
    assert_string_equal(v, "2.0");
    const char *bad = "this is no xml";
    assert_int_equal(maven_pom_gav(a, bad, strlen(bad), &g, &art, &v), GR_EINVAL);
    const char *other = "<html/>";
    assert_int_equal(maven_pom_gav(a, other, strlen(other), &g, &art, &v), GR_EINVAL);
    /* an external entity is not fetched nor expanded */
    const char *xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE p [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
        "<project><groupId>&e;</groupId><artifactId>x</artifactId></project>";
    assert_int_equal(maven_pom_gav(a, xxe, strlen(xxe), &g, &art, &v), GR_OK);
    assert_null(strstr(g ? g : "", "root:"));
    gr_arena_free(a);
}

static void maven_metadata_merge__members__union_latest_release(void **state)
{
    (void)state;
    struct gr_arena *a = gr_arena_new();
    const char *docs[] = {
        "<metadata><groupId>g</groupId><artifactId>x</artifactId><versioning><versions>"
        "<version>1.0</version><version>1.10</version></versions>"
        "<lastUpdated>20260101000000</lastUpdated></versioning></metadata>",
        "<?xml version=\"1.0\"?><metadata><groupId>g</groupId><artifactId>x</artifactId>"
        "<versioning><latest>2.0-SNAPSHOT</latest><versions><version>1.9</version>"
        "<version>1.0</version><version>2.0-SNAPSHOT</version></versions>"
        "<lastUpdated>20260601000000</lastUpdated></versioning></metadata>",
        "<not-xml",
    };
    const char *members[] = {"a", "b", "c"};
    size_t lens[] = {strlen(docs[0]), strlen(docs[1]), strlen(docs[2])};
    char *out;
    size_t len;
    assert_int_equal(
        maven_metadata_merge(a, "g/x/maven-metadata.xml", members, docs, lens, 3, &out, &len),
        GR_OK);
    assert_non_null(strstr(out, "<version>1.0</version>\n      <version>1.9</version>\n"
                                "      <version>1.10</version>\n      <version>2.0-SNAPSHOT"));
    assert_non_null(strstr(out, "<latest>2.0-SNAPSHOT</latest>"));
    assert_non_null(strstr(out, "<release>1.10</release>"));
    assert_non_null(strstr(out, "<lastUpdated>20260601000000</lastUpdated>"));
    assert_int_equal(len, strlen(out));
    /* a snapshot's metadata is the first member's, as it is */
    assert_int_equal(maven_metadata_merge(a, "g/x/2.0-SNAPSHOT/maven-metadata.xml", members, docs,
                                          lens, 2, &out, &len),
                     GR_OK);
    assert_string_equal(out, docs[0]);
    /* a group's plugin metadata cannot be merged: the caller serves the first */
    const char *plugins[] = {"<metadata><plugins><plugin><prefix>p</prefix></plugin></plugins>"
                             "</metadata>",
                             "<metadata/>"};
    size_t pl[] = {strlen(plugins[0]), strlen(plugins[1])};
    assert_int_equal(
        maven_metadata_merge(a, "g/maven-metadata.xml", members, plugins, pl, 2, &out, &len),
        GR_EINVAL);
    gr_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(maven_parse_path__release_jar__all_fields),
        cmocka_unit_test(maven_parse_path__classifier_and_compound_ext__split),
        cmocka_unit_test(maven_parse_path__checksum_suffix__stripped),
        cmocka_unit_test(maven_parse_path__unique_snapshot__timestamp_and_build),
        cmocka_unit_test(maven_parse_path__metadata__both_levels),
        cmocka_unit_test(maven_parse_path__off_layout__refused),
        cmocka_unit_test(maven_version_cmp__comparable_version__maven_order),
        cmocka_unit_test(maven_metadata_artifact__versions__sorted_latest_release),
        cmocka_unit_test(maven_metadata_snapshot__builds__newest_per_classifier),
        cmocka_unit_test(maven_snapshot_resolve__non_unique_name__newest_build),
        cmocka_unit_test(maven_pom_gav__own_and_parent__coordinates),
        cmocka_unit_test(maven_metadata_merge__members__union_latest_release),
    };
    return cmocka_run_group_tests_name("maven", tests, NULL, NULL);
}
