-- The root and parent `slos` lists (issue 16) read each SLO's entities worst
-- first from an index instead of computing every entity's remaining ratio
-- and sorting them, and list the entities an SLO covers that have no slice
-- yet.
--
-- slo_totals.covered: 1 when the SLO covers the entity (at its level,
-- inside its scope) in the config in force; such a row is kept with zero
-- sums while the entity has no slice, so the lists show it. The writer
-- writes what changed at each start and reload.
--
-- slo_totals.rank_key: what the lists sort on, for the rows they show
-- (covered, or with stored slices; NULL otherwise): the remaining ratio of
-- the sums under the span's counting, or 2 when the budget is 0 (after any
-- ratio, which is at most 1). Kept wherever the sums, the coverage or the
-- span's counting change.
ALTER TABLE slo_totals ADD COLUMN covered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE slo_totals ADD COLUMN rank_key DOUBLE PRECISION;
-- The worst n of an SLO in key then entity (byte, COLLATE "C") order, without a sort.
CREATE INDEX slo_totals_ranked ON slo_totals (slo, rank_key, entity COLLATE "C");

-- What the rank keys of an SLO's rows were taken with: the slices judged
-- so far in the window and all of its slices (a calendar month's future
-- ones included), 1 - target (`allowed`), the budgeting ('timeslices',
-- 'occurrences') and what slices without data and excluded slices count
-- as ('good', 'bad', 'excluded'). The spans are forgotten so that the
-- next read sums every window again and keys every row.
DELETE FROM slo_spans;
ALTER TABLE slo_spans ADD COLUMN judged BIGINT NOT NULL DEFAULT 0;
ALTER TABLE slo_spans ADD COLUMN slices BIGINT NOT NULL DEFAULT 0;
ALTER TABLE slo_spans ADD COLUMN allowed DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE slo_spans ADD COLUMN budgeting TEXT NOT NULL DEFAULT '';
ALTER TABLE slo_spans ADD COLUMN no_data TEXT NOT NULL DEFAULT '';
ALTER TABLE slo_spans ADD COLUMN excluded TEXT NOT NULL DEFAULT '';
