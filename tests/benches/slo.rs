//! The root `slos` query at scale (issue 16): 10,000 assets, each covered
//! by the three hourly SLOs of [`bench::runs_config`] over 20 days, so
//! 10,000 x 3 x 480 = 14.4M stored slices, seeded straight into the store
//! with SQL (not 14.4M runs); then `slos(tenant, worst: 100)` through the
//! served GraphQL API, one client: the first query (which sums each SLO's
//! window into `slo_totals`), then p50 / p99 over repeated queries. On
//! SQLite and Postgres. The per-run cost of SLOs is `daemon_runs`' (run
//! with and without SLOs there).
//!
//! `cargo bench -p tributary-tests --bench slo` prints the figures.
//! `TRIBUTARY_BENCH_ASSETS` (10000) and `TRIBUTARY_BENCH_QUERIES` (20)
//! change the load.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use sqlx::{Connection, Executor};
use tributary::clock::ManualClock;
use tributary::health::EntityRef;
use tributary::service::Runs;
use tributary::store::entity_key;
use tributary_tests::bench::{self, percentile};
use tributary_tests::gql::Client;
use tributary_tests::kit::hex_sha256;

const TOKEN: &str = "bench-token";
const HOUR_MS: i64 = 3_600_000;
/// The hourly slices of a 20-day window.
const SLICES: i64 = 480;

/// Writes `assets` x [`bench::SLOS`] x [`SLICES`] slices ending at
/// `elapsed_end` (ms) in one statement, from two helper tables the
/// database crosses: the entities and the hours. About 1 slice in 100 is
/// bad (more for some assets than others, so budgets differ) and a few
/// are excluded.
async fn seed(url: &str, assets: u64, elapsed_end: i64) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    conn.execute(
        "CREATE TABLE bench_entities (n BIGINT NOT NULL, entity TEXT NOT NULL); \
         CREATE TABLE bench_hours (i BIGINT NOT NULL); \
         CREATE TABLE bench_slos (s BIGINT NOT NULL, slo TEXT NOT NULL)",
    )
    .await
    .unwrap();
    let values = |rows: Vec<String>| rows.join(",");
    for chunk in (0..assets).collect::<Vec<_>>().chunks(1000) {
        let rows = chunk
            .iter()
            .map(|n| {
                let key = entity_key(&EntityRef::Asset {
                    check: format!("c{n}"),
                    asset: "probe".into(),
                });
                format!("({n}, '{key}')")
            })
            .collect();
        conn.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO bench_entities (n, entity) VALUES {}",
            values(rows)
        )))
        .await
        .unwrap();
    }
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO bench_hours (i) VALUES {}",
        values((0..SLICES).map(|i| format!("({i})")).collect())
    )))
    .await
    .unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO bench_slos (s, slo) VALUES {}",
        values(
            bench::SLOS
                .iter()
                .enumerate()
                .map(|(s, name)| format!("({s}, '{name}')"))
                .collect()
        )
    )))
    .await
    .unwrap();
    let start = elapsed_end - SLICES * HOUR_MS;
    let mix = "((e.n * 7919 + h.i * 104729 + s.s * 31) % 1000)";
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO slo_slices (slo, entity, start, state, good, total, reason) \
         SELECT s.slo, e.entity, {start} + h.i * {HOUR_MS}, \
         CASE WHEN {mix} < e.n % 20 THEN 'bad' WHEN {mix} > 996 THEN 'excluded' ELSE 'good' END, \
         CASE WHEN {mix} < e.n % 20 THEN 0 ELSE 1 END, 1, \
         CASE WHEN {mix} < e.n % 20 THEN 'bench' END \
         FROM bench_slos s CROSS JOIN bench_entities e CROSS JOIN bench_hours h"
    )))
    .await
    .unwrap();
    conn.execute("DROP TABLE bench_entities; DROP TABLE bench_hours; DROP TABLE bench_slos")
        .await
        .unwrap();
    conn.close().await.unwrap();
}

async fn measure(label: &str, db_url: &str, assets: u64, queries: usize) {
    let dir = tempfile::tempdir().unwrap();
    let text = bench::runs_config(
        db_url,
        &dir.path().join("data").display().to_string(),
        assets,
        true,
    ) + &format!(
        "[[api.tokens]]\nname = \"bench\"\nsha256 = \"{}\"\nrole = \"viewer\"\n",
        hex_sha256(TOKEN)
    );
    let now: SystemTime = chrono::DateTime::parse_from_rfc3339("2026-05-20T12:30:00Z")
        .unwrap()
        .into();
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(now);
    let elapsed_end = chrono::DateTime::parse_from_rfc3339("2026-05-20T12:00:00Z")
        .unwrap()
        .timestamp_millis();
    // The store's tables exist once it is open; the daemon starts after
    // the seeding, as a restart on a full database would.
    tributary::store::Store::open(db_url)
        .await
        .unwrap()
        .close()
        .await;
    let seeded = Instant::now();
    seed(db_url, assets, elapsed_end).await;
    let seed_time = seeded.elapsed();
    let (d, _) = bench::probe_daemon(dir, &text, clock, Runs::OnDemand).await;
    let api = Client::new(d.serve_api().await);
    let mut samples = Vec::with_capacity(queries);
    // The first query sums each SLO's window into `slo_totals` (a daemon's
    // first list after a start on a full database); the others find the
    // sums in place, as every later one in the same hour does.
    for i in 0..=queries {
        // A new text each time: the API's answer cache must not answer.
        let query = format!(
            "{{ q{i}: slos(tenant: \"bench\", worst: 100) {{ name budgetRemainingRatio \
             attainment burnRates {{ lookback rate }} exhaustsAt entity {{ id }} }} }}"
        );
        let t = Instant::now();
        let mut answer = api.query(Some(TOKEN), &query, json!({})).await;
        // The first one may find the store busy with the daemon's start
        // (its writer reads every SLO's figures then): it says to try
        // again, as a client would.
        while i == 0 && answer.codes() == ["UNAVAILABLE"] {
            answer = api.query(Some(TOKEN), &query, json!({})).await;
        }
        samples.push(t.elapsed());
        let listed = answer.data()[format!("q{i}")]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(listed, 100, "{:?}", answer.codes());
    }
    let first = samples.remove(0);
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<9} assets {assets:>6}  slices {:>9}  seeded in {:>6.1} s  root slos(worst: 100): \
         first {:>8.1} ms, then n={queries} p50 {:>8.1} ms  p99 {:>8.1} ms",
        assets as i64 * SLICES * bench::SLOS.len() as i64,
        seed_time.as_secs_f64(),
        ms(first),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
    );
    d.service.stop(Duration::from_secs(10)).await;
}

fn main() {
    if !bench::asked() {
        return;
    }
    let assets = bench::env_or("TRIBUTARY_BENCH_ASSETS", 10_000u64);
    let queries = bench::env_or("TRIBUTARY_BENCH_QUERIES", 20usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        bench::on_both_backends("bench_slo", |backend, url| async move {
            measure(backend, &url, assets, queries).await
        })
        .await;
    });
}
