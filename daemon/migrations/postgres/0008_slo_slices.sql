-- One row per (SLO, entity, slice) that saw something (issue 16): the
-- writer adds each run's events to the slices they fall in, in the run's
-- transaction. good/total count events (runs, observations or evaluations,
-- by indicator); state is 'good', 'bad' or 'excluded' (a maintenance window
-- or a mute covered the entity in it), derived as the counts accumulate; a
-- judged slice without a row has no data. reason says why the slice is bad
-- (the first bad event's). start is the slice's start, ms since 1970.
CREATE TABLE slo_slices (
    slo     TEXT NOT NULL,
    entity  TEXT NOT NULL,
    start   BIGINT NOT NULL,
    state   TEXT NOT NULL,
    good    BIGINT NOT NULL,
    total   BIGINT NOT NULL,
    reason  TEXT,
    PRIMARY KEY (slo, entity, start)
);
-- Retention deletes by time across SLOs.
CREATE INDEX slo_slices_by_start ON slo_slices (start);
