-- A migration as the next version of granary might ship, built into
-- build/future/granaryd only (never into a release): 25_rolling_upgrade.bats
-- runs that binary beside nodes built from this tree, which are then "one
-- version older". docs/operations.md promises that migrations are additive
-- so that older nodes keep working against the newer schema; this one makes
-- every kind of additive change on the tables those nodes use most.
ALTER TABLE artifacts ADD COLUMN probe_note text NOT NULL DEFAULT '';
ALTER TABLE binaries ADD COLUMN probe_flags integer NOT NULL DEFAULT 0;
ALTER TABLE binary_locations ADD COLUMN probe_verified timestamptz;
ALTER TABLE repositories ADD COLUMN probe_options jsonb NOT NULL DEFAULT '{}';
ALTER TABLE properties ADD COLUMN probe_source text;
ALTER TABLE cluster_nodes ADD COLUMN probe_capacity bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN probe_locale text;
ALTER TABLE trash ADD COLUMN probe_reason text;
CREATE INDEX probe_artifacts_note ON artifacts (probe_note);
CREATE TABLE probe_things (
    id bigserial PRIMARY KEY,
    note text NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
INSERT INTO settings (key, value) VALUES ('probe.enabled', 'true') ON CONFLICT DO NOTHING;
