-- Alert delivery (daemon/src/alerts). The outbox holds each health event
-- until the dispatcher has routed it: written in the event's transaction,
-- so no event is committed without it.
CREATE TABLE alert_outbox (
    event_seq INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL
);

-- Grouping state per (route, group): its members and what was last said
-- about them (JSON), and when its next message is due.
CREATE TABLE alert_groups (
    route     TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state     TEXT NOT NULL,
    flush_at  INTEGER,
    PRIMARY KEY (route, group_key)
);
CREATE INDEX alert_groups_due ON alert_groups (flush_at);

-- One message to one channel: made once, sent until delivered, refused or
-- given up; `id` is the same on every attempt.
CREATE TABLE alert_deliveries (
    n          INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    channel    TEXT NOT NULL,
    route      TEXT NOT NULL,
    group_key  TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    next_at    INTEGER NOT NULL,
    status     TEXT NOT NULL,
    last_error TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (status, next_at);
CREATE INDEX alert_deliveries_group ON alert_deliveries (channel, route, group_key, n);
