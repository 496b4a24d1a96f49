//! The demo's OpenLineage producer: replays the real `dbt-ol build` events of
//! `tests/fixtures/openlineage/dbt-shop/` to the demo daemon's
//! `POST /api/v1/lineage`, as dbt-ol pointed at it with `OPENLINEAGE_URL`
//! would: the green build, or the failing one in the phases where the dbt
//! Core artifacts fail too. Each replay is a new invocation: fresh run ids,
//! event times of now.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tributary_tests::gql::Client;

/// Which captured build a phase's replay sends (by the dbt Core run of
/// that phase: the failing build while run2 is up, the green one otherwise).
pub fn build_of(dbt_core_run: &str) -> &'static str {
    if dbt_core_run == "run2-failures" {
        "run2-failures"
    } else {
        "run1-green"
    }
}

/// Sends every event of `build` to the daemon at `daemon` with `token`;
/// says how many were taken, or why none could be sent.
pub async fn replay(daemon: &Client, token: &str, build: &str, replay: u64) -> String {
    let file = tributary_tests::repo_root()
        .join("tests/fixtures/openlineage/dbt-shop")
        .join(format!("{build}.ndjson"));
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => return format!("cannot read {}: {e}", file.display()),
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut runs: Vec<String> = Vec::new();
    let (mut taken, mut refused) = (0, 0);
    for line in text.lines() {
        let Ok(mut event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let old = event["run"]["runId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let index = match runs.iter().position(|r| *r == old) {
            Some(i) => i,
            None => {
                runs.push(old);
                runs.len() - 1
            }
        };
        event["run"]["runId"] = Value::String(run_id(replay, index));
        event["eventTime"] = Value::String(now.clone());
        let answer = daemon
            .send(
                "POST",
                "/api/v1/lineage",
                Some(token),
                event.to_string().into_bytes(),
            )
            .await;
        match answer.status {
            200 | 201 => taken += 1,
            0 => return "the daemon is not answering yet".to_owned(),
            _ => refused += 1,
        }
    }
    format!("{build}: {taken} events taken, {refused} refused")
}

/// A UUID-shaped run id, new for each replay and run.
fn run_id(replay: u64, index: usize) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:08x}-{:04x}-7{:03x}-8000-{:012x}",
        now.as_secs() as u32,
        replay & 0xffff,
        index & 0xfff,
        now.as_nanos() & 0xffff_ffff_ffff
    )
}
