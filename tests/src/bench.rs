//! What the bench binaries share: whether `cargo bench` asked for figures,
//! their settings from the environment, and one measurement on each backend.
//!
//! It only sets benches up; what each measures and prints stays in its file.

use std::future::Future;
use std::str::FromStr;

use tributary::store::testing::PgScratch;

/// `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and
/// only checks that a bench builds and starts, so it must not measure.
pub fn asked() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The setting `name` from the environment, or `default` when it is unset or
/// does not parse.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `measure(backend, url)` on a fresh SQLite file, then on a fresh
/// Postgres schema named `schema`, dropped afterwards; when Postgres is not
/// there, says so and goes on.
pub async fn on_both_backends<F, Fut>(schema: &str, mut measure: F)
where
    F: FnMut(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    measure("sqlite", sqlite).await;
    match PgScratch::new(schema).await {
        Ok(pg) => {
            measure("postgres", pg.url.clone()).await;
            pg.drop_schema().await.unwrap();
        }
        Err(err) => println!("postgres  skipped: {err}"),
    }
}

/// A memory figure (`VmRSS`, `VmHWM`...) of `process` (`"self"` or a pid)
/// from `/proc/<process>/status`, in MiB; NaN when it cannot be read.
pub fn status_mib(process: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
