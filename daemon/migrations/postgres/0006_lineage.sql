-- Lineage edges from OpenLineage run events (push/openlineage): each input
-- dataset of a job's run -> each of its output datasets, under the check the
-- job feeds. A dataset is its OpenLineage namespace and name. Seen again,
-- an edge only moves last_seen (ms since 1970). Unknown facets are never
-- stored: only the names are.
CREATE TABLE lineage_edges (
    check_id             TEXT NOT NULL,
    job_namespace        TEXT NOT NULL,
    job_name             TEXT NOT NULL,
    upstream_namespace   TEXT NOT NULL,
    upstream_name        TEXT NOT NULL,
    downstream_namespace TEXT NOT NULL,
    downstream_name      TEXT NOT NULL,
    first_seen           BIGINT NOT NULL,
    last_seen            BIGINT NOT NULL,
    PRIMARY KEY (check_id, job_namespace, job_name, upstream_namespace, upstream_name,
                 downstream_namespace, downstream_name)
);
CREATE INDEX lineage_edges_by_downstream ON lineage_edges (downstream_name);
CREATE INDEX lineage_edges_by_upstream ON lineage_edges (upstream_name);
