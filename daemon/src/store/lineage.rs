//! The lineage table (migration 0006): edges from a job's input datasets to
//! its output datasets, as OpenLineage events name them. Rows only: which
//! dataset is which asset, and who may see it, is the API's to say.

use std::time::SystemTime;

use sqlx::Row;

use super::{Result, Store, to_ms};

/// A dataset as OpenLineage names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DatasetName {
    pub namespace: String,
    pub name: String,
}

/// One input -> output edge of a job feeding `check_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageEdge {
    pub check_id: String,
    pub job: DatasetName,
    pub upstream: DatasetName,
    pub downstream: DatasetName,
}

/// A dataset next to another, and the check whose job links them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Neighbour {
    pub dataset: DatasetName,
    pub check_id: String,
}

impl Store {
    /// Records `edges` as seen `at`: new ones are added, known ones only
    /// move their last sighting.
    pub async fn record_lineage(&self, edges: &[LineageEdge], at: SystemTime) -> Result<()> {
        if edges.is_empty() {
            return Ok(());
        }
        let at = to_ms(at);
        let mut tx = self.write_pool().begin().await?;
        for e in edges {
            sqlx::query(
                "INSERT INTO lineage_edges (check_id, job_namespace, job_name, \
                 upstream_namespace, upstream_name, downstream_namespace, downstream_name, \
                 first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (check_id, job_namespace, job_name, upstream_namespace, \
                 upstream_name, downstream_namespace, downstream_name) \
                 DO UPDATE SET last_seen = excluded.last_seen",
            )
            .bind(e.check_id.as_str())
            .bind(e.job.namespace.as_str())
            .bind(e.job.name.as_str())
            .bind(e.upstream.namespace.as_str())
            .bind(e.upstream.name.as_str())
            .bind(e.downstream.namespace.as_str())
            .bind(e.downstream.name.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The datasets the jobs of `check_id` read to write the dataset named
    /// `name`.
    pub async fn lineage_upstream(&self, check_id: &str, name: &str) -> Result<Vec<Neighbour>> {
        let rows = sqlx::query(
            "SELECT DISTINCT upstream_namespace, upstream_name, check_id FROM lineage_edges \
             WHERE check_id = $1 AND downstream_name = $2 \
             ORDER BY upstream_name, upstream_namespace",
        )
        .bind(check_id)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(neighbour).collect())
    }

    /// The datasets written by any job that read the dataset named `name`,
    /// with the check each job feeds.
    pub async fn lineage_downstream(&self, name: &str) -> Result<Vec<Neighbour>> {
        let rows = sqlx::query(
            "SELECT DISTINCT downstream_namespace, downstream_name, check_id FROM lineage_edges \
             WHERE upstream_name = $1 ORDER BY downstream_name, downstream_namespace, check_id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(neighbour).collect())
    }
}

fn neighbour(row: &sqlx::any::AnyRow) -> Neighbour {
    Neighbour {
        dataset: DatasetName {
            namespace: row.get(0),
            name: row.get(1),
        },
        check_id: row.get(2),
    }
}
