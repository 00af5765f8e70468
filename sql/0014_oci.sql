-- 0013: the OCI registry (packageType docker, docs/oci.md) and binary pins.
--
-- binary_pins: a binary held by something that is not (yet) an artifact,
-- so that the garbage collector keeps it: the parts of an unfinished
-- upload session (owner 'oci-upload:<session id>', seq = the part's order).
-- The collector counts a pin as a reference, like an artifact or trash row.
CREATE TABLE binary_pins (
    owner   text NOT NULL,
    seq     int NOT NULL,
    sha256  text NOT NULL REFERENCES binaries (sha256),
    size    bigint NOT NULL CHECK (size >= 0),
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, seq)
);
CREATE INDEX binary_pins_sha256 ON binary_pins (sha256);

-- An upload session: any node continues it (its parts are replicated
-- binaries, pinned above). size: the bytes received so far (the next
-- chunk starts there); parts: how many pins it has.
CREATE TABLE oci_uploads (
    id         text PRIMARY KEY,
    repo       text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    name       text COLLATE "C" NOT NULL,
    size       bigint NOT NULL DEFAULT 0,
    parts      int NOT NULL DEFAULT 0,
    created_by text NOT NULL,
    created    timestamptz NOT NULL DEFAULT now(),
    updated    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oci_uploads_updated ON oci_uploads (updated);

-- Blobs pushed or mounted into an image. A link does not keep its binary
-- from the collector: a blob no manifest references (through its artifact
-- row <name>/_blobs/<digest>) goes after the grace period, and its links
-- with it.
CREATE TABLE oci_blobs (
    repo    text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    name    text COLLATE "C" NOT NULL,
    digest  text NOT NULL,
    sha256  text NOT NULL REFERENCES binaries (sha256) ON DELETE CASCADE,
    size    bigint NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, name, digest)
);
CREATE INDEX oci_blobs_sha256 ON oci_blobs (sha256);

-- Manifests of an image, by digest; their bytes are the artifact
-- <name>/_manifests/<digest>. subject and artifact_type feed the
-- referrers API.
CREATE TABLE oci_manifests (
    repo          text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    name          text COLLATE "C" NOT NULL,
    digest        text NOT NULL,
    sha256        text NOT NULL,
    size          bigint NOT NULL,
    media_type    text NOT NULL,
    artifact_type text,
    subject       text,
    annotations   text,
    created       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, name, digest)
);
CREATE INDEX oci_manifests_subject ON oci_manifests (repo, name, subject)
    WHERE subject IS NOT NULL;

-- Tags, lexically ordered (the tags list pages by them).
CREATE TABLE oci_tags (
    repo    text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    name    text COLLATE "C" NOT NULL,
    tag     text COLLATE "C" NOT NULL,
    digest  text NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, name, tag)
);
CREATE INDEX oci_tags_digest ON oci_tags (repo, name, digest);

-- What each manifest references: blobs (kind 'b': config and layers) and
-- manifests (kind 'm': an index's entries).
CREATE TABLE oci_refs (
    repo   text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    name   text COLLATE "C" NOT NULL,
    digest text NOT NULL,
    ref    text NOT NULL,
    kind   char(1) NOT NULL CHECK (kind IN ('b', 'm')),
    PRIMARY KEY (repo, name, digest, ref)
);
CREATE INDEX oci_refs_ref ON oci_refs (repo, name, ref);
