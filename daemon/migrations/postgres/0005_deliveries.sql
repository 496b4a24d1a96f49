-- Alert deliveries as the API lists them (daemon/src/api, alertDeliveries).
-- When the receiver took the message; NULL until then.
ALTER TABLE alert_deliveries ADD COLUMN delivered_at BIGINT;
-- The one tenant every entity of the message belongs to; NULL when they
-- span tenants (or the message predates this column): a tenant-scoped
-- token sees only its tenant's deliveries.
ALTER TABLE alert_deliveries ADD COLUMN tenant TEXT;
CREATE INDEX alert_deliveries_tenant ON alert_deliveries (tenant, n);

-- The entities a delivery's message is about (store entity keys), so the
-- API filters by entity with an index and pages stay full.
CREATE TABLE alert_delivery_entities (
    delivery_n BIGINT NOT NULL,
    entity     TEXT NOT NULL,
    PRIMARY KEY (entity, delivery_n)
);

-- Channels a receiver disabled (410, Slack's channel_is_archived), kept
-- across restarts until the channel's definition changes (its fingerprint,
-- a SHA-256 of the definition: never a secret itself) or an operator
-- enables it again.
CREATE TABLE alert_channels_disabled (
    channel     TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          BIGINT NOT NULL
);
