-- Leases and fencing that hold across a database failover
-- (docs/cluster.md "Across a database failover").

-- Cache leases judged without the database's clock: every renewal bumps
-- renewals, and a writer that has seen a node's counter stand still for a
-- whole lease, by its own monotonic clock, knows the node's lease is over.
-- Nodes of the previous version do not bump it: the trigger does, whenever
-- a renewal moves lease_expiry.
ALTER TABLE cluster_nodes ADD COLUMN renewals bigint NOT NULL DEFAULT 0;

CREATE FUNCTION cluster_nodes_renewals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.renewals = OLD.renewals AND NEW.lease_expiry IS DISTINCT FROM OLD.lease_expiry THEN
        NEW.renewals := OLD.renewals + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER cluster_nodes_renewals BEFORE UPDATE ON cluster_nodes
    FOR EACH ROW EXECUTE FUNCTION cluster_nodes_renewals();

-- A node whose filestore fails ('degraded': read-only, or errors on write)
-- holds no new copies; repair moves its copies' redundancy elsewhere.
ALTER TABLE cluster_nodes ADD COLUMN disk_state text NOT NULL DEFAULT 'ok';

-- What the primary did under its lease, each row written in the same
-- transaction as the action, under a share lock of the lease row checked
-- for the holder and token: rows of a newer token never precede rows of an
-- older one (tests/integration/80_partition.bats checks it).
CREATE TABLE primary_task_log (
    id      bigserial PRIMARY KEY,
    token   bigint NOT NULL,
    node    text NOT NULL,
    task    text NOT NULL,
    subject text NOT NULL DEFAULT '',
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
