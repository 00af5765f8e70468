-- 0012: binary providers (docs/storage.md). Where the cluster keeps the
-- copies of its binaries: the nodes' disks ('local'), a shared file system
-- ('shared-fs') or an S3-compatible object store ('s3'). The first node
-- records its provider; a node started with another refuses to start.
-- Changing it is a migration (granaryctl storage migrate), whose progress
-- is kept here so that another primary resumes it.
--
-- binary_locations names a store by a location id that is never a node id
-- ('store:shared-fs', 'store:s3'): node ids cannot contain ':'.
CREATE TABLE storage_provider (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    provider  text NOT NULL,             -- where uploads go: local, shared-fs, s3
    previous  text NOT NULL DEFAULT '',  -- the provider before the last migration, still read
    target    text NOT NULL DEFAULT '',  -- a migration: the provider binaries are copied to
    state     text NOT NULL DEFAULT '',  -- '', 'copying', 'finishing'
    rate      bigint NOT NULL DEFAULT 0, -- bytes/s the copy may use (0: no limit)
    cursor    text NOT NULL DEFAULT '',  -- the last sha256 copied in this pass
    copied    bigint NOT NULL DEFAULT 0,
    bytes     bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    started   timestamptz,
    switched  timestamptz,
    finished  timestamptz
);
