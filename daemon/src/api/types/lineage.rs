//! An asset's lineage: the datasets that OpenLineage events say its jobs
//! read to write it (upstream) and those written from it (downstream), each
//! with the asset it is when a check the request sees reports it.
//!
//! Datasets are matched by name (`db.schema.table`), as assets are named.
//! A downstream dataset written by a job of a check the request cannot see
//! is left out, as is its asset.

use super::*;

/// The datasets around an asset.
#[derive(SimpleObject)]
pub struct Lineage {
    /// Datasets its check's jobs read to write it.
    pub upstream: Vec<LineageDataset>,
    /// Datasets written by jobs that read it.
    pub downstream: Vec<LineageDataset>,
}

/// A dataset as OpenLineage names it.
#[derive(SimpleObject)]
pub struct LineageDataset {
    /// Its data source, e.g. `postgres://db:5432` or `duckdb`.
    pub namespace: String,
    /// E.g. `shop.main.orders`.
    pub name: String,
    /// The asset it is, reported by an OpenLineage check this request sees.
    pub asset: Option<AssetNode>,
}

pub(super) async fn lineage_of(ctx: &Context<'_>, node: &AssetNode) -> Result<Lineage> {
    let view = view(ctx)?;
    let store = &state(ctx).store;
    let upstream = store
        .lineage_upstream(&node.check, &node.asset)
        .await
        .map_err(|e| store_error(&e))?;
    let mut downstream = store
        .lineage_downstream(&node.asset)
        .await
        .map_err(|e| store_error(&e))?;
    downstream.retain(|n| view.sees(&EntityRef::Check(n.check_id.clone())));
    downstream.dedup_by(|a, b| a.dataset == b.dataset);
    let mut out = Lineage {
        upstream: Vec::with_capacity(upstream.len()),
        downstream: Vec::with_capacity(downstream.len()),
    };
    for (list, into) in [
        (upstream, &mut out.upstream),
        (downstream, &mut out.downstream),
    ] {
        for n in list {
            let asset = asset_named(ctx, &n.dataset.name, &n.check_id).await?;
            into.push(LineageDataset {
                namespace: n.dataset.namespace,
                name: n.dataset.name,
                asset,
            });
        }
    }
    Ok(out)
}

/// The asset `name` of a visible OpenLineage check, `near` (the check of
/// the edge) looked at first.
async fn asset_named(ctx: &Context<'_>, name: &str, near: &str) -> Result<Option<AssetNode>> {
    let view = view(ctx)?;
    let config = view.index.config();
    let checks = std::iter::once(near)
        .chain(config.checks.iter().map(|c| c.id.as_str()))
        .filter_map(|id| view.index.check(id))
        .filter(|c| {
            c.push.as_deref().is_some_and(|p| p.openlineage.is_some())
                && view.sees(&EntityRef::Check(c.id.clone()))
        });
    for check in checks {
        let has = check_health(ctx, &check.id)
            .await?
            .is_some_and(|h| h.assets.contains(name));
        if has {
            return Ok(Some(AssetNode {
                check: check.id.clone(),
                system: check.system.clone(),
                asset: name.to_owned(),
            }));
        }
    }
    Ok(None)
}
