//! The demo's two "client apps": systems nobody can poll, which report to
//! their push checks (`connector = "push"`, see `config/demo.toml`) over the
//! daemon's push API instead.
//!
//! - The **mobile app** reports its uploads every five seconds: the ids
//!   uploaded in that tick, sent in two JSON batches to an id set, then a
//!   report with the counts that finishes the set. In phase 4 of the cycle it
//!   loses 3% of them (completeness WARNING), the rest of the time none.
//! - The **export job** beats (`/push/v1/beat/{token}?asset=export`, as a cron
//!   job's `curl` would) every five seconds, except in phase 6, when it stops:
//!   its asset's own heartbeat deadline (`expect_every = "10s"`) turns it
//!   UNKNOWN, then UNHEALTHY; the first beat of phase 7 recovers it.
//!
//! The daemon may not be up yet (or restarting): a push that finds nobody is
//! reported once and tried again next tick, as a real client would.

use std::time::{Duration, Instant};

use serde_json::json;
use tributary_tests::gql::Client;

/// How often each app speaks.
const TICK: Duration = Duration::from_secs(5);
/// Uploads in one tick of the mobile app.
const UPLOADS: usize = 40;

/// Where the apps report and with which push tokens.
pub struct Apps {
    pub daemon: String,
    pub mobile_token: String,
    pub export_token: String,
}

/// Runs both apps forever, following the demo's cycle of eight phases.
pub async fn run(apps: Apps, phase: Duration) {
    let client = Client::new(apps.daemon.clone());
    let started = Instant::now();
    let mut every = tokio::time::interval(TICK);
    let mut tick = 0usize;
    let mut down = false;
    loop {
        every.tick().await;
        let n = (started.elapsed().as_secs() / phase.as_secs().max(1)) as usize % 8;
        let mobile = mobile_app(&client, &apps.mobile_token, tick, n == 4).await;
        let export = match n {
            6 => Ok(()),
            _ => export_job(&client, &apps.export_token).await,
        };
        match (mobile.and(export), down) {
            (Err(e), false) => {
                eprintln!("fakes: the client apps cannot push to {}: {e}", apps.daemon);
                down = true;
            }
            (Ok(()), true) => {
                eprintln!("fakes: the client apps push to {}", apps.daemon);
                down = false;
            }
            _ => {}
        }
        tick += 1;
    }
}

/// One tick of the mobile app: its uploads' ids in two batches, then the
/// report that finishes the set with the counts.
async fn mobile_app(client: &Client, token: &str, tick: usize, lossy: bool) -> Result<(), String> {
    let ids: Vec<String> = (0..UPLOADS)
        .map(|i| format!("upload-{tick:06}-{i:02}"))
        .collect();
    let kept = if lossy { UPLOADS * 97 / 100 } else { UPLOADS };
    let set = format!("tick-{tick}");
    for batch in ids[..kept].chunks(UPLOADS / 2) {
        let path = format!("/push/v1/checks/mobile-app/assets/uploads/ids?set={set}");
        let body = serde_json::to_vec(batch).expect("ids are JSON");
        accepted(client.send("POST", &path, Some(token), body).await)?;
    }
    let report = json!({
        "observations": [{
            "asset": "uploads",
            "kind": "uploads",
            "counts": {"expected": UPLOADS, "received": kept},
        }],
        "ids": {"uploads": set},
    });
    let path = "/push/v1/checks/mobile-app/reports";
    accepted(
        client
            .send("POST", path, Some(token), report.to_string().into_bytes())
            .await,
    )
}

/// One heartbeat of the export job.
async fn export_job(client: &Client, token: &str) -> Result<(), String> {
    let path = format!("/push/v1/beat/{token}?asset=export&status=ok");
    accepted(client.send("GET", &path, None, Vec::new()).await)
}

fn accepted(answer: tributary_tests::gql::Answer) -> Result<(), String> {
    match answer.status {
        202 => Ok(()),
        0 => Err(answer.text),
        status => Err(format!("{status} {}", answer.text)),
    }
}
