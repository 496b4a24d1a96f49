-- Tributary store, Postgres. Times are Unix milliseconds (UTC); JSON is TEXT.
-- The SQLite migration of the same number creates the same tables.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    check_id        TEXT NOT NULL,
    connector       TEXT NOT NULL,
    plugin_version  TEXT NOT NULL,
    trigger_kind    TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    error_class     TEXT,
    error_message   TEXT,
    assets          BIGINT NOT NULL
);
CREATE INDEX runs_by_check ON runs (check_id, started_at);
CREATE INDEX runs_by_time ON runs (started_at);

CREATE TABLE observations (
    run_id            TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_id          TEXT NOT NULL,
    asset             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    observed_at       BIGINT NOT NULL,
    expected          BIGINT,
    received          BIGINT,
    errored           BIGINT,
    missing           BIGINT,
    freshness         BIGINT,
    last_received_id  TEXT,
    last_received_at  BIGINT,
    native_level      TEXT,
    native_label      TEXT,
    native_message    TEXT,
    extras            TEXT NOT NULL,
    error_totals      TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    PRIMARY KEY (run_id, asset)
);
CREATE INDEX observations_by_asset ON observations (check_id, asset, observed_at);
CREATE INDEX observations_by_time ON observations (observed_at);

CREATE TABLE asset_errors (
    id           BIGSERIAL PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_id     TEXT NOT NULL,
    asset        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    message      TEXT NOT NULL,
    document_id  TEXT,
    log_link     TEXT,
    at           BIGINT,
    observed_at  BIGINT NOT NULL
);
CREATE INDEX asset_errors_by_asset ON asset_errors (check_id, asset, id);
CREATE INDEX asset_errors_by_run ON asset_errors (run_id);

CREATE TABLE id_sets (
    system_id    TEXT NOT NULL,
    asset        TEXT NOT NULL,
    check_id     TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    observed_at  BIGINT NOT NULL,
    id_count     BIGINT NOT NULL,
    ids          BYTEA NOT NULL,
    PRIMARY KEY (system_id, asset)
);

CREATE TABLE reconciliations (
    flow_id          TEXT NOT NULL,
    system_id        TEXT NOT NULL,
    asset            TEXT NOT NULL,
    run_id           TEXT NOT NULL,
    computed_at      BIGINT NOT NULL,
    expected         BIGINT NOT NULL,
    received         BIGINT NOT NULL,
    missing          BIGINT NOT NULL,
    PRIMARY KEY (run_id, flow_id, system_id, asset)
);
CREATE INDEX reconciliations_by_asset ON reconciliations (flow_id, system_id, asset, computed_at);

CREATE TABLE missing_ids (
    flow_id    TEXT NOT NULL,
    system_id  TEXT NOT NULL,
    asset      TEXT NOT NULL,
    id         TEXT NOT NULL,
    PRIMARY KEY (flow_id, system_id, asset, id)
);

CREATE TABLE health (
    entity      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    since       BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    state       TEXT NOT NULL
);

CREATE TABLE health_events (
    seq          BIGSERIAL PRIMARY KEY,
    entity       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    reasons      TEXT NOT NULL,
    muted        BIGINT NOT NULL,
    run_id       TEXT,
    at           BIGINT NOT NULL
);
CREATE INDEX health_events_by_entity ON health_events (entity, seq);

CREATE TABLE rollups (
    entity         TEXT NOT NULL,
    period         TEXT NOT NULL,
    bucket         BIGINT NOT NULL,
    worst          BIGINT NOT NULL,
    evaluations    BIGINT NOT NULL,
    healthy        BIGINT NOT NULL,
    runs           BIGINT NOT NULL,
    failed_runs    BIGINT NOT NULL,
    expected       BIGINT,
    received       BIGINT,
    errored        BIGINT,
    missing        BIGINT,
    max_lag_ms     BIGINT,
    PRIMARY KEY (entity, period, bucket)
);
CREATE INDEX rollups_by_time ON rollups (period, bucket);

CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
