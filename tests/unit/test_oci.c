/*
 * test_oci.c - unit tests of the pure OCI rules (formats/oci/oci.h): image
 * names, tags, digests, the routes below /v2/ read from the right,
 * manifests of the four types, Accept and Content-Range.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "formats/oci/oci.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int setup(void **state)
{
    *state = gr_arena_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    gr_arena_free(*state);
    return 0;
}

static void oci_image_valid__spec_grammar__enforced(void **state)
{
    (void)state;
    assert_true(oci_image_valid("app"));
    assert_true(oci_image_valid("team/app"));
    assert_true(oci_image_valid("a.b_c__d---e/f0"));
    assert_false(oci_image_valid(""));
    assert_false(oci_image_valid("App"));
    assert_false(oci_image_valid("team//app"));
    assert_false(oci_image_valid("/app"));
    assert_false(oci_image_valid("app/"));
    assert_false(oci_image_valid("a___b"));
    assert_false(oci_image_valid("-a"));
    assert_false(oci_image_valid("a."));
    assert_false(oci_image_valid("_blobs"));
    assert_false(oci_image_valid("a/_tags"));
}

static void oci_tag_valid__spec_grammar__enforced(void **state)
{
    (void)state;
    char t[130];
    assert_true(oci_tag_valid("latest"));
    assert_true(oci_tag_valid("_x.1-Y"));
    assert_false(oci_tag_valid(""));
    assert_false(oci_tag_valid("-x"));
    assert_false(oci_tag_valid(".x"));
    assert_false(oci_tag_valid("a/b"));
    assert_false(oci_tag_valid("sha256:" D64));
    memset(t, 'a', 128);
    t[128] = '\0';
    assert_true(oci_tag_valid(t));
    t[128] = 'a', t[129] = '\0';
    assert_false(oci_tag_valid(t));
}

static void oci_upload_id_valid__uuid__only(void **state)
{
    (void)state;
    assert_true(oci_upload_id_valid("0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"));
    assert_false(oci_upload_id_valid("0f1e2d3c4b5a49788a6b5c4d3e2f1a0b"));
    assert_false(oci_upload_id_valid("0F1E2D3C-4B5A-4978-8A6B-5C4D3E2F1A0B"));
    assert_false(oci_upload_id_valid("0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0"));
    assert_false(oci_upload_id_valid("0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0bb"));
    assert_false(oci_upload_id_valid("0f1e2d3c-4b5a-4978-8a6b+5c4d3e2f1a0b"));
    assert_false(oci_upload_id_valid("../../../../../../../../../../../.."));
    assert_false(oci_upload_id_valid(""));
}

static void oci_digest_parse__algorithms__sha256_and_sha512_only(void **state)
{
    (void)state;
    struct oci_digest d;
    assert_int_equal(oci_digest_parse("sha256:" D64, &d), GR_OK);
    assert_string_equal(d.alg, "sha256");
    assert_string_equal(d.text, "sha256:" D64);
    assert_int_equal(oci_digest_parse("sha512:" D64 D64, &d), GR_OK);
    assert_int_equal(oci_digest_parse("sha512:" D64, &d), GR_EINVAL);
    assert_int_equal(oci_digest_parse("sha256:" D64 "0", &d), GR_EINVAL);
    assert_int_equal(
        oci_digest_parse("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                         &d),
        GR_EINVAL);
    assert_int_equal(oci_digest_parse("md5:d41d8cd98f00b204e9800998ecf8427e", &d), GR_EINVAL);
    assert_int_equal(oci_digest_parse("sha256", &d), GR_EINVAL);
    assert_int_equal(oci_digest_parse(":" D64, &d), GR_EINVAL);
    assert_int_equal(oci_digest_parse(NULL, &d), GR_EINVAL);
}

static void oci_route_parse__from_the_right__names_with_kind_words(void **state)
{
    struct gr_arena *a = *state;
    struct oci_route rt;
    const char *why;
    assert_int_equal(oci_route_parse(a, "", false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_BASE);
    assert_int_equal(oci_route_parse(a, "_catalog", false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_CATALOG);
    assert_int_equal(oci_route_parse(a, "token", false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_TOKEN);
    assert_int_equal(oci_route_parse(a, "docker-local/team/app/manifests/v1", false, &rt, &why),
                     GR_OK);
    assert_int_equal(rt.op, OCI_MANIFEST);
    assert_string_equal(rt.repo, "docker-local");
    assert_string_equal(rt.image, "team/app");
    assert_string_equal(rt.ref, "v1");
    /* an image whose components are the kind words */
    assert_int_equal(
        oci_route_parse(a, "r/manifests/blobs/manifests/sha256:" D64, false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_MANIFEST);
    assert_string_equal(rt.image, "manifests/blobs");
    assert_int_equal(oci_route_parse(a, "r/img/blobs/uploads/", true, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_UPLOAD_NEW);
    assert_int_equal(oci_route_parse(a, "r/img/blobs/uploads", true, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_UPLOAD_NEW);
    assert_int_equal(oci_route_parse(a, "r/img/blobs/uploads/abc", false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_UPLOAD);
    assert_string_equal(rt.ref, "abc");
    assert_string_equal(rt.image, "img");
    assert_int_equal(oci_route_parse(a, "r/img/blobs/sha256%3A" D64, false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_BLOB);
    assert_string_equal(rt.ref, "sha256:" D64);
    assert_int_equal(oci_route_parse(a, "r/a/b/tags/list", false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_TAGS);
    assert_string_equal(rt.name, "r/a/b");
    assert_int_equal(oci_route_parse(a, "r/a/referrers/sha256:" D64, false, &rt, &why), GR_OK);
    assert_int_equal(rt.op, OCI_REFERRERS);
    /* refused */
    assert_int_equal(oci_route_parse(a, "r/manifests/v1", false, &rt, &why), GR_EINVAL);
    assert_int_equal(oci_route_parse(a, "r/UP/manifests/v1", false, &rt, &why), GR_EINVAL);
    assert_int_equal(oci_route_parse(a, "bad key!/a/manifests/v1", false, &rt, &why), GR_EINVAL);
    assert_int_equal(oci_route_parse(a, "r/a/manifests/x%00", false, &rt, &why), GR_EINVAL);
    assert_int_equal(oci_route_parse(a, "r/a/whatever/x", false, &rt, &why), GR_ENOTFOUND);
    assert_int_equal(oci_route_parse(a, "r/a/manifests/", false, &rt, &why), GR_ENOTFOUND);
}

static const char *manifest_oci =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"artifactType\":\"application/x.sbom\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"sha256:" D64
    "\",\"size\":2},"
    "\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"sha256:" D64 "\",\"size\":5},"
    "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"digest\":"
    "\"sha256:" D64 "\",\"size\":7,\"urls\":[\"http://x\"]}],"
    "\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":"
    "\"sha256:" D64 "\",\"size\":9},\"annotations\":{\"k\":\"v\"}}";

static void oci_manifest_parse__image_and_artifact__refs_subject_type(void **state)
{
    struct gr_arena *a = *state;
    struct oci_manifest m;
    const char *why = NULL;
    assert_int_equal(oci_manifest_parse(a, manifest_oci, strlen(manifest_oci),
                                        "application/vnd.oci.image.manifest.v1+json", &m, &why),
                     GR_OK);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    assert_string_equal(m.artifact_type, "application/x.sbom");
    assert_string_equal(m.subject, "sha256:" D64);
    assert_string_equal(m.annotations, "{\"k\":\"v\"}");
    assert_int_equal(m.nrefs, 3);
    assert_false(m.refs[0].manifest);
    assert_int_equal(m.refs[1].size, 5);
    assert_true(m.refs[2].foreign);
    /* the mediaType field against a different Content-Type */
    assert_int_equal(
        oci_manifest_parse(a, manifest_oci, strlen(manifest_oci), OCI_MT_OCI_INDEX, &m, &why),
        GR_EINVAL);
    /* parameters of the Content-Type are ignored */
    assert_int_equal(oci_manifest_parse(a, manifest_oci, strlen(manifest_oci),
                                        OCI_MT_OCI_MANIFEST "; charset=utf-8", &m, &why),
                     GR_OK);
    /* an empty artifactType is a missing one: the config's mediaType stands in */
    const char *empty_at =
        "{\"schemaVersion\":2,\"artifactType\":\"\",\"config\":{\"mediaType\":\"application/"
        "x.cfg\",\"digest\":\"sha256:" D64 "\",\"size\":2},\"layers\":[]}";
    assert_int_equal(oci_manifest_parse(a, empty_at, strlen(empty_at), NULL, &m, &why), GR_OK);
    assert_string_equal(m.artifact_type, "application/x.cfg");
    /* an index without one has none */
    const char *idx =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX "\",\"manifests\":[]}";
    assert_int_equal(oci_manifest_parse(a, idx, strlen(idx), NULL, &m, &why), GR_OK);
    assert_null(m.artifact_type);
}

static void oci_manifest_parse__index_and_bad_documents(void **state)
{
    struct gr_arena *a = *state;
    struct oci_manifest m;
    const char *why = NULL;
    const char *idx =
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:" D64
        "\",\"size\":1}]}";
    /* no mediaType field: the Content-Type, else the shape */
    assert_int_equal(oci_manifest_parse(a, idx, strlen(idx), OCI_MT_DOCKER_LIST, &m, &why), GR_OK);
    assert_string_equal(m.media_type, OCI_MT_DOCKER_LIST);
    assert_true(m.refs[0].manifest);
    assert_int_equal(oci_manifest_parse(a, idx, strlen(idx), NULL, &m, &why), GR_OK);
    assert_string_equal(m.media_type, OCI_MT_OCI_INDEX);
    static const char *bad[] = {
        "[]",
        "{\"schemaVersion\":1}",
        "{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"config\":{},\"layers\":[]}",
        "{\"schemaVersion\":2,\"layers\":[]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:0\",\"size\":1,\"mediaType\":"
        "\"x\"}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" D64 "\",\"size\":-1,"
        "\"mediaType\":\"x\"}]}",
        "{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}",
        "{not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(oci_manifest_parse(a, bad[i], strlen(bad[i]), NULL, &m, &why), GR_EINVAL);
        assert_non_null(why);
    }
}

static void oci_accepts__lists_wildcards_parameters(void **state)
{
    (void)state;
    assert_true(oci_accepts(NULL, OCI_MT_OCI_INDEX));
    assert_true(oci_accepts("application/vnd.oci.image.index.v1+json", OCI_MT_OCI_INDEX));
    assert_true(
        oci_accepts("a/b, application/vnd.oci.image.index.v1+json;q=0.5", OCI_MT_OCI_INDEX));
    assert_true(oci_accepts("*/*", OCI_MT_OCI_INDEX));
    assert_true(oci_accepts("application/*", OCI_MT_OCI_INDEX));
    assert_false(oci_accepts(OCI_MT_DOCKER_MANIFEST ", " OCI_MT_OCI_MANIFEST, OCI_MT_OCI_INDEX));
    assert_false(oci_accepts("text/*", OCI_MT_OCI_INDEX));
}

static void oci_content_range__forms(void **state)
{
    (void)state;
    uint64_t a, b;
    assert_int_equal(oci_content_range("0-99", &a, &b), GR_OK);
    assert_true(a == 0 && b == 99);
    assert_int_equal(oci_content_range("bytes=100-199", &a, &b), GR_OK);
    assert_true(a == 100 && b == 199);
    assert_int_equal(oci_content_range("bytes 5-9/100", &a, &b), GR_OK);
    assert_int_equal(oci_content_range("9-5", &a, &b), GR_EINVAL);
    assert_int_equal(oci_content_range("garbage", &a, &b), GR_EINVAL);
    assert_int_equal(oci_content_range("1-", &a, &b), GR_EINVAL);
    assert_int_equal(oci_content_range(NULL, &a, &b), GR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oci_image_valid__spec_grammar__enforced),
        cmocka_unit_test(oci_tag_valid__spec_grammar__enforced),
        cmocka_unit_test(oci_upload_id_valid__uuid__only),
        cmocka_unit_test(oci_digest_parse__algorithms__sha256_and_sha512_only),
        cmocka_unit_test_setup_teardown(oci_route_parse__from_the_right__names_with_kind_words,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(oci_manifest_parse__image_and_artifact__refs_subject_type,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(oci_manifest_parse__index_and_bad_documents, setup,
                                        teardown),
        cmocka_unit_test(oci_accepts__lists_wildcards_parameters),
        cmocka_unit_test(oci_content_range__forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
