-- 0011: a repository's format settings in one jsonb column, validated by its
-- format (daemon/formats/<name>/), the way a foreign-data wrapper's validator
-- checks OPTIONS: a new format adds keys, never columns. The Maven columns of
-- 0006 move in under their JSON names.
--
-- The old columns stay for one release, kept equal to the settings by a
-- trigger in both directions, so that a node of the previous version keeps
-- reading and writing correct values during a rolling upgrade
-- (docs/operations.md). A later migration drops them.
ALTER TABLE repositories ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(settings) = 'object');

UPDATE repositories SET settings = jsonb_build_object(
        'handleReleases', handle_releases,
        'handleSnapshots', handle_snapshots,
        'maxUniqueSnapshots', max_unique_snapshots,
        'suppressPomConsistencyChecks', suppress_pom_consistency_checks,
        'allowReleaseRedeploy', allow_release_redeploy)
    WHERE package_type = 'maven';

CREATE FUNCTION repositories_settings_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    legacy_changed boolean := TG_OP = 'UPDATE' AND (
        NEW.handle_releases IS DISTINCT FROM OLD.handle_releases OR
        NEW.handle_snapshots IS DISTINCT FROM OLD.handle_snapshots OR
        NEW.max_unique_snapshots IS DISTINCT FROM OLD.max_unique_snapshots OR
        NEW.suppress_pom_consistency_checks IS DISTINCT FROM OLD.suppress_pom_consistency_checks OR
        NEW.allow_release_redeploy IS DISTINCT FROM OLD.allow_release_redeploy);
    settings_changed boolean := TG_OP = 'INSERT' AND NEW.settings <> '{}'::jsonb OR
        TG_OP = 'UPDATE' AND NEW.settings IS DISTINCT FROM OLD.settings;
BEGIN
    IF NEW.package_type <> 'maven' THEN
        RETURN NEW;
    END IF;
    IF settings_changed OR NOT (legacy_changed OR TG_OP = 'INSERT') THEN
        -- a current node wrote the settings: mirror them into the old columns
        NEW.handle_releases := coalesce((NEW.settings ->> 'handleReleases')::boolean, true);
        NEW.handle_snapshots := coalesce((NEW.settings ->> 'handleSnapshots')::boolean, true);
        NEW.max_unique_snapshots := coalesce((NEW.settings ->> 'maxUniqueSnapshots')::int, 0);
        NEW.suppress_pom_consistency_checks :=
            coalesce((NEW.settings ->> 'suppressPomConsistencyChecks')::boolean, false);
        NEW.allow_release_redeploy :=
            coalesce((NEW.settings ->> 'allowReleaseRedeploy')::boolean, false);
    ELSE
        -- a node of the previous version wrote the old columns
        NEW.settings := NEW.settings || jsonb_build_object(
            'handleReleases', NEW.handle_releases,
            'handleSnapshots', NEW.handle_snapshots,
            'maxUniqueSnapshots', NEW.max_unique_snapshots,
            'suppressPomConsistencyChecks', NEW.suppress_pom_consistency_checks,
            'allowReleaseRedeploy', NEW.allow_release_redeploy);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER repositories_settings_sync BEFORE INSERT OR UPDATE ON repositories
    FOR EACH ROW EXECUTE FUNCTION repositories_settings_sync();
