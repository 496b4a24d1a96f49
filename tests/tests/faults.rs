//! Faults the daemon must survive, each as an operator would meet it.
//!
//! The database going away: the daemon runs on Postgres through a TCP proxy
//! (`tributary_tests::proxy`) that the test cuts for 30 s, so the server
//! disappears for this daemon only and the other tests sharing the local
//! Postgres go on. The disk filling up under SQLite: the database lives on a
//! tmpfs of its own (mounted by the test, which runs as root, as CI does)
//! that is filled, then grown. (SIGKILL mid-write, a corrupt plugin file and
//! an invalid config on disk are shown in `daemon.rs` and `api.rs`.)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugin_sdk::harness::TestServer;
use serde_json::json;
use tributary::store::Store;
use tributary::store::testing::PgScratch;
use tributary_tests::gql::Client;
use tributary_tests::kit::{
    Daemon, Fake, doc_ids, document_service, eventually, fleet_text, start_live,
};
use tributary_tests::proxy::Proxy;

/// How long the database stays away.
const OUTAGE: Duration = Duration::from_secs(30);

/// The value of `series` in a `/metrics` text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// The sum of every series whose name and labels start with `prefix`.
fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `host:port` of a `postgres://user@host:port/db?...` URL.
fn authority(url: &str) -> &str {
    let rest = &url[url
        .find('@')
        .map_or(url.find("://").unwrap() + 3, |at| at + 1)..];
    &rest[..rest.find('/').unwrap_or(rest.len())]
}

/// A daemon storing in `url` with ten checks every second (load enough to
/// fill a buffer quickly), and the service they watch.
async fn busy_fleet(url: &str) -> (Daemon, TestServer) {
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(10),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text =
        fleet_text(dir.path(), 2, 5, &service.url()).replace(r#"every = "1h""#, r#"every = "1s""#);
    let sqlite_line = text
        .lines()
        .find(|l| l.starts_with("url = \"sqlite://"))
        .unwrap()
        .to_owned();
    let text = text.replace(&sqlite_line, &format!("url = \"{url}\""));
    (start_live(dir, &text).await, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_for_30_s_loses_no_run_and_the_api_says_unavailable_meanwhile() {
    let scratch = PgScratch::new("outage").await.unwrap();
    let server = authority(&scratch.url).to_owned();
    let target: SocketAddr = tokio::net::lookup_host(&server)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let url = scratch.url.replace(&server, &proxy.addr().to_string());

    let (d, _service) = busy_fleet(&url).await;
    d.wait_total_runs(20).await;
    let api = Client::new(d.serve_api().await);

    proxy.cut();
    let back_at = tokio::time::Instant::now() + OUTAGE;
    // Runs go on and wait in the buffer.
    eventually("runs to be held while the database is away", || async {
        let m = d.service.metrics_text();
        (metric(&m, "tributary_write_buffer_runs") >= 30.0).then_some(())
    })
    .await;
    // The API says so, rather than hanging or answering stale data as fresh.
    let answer = api
        .query(
            Some("viewer-token"),
            r#"query($n: Int) { check(key: "c0-0") { runs(first: $n) { nodes { outcome } } } }"#,
            json!({"n": 7}),
        )
        .await;
    assert_eq!(
        answer.body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{}",
        answer.text
    );
    assert_eq!(api.get("/readyz").await.status, 503);
    // The outage lasts its full length, whatever the test did meanwhile.
    tokio::time::sleep_until(back_at).await;
    let held = metric(&d.service.metrics_text(), "tributary_write_buffer_runs");
    assert!(held >= 30.0, "{held} runs held after {OUTAGE:?}");
    proxy.restore();

    eventually("the held runs to be written", || async {
        let m = d.service.metrics_text();
        (metric(&m, "tributary_write_buffer_runs") == 0.0).then_some(())
    })
    .await;
    eventually("the API to answer again", || async {
        (api.get("/readyz").await.status == 200).then_some(())
    })
    .await;
    d.service.stop(Duration::from_secs(10)).await;

    // Nothing lost: every run the daemon finished is stored, and so is every
    // health change it published, in sequence order. (A Postgres sequence
    // may skip the numbers of a transaction the cut aborted: order is the
    // promise, not contiguity.)
    let metrics = d.service.metrics_text();
    assert_eq!(metric(&metrics, "tributary_runs_dropped_total"), 0.0);
    let store = Store::open(&scratch.url).await.unwrap();
    let stored = store.run_count().await.unwrap();
    // Every run the runner finished, whatever its outcome.
    assert_eq!(
        stored as f64,
        sum(&metrics, "tributary_runs_total{"),
        "{metrics}"
    );
    let events = store.events_after(0, 100_000).await.unwrap();
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        events.len() as f64,
        sum(&metrics, "tributary_health_events_total{"),
        "{metrics}"
    );
    store.close().await;
    scratch.drop_schema().await.unwrap();
}

/// A tmpfs mounted on a folder of its own for one test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root): {status}"
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes `name` until the disk is full.
    fn fill(&self, name: &str) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path().join(name)).unwrap();
        let chunk = vec![0u8; 64 << 10];
        loop {
            if let Err(err) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
                assert_eq!(err.raw_os_error(), Some(28), "{err}"); // ENOSPC
                return;
            }
        }
    }

    /// Gives the file system more room, as an operator growing a volume would.
    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount: {status}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_holds_writes_that_resume_when_space_returns_even_during_shutdown() {
    let disk = SmallDisk::mount("64m");
    let db = disk.path().join("tributary.db");
    let (d, _service) = busy_fleet(&format!("sqlite://{}", db.display())).await;
    d.wait_total_runs(20).await;
    let api = Client::new(d.serve_api().await);
    let held = || metric(&d.service.metrics_text(), "tributary_write_buffer_runs");

    // The disk fills: runs go on and are held, and the daemon says it is not
    // ready (what it serves lags what it ran).
    disk.fill("filler-1");
    eventually("runs to be held while the disk is full", || async {
        (held() >= 10.0).then_some(())
    })
    .await;
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(ready.text.contains("writes held"), "{}", ready.text);

    // Space comes back: the writer drops the connection that failed and
    // writes everything held, by itself.
    disk.grow("256m");
    eventually("the held runs to be written once space returns", || async {
        (held() == 0.0).then_some(())
    })
    .await;
    eventually("/readyz to be 200 again", || async {
        (api.get("/readyz").await.status == 200).then_some(())
    })
    .await;

    // Full again, and the daemon is asked to stop: it keeps trying what it
    // holds during the grace period, and writes it when space returns then.
    disk.fill("filler-2");
    eventually("runs to be held again", || async {
        (held() >= 10.0).then_some(())
    })
    .await;
    let errors = || {
        metric(
            &d.service.metrics_text(),
            "tributary_store_write_errors_total",
        )
    };
    let service = d.service.clone();
    let stopping = tokio::spawn(async move { service.stop(Duration::from_secs(25)).await });
    let errors_at_stop = errors();
    eventually("the writer to retry after shutdown began", || async {
        (errors() >= errors_at_stop + 2.0).then_some(())
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "the daemon stopped with writes held"
    );
    disk.grow("512m");
    stopping.await.unwrap();

    // Nothing lost: every run the daemon finished is in the file.
    let metrics = d.service.metrics_text();
    assert_eq!(metric(&metrics, "tributary_runs_dropped_total"), 0.0);
    assert_eq!(metric(&metrics, "tributary_write_buffer_runs"), 0.0);
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(
        store.run_count().await.unwrap() as f64,
        sum(&metrics, "tributary_runs_total{"),
        "{metrics}"
    );
    store.close().await;
}
