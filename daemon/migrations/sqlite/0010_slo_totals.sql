-- Sums of slo_slices per (SLO, entity) over the part of the SLO's window
-- that slo_spans records (issue 16's benchmark): the root and parent `slos`
-- lists rank every entity by budget left from these rows, one per entity,
-- instead of reading each of its slices (480 a window of hourly slices).
-- The store keeps them: a read moves the span to the window (adding the
-- slices that became judged, taking off those that left), a write of a
-- slice inside the span recomputes that entity's sums in its transaction,
-- and retention takes off what it deletes.
--
-- since/until: the span summed, [since, until) in ms; calendar: the slice
-- length and time zone the span was taken in (another one means a new sum).
CREATE TABLE slo_spans (
    slo      TEXT PRIMARY KEY,
    calendar TEXT NOT NULL,
    since    INTEGER NOT NULL,
    until    INTEGER NOT NULL
);
-- By stored state (good, bad, excluded): how many slices, their good events
-- (each slice's at most its total) and their total events.
CREATE TABLE slo_totals (
    slo             TEXT NOT NULL,
    entity          TEXT NOT NULL,
    good_slices     INTEGER NOT NULL,
    good_good       INTEGER NOT NULL,
    good_total      INTEGER NOT NULL,
    bad_slices      INTEGER NOT NULL,
    bad_good        INTEGER NOT NULL,
    bad_total       INTEGER NOT NULL,
    excluded_slices INTEGER NOT NULL,
    excluded_good   INTEGER NOT NULL,
    excluded_total  INTEGER NOT NULL,
    PRIMARY KEY (slo, entity)
);
