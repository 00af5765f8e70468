-- 0008: redundant binary storage (docs/blobs.md). Which nodes hold a copy of
-- each binary, and the garbage collector's tombstones.
--
-- binaries.touched: the last time an upload or a checksum deploy referenced
-- the binary; the collector spares binaries touched within its grace period.
-- binaries.tombstoned: set by the collector in a committed transaction when
-- nothing references the binary; only then may files be deleted. An upload
-- that meets a tombstone clears it (under the row lock) before it publishes
-- a copy, so no upload ever renames a file into place under a tombstone.
ALTER TABLE binaries ADD COLUMN touched timestamptz NOT NULL DEFAULT now();
ALTER TABLE binaries ADD COLUMN tombstoned timestamptz;
CREATE INDEX binaries_tombstoned ON binaries (tombstoned) WHERE tombstoned IS NOT NULL;
CREATE INDEX binaries_touched ON binaries (touched);

CREATE TABLE binary_locations (
    sha256  text NOT NULL REFERENCES binaries (sha256) ON DELETE CASCADE,
    node    text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sha256, node)
);
CREATE INDEX binary_locations_node ON binary_locations (node);

-- The identity of the filestore a node served last: a node that comes back
-- with a different one (an empty or replaced disk) forgets its locations.
ALTER TABLE cluster_nodes ADD COLUMN store_id text NOT NULL DEFAULT '';

-- Cluster-wide counters of the storage tasks, one row per node and name.
CREATE TABLE storage_stats (
    node  text NOT NULL,
    name  text NOT NULL,
    value bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (node, name)
);
