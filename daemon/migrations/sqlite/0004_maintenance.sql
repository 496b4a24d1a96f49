-- Maintenance windows made through the API (config windows live in the
-- config file). One-off: from starts_at to ends_at (ms since 1970); ending a
-- window early moves ends_at to then. The scope is globs, NULL for a level
-- not named.
CREATE TABLE maintenance_windows (
    name         TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    tenant_glob  TEXT,
    flow_glob    TEXT,
    system_glob  TEXT,
    check_glob   TEXT,
    asset_glob   TEXT,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
