-- Why a health event sends no alert of its own: the maintenance window its
-- entity was in, or the failing upstream (an entity key) whose alert covers it.
ALTER TABLE health_events ADD COLUMN maintenance TEXT;
ALTER TABLE health_events ADD COLUMN suppressed_by TEXT;
