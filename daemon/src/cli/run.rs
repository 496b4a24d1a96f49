//! `tributary run CHECK --config FILE`: one run of one check in the
//! foreground, to try a check before deploying it.
//!
//! The run takes the daemon's own path (the plugin in its sandbox, the
//! writer, the health book, the store), so what it prints is what the daemon
//! would do. Without `--store` that store is a scratch SQLite file, deleted
//! afterwards: nothing reaches the configured database, and health is judged
//! as on the check's first run (no history for volume rules or hysteresis, no
//! ids of other systems to reconcile against). With `--store` the run is
//! written to the configured database and judged against what it holds.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde_json::{Value, json};

use crate::config::Config;
use crate::events::{EventBus, Received, RunCompleted};
use crate::health::{EntityHealth, EntityRef};
use crate::plugin::escape_controls;
use crate::service::{Runs, Service};
use crate::store::{ErrorRow, ObservationRow, RunRow, Store};

/// How many errors of each asset are printed.
const ERRORS_SHOWN: u32 = 5;

/// What one run gave, read back from the store it was written to.
struct Outcome {
    run: RunRow,
    observations: Vec<(ObservationRow, Vec<ErrorRow>)>,
    /// Every entity the run's health reaches, assets first, tenants last.
    health: Vec<(EntityRef, Option<EntityHealth>)>,
}

/// Runs `check` of `file` once and prints what happened; fails when the run
/// failed, so a script can tell.
pub async fn run(file: &Path, check: &str, store: bool, as_json: bool) -> anyhow::Result<()> {
    let (_host, prepared) = super::load(file).await?;
    let Some(the_check) = prepared.config.check(check) else {
        let known: Vec<&str> = prepared
            .config
            .checks
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        anyhow::bail!(
            "no check {check:?} in {}; its checks are: {}",
            file.display(),
            known.join(", ")
        );
    };
    let deadline = the_check.limits.deadline + Duration::from_secs(30);
    let scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
    let configured_url = prepared.config.storage.url.clone();
    let url = if store {
        configured_url.clone()
    } else {
        format!("sqlite://{}", scratch.path().join("run.db").display())
    };
    let db = Store::open(&url)
        .await
        .with_context(|| format!("cannot open the database {}", super::redact_url(&url)))?;
    let bus = EventBus::default();
    let mut runs = bus.runs();
    let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
    let service = Service::start(
        prepared.config,
        prepared.plugins,
        db.clone(),
        bus,
        clock,
        Runs::OnDemand,
    )
    .await?;
    // The config in force, which `run_once` reads too.
    let config = service.loaded().config.clone();
    service.run_once(check).await?;
    let committed = tokio::time::timeout(deadline, async {
        loop {
            match runs.recv().await {
                Received::Message(r) if r.check_id == check => return Some(r),
                Received::Message(_) | Received::Lagged(_) => continue,
                Received::Closed => return None,
            }
        }
    })
    .await;
    let outcome = match committed {
        Ok(Some(run)) => read_back(&db, &config, &run).await,
        Ok(None) => Err(anyhow::anyhow!(
            "the daemon stopped before the run was stored"
        )),
        Err(_) => Err(anyhow::anyhow!(
            "the run was not stored within {deadline:?}"
        )),
    };
    service.stop(Duration::ZERO).await;
    let outcome = outcome?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&outcome.to_json())?);
    } else {
        print!("{}", outcome.to_text(SystemTime::now()));
        if store {
            println!("stored in {}", super::redact_url(&url));
        } else {
            println!(
                "nothing was stored: a scratch database judged this run as the check's first; \
                 --store keeps it in {}",
                super::redact_url(&configured_url)
            );
        }
    }
    match &outcome.run.failure {
        None => Ok(()),
        Some(f) => anyhow::bail!(
            "the run failed ({}): {}",
            f.class.as_str(),
            escape_controls(&f.message)
        ),
    }
}

async fn read_back(db: &Store, config: &Config, run: &RunCompleted) -> anyhow::Result<Outcome> {
    let stored = db
        .run(&run.run_id)
        .await?
        .context("the run is missing from the store")?;
    let mut observations = Vec::new();
    for o in db.observations(&run.run_id).await? {
        let errors = db
            .errors(
                &run.check_id,
                &o.observation.asset,
                None,
                None,
                None,
                ERRORS_SHOWN,
            )
            .await?
            .into_iter()
            .map(|e| e.error)
            .collect();
        observations.push((o.observation, errors));
    }
    let mut entities: Vec<EntityRef> = observations
        .iter()
        .map(|(o, _)| EntityRef::Asset {
            check: run.check_id.clone(),
            asset: o.asset.clone(),
        })
        .collect();
    entities.push(EntityRef::Check(run.check_id.clone()));
    if let Some(check) = config.check(&run.check_id) {
        entities.push(EntityRef::System(check.system.clone()));
        let flows = config
            .flows
            .iter()
            .filter(|f| f.upstream == check.system || f.downstream.contains(&check.system));
        let mut tenants = Vec::new();
        for flow in flows {
            entities.push(EntityRef::Flow(flow.id.clone()));
            if !tenants.contains(&flow.tenant) {
                tenants.push(flow.tenant.clone());
            }
        }
        entities.extend(tenants.into_iter().map(EntityRef::Tenant));
    }
    let mut health = Vec::new();
    for entity in entities {
        let h = db.health(&entity).await?;
        health.push((entity, h));
    }
    Ok(Outcome {
        run: stored,
        observations,
        health,
    })
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Outcome {
    fn to_json(&self) -> Value {
        let observations: Vec<Value> = self
            .observations
            .iter()
            .map(|(o, errors)| {
                json!({
                    "asset": o.asset,
                    "kind": o.kind,
                    "expected": o.expected,
                    "received": o.received,
                    "errored": o.errored,
                    "missing": o.missing,
                    "freshness": o.freshness.map(rfc3339),
                    "last_received": o.last_received_id.as_ref().map(|id| json!({
                        "id": id,
                        "at": o.last_received_at.map(rfc3339),
                    })),
                    "native_status": o.native.as_ref().map(|n| json!({
                        "level": n.level, "label": n.label, "message": n.message,
                    })),
                    "extras": o.extras.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "error_totals": o.error_totals.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "metadata": o.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "errors": errors.iter().map(|e| json!({
                        "kind": e.kind,
                        "message": e.message,
                        "document_id": e.document_id,
                        "log_link": e.log_link,
                        "at": e.at.map(rfc3339),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let health: Vec<Value> = self
            .health
            .iter()
            .map(|(entity, h)| {
                json!({
                    "entity": crate::store::entity_key(entity),
                    "status": h.as_ref().map(|h| h.state.status.as_str()),
                    "reasons": h.as_ref().map(|h| h.state.reasons.iter().map(|r| r.message.clone()).collect::<Vec<_>>()).unwrap_or_default(),
                })
            })
            .collect();
        json!({
            "run": {
                "id": self.run.id,
                "check": self.run.check_id,
                "connector": self.run.connector,
                "plugin_version": self.run.plugin_version,
                "started_at": rfc3339(self.run.started_at),
                "duration_ms": ms(self.run.duration()),
                "succeeded": self.run.succeeded(),
                "error": self.run.failure.as_ref().map(|f| json!({
                    "class": f.class.as_str(), "message": f.message,
                })),
            },
            "observations": observations,
            "health": health,
        })
    }

    /// The run for a terminal: every text that came from the plugin has its
    /// control characters escaped, so it cannot add lines or drive the terminal.
    fn to_text(&self, now: SystemTime) -> String {
        use std::fmt::Write;
        let e = |text: &str| escape_controls(text).into_owned();
        let mut out = String::new();
        let r = &self.run;
        let verdict = match &r.failure {
            None => "succeeded".to_owned(),
            Some(f) => format!("FAILED ({}): {}", f.class.as_str(), e(&f.message)),
        };
        let _ = writeln!(
            out,
            "check {} ({} {}), run {}: {verdict} in {} ms",
            r.check_id,
            r.connector,
            e(&r.plugin_version),
            r.id,
            ms(r.duration())
        );
        let _ = writeln!(out, "assets ({}):", self.observations.len());
        for (o, errors) in &self.observations {
            let _ = writeln!(out, "  {} [{}]", e(&o.asset), e(&o.kind));
            let count = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
            let _ = writeln!(
                out,
                "    expected {}  received {}  errored {}  missing {}",
                count(o.expected),
                count(o.received),
                count(o.errored),
                count(o.missing)
            );
            if let Some(at) = o.freshness {
                let age = now.duration_since(at).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    freshness {} ({} ago)",
                    rfc3339(at),
                    crate::health::format_duration(age)
                );
            }
            if let Some(id) = &o.last_received_id {
                let at = o.last_received_at.map(rfc3339).unwrap_or_default();
                let _ = writeln!(out, "    last received {} {at}", e(id));
            }
            if let Some(n) = &o.native {
                let message = e(n.message.as_deref().unwrap_or(""));
                let _ = writeln!(
                    out,
                    "    native status {} ({}) {message}",
                    n.level,
                    e(&n.label)
                );
            }
            let pairs = |kv: &[(String, u64)]| {
                kv.iter()
                    .map(|(k, v)| format!("{}={v}", e(k)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            if !o.extras.is_empty() {
                let _ = writeln!(out, "    extras {}", pairs(&o.extras));
            }
            if !o.error_totals.is_empty() {
                let _ = writeln!(out, "    errors by kind {}", pairs(&o.error_totals));
            }
            for err in errors {
                let doc = e(err.document_id.as_deref().unwrap_or("-"));
                let link = e(err.log_link.as_deref().unwrap_or(""));
                let _ = writeln!(
                    out,
                    "      {} {doc}: {} {link}",
                    e(&err.kind),
                    e(&err.message)
                );
            }
        }
        let _ = writeln!(out, "health it gives:");
        for (entity, h) in &self.health {
            let status = h.as_ref().map_or("-", |h| h.state.status.as_str());
            let _ = writeln!(out, "  {:<40} {status}", e(&entity.to_string()));
            for reason in h.iter().flat_map(|h| &h.state.reasons) {
                let _ = writeln!(out, "      {}", e(&reason.message));
            }
        }
        out
    }
}
