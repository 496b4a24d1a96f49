//! The writer against a real database (a SQLite file and a Postgres schema)
//! whose `observations` table refuses the asset `poison`, as a database
//! refuses data it cannot take: a group of runs with one bad run in it must
//! store every good run and the bad one as a failed run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use sqlx::{Connection, Executor};

use super::*;
use crate::clock::SystemClock;
use crate::config::{Options, parse_with};
use crate::store::testing::PgScratch;
use crate::store::{Backend, Trigger};

const CONFIG: &str = r#"
plugins_dir = "plugins"
data_dir = "data"

[storage]
url = "sqlite://unused.db"

[[tenants]]
id = "acme"
name = "Acme"

[[systems]]
id = "up"
name = "Up"
kind = "service"

[[systems]]
id = "down"
name = "Down"
kind = "service"

[[flows]]
id = "f"
tenant = "acme"
name = "F"
upstream = "up"
downstream = ["down"]

[[checks]]
id = "good-1"
system = "up"
connector = "probe"
schedule = { every = "1h" }

[[checks]]
id = "good-2"
system = "down"
connector = "probe"
schedule = { every = "1h" }

[[checks]]
id = "hostile"
system = "down"
connector = "probe"
schedule = { every = "1h" }
"#;

fn writer(store: Store) -> (Writer, EventBus) {
    let config = parse_with(
        CONFIG,
        Path::new("tributary.toml"),
        &BTreeMap::new(),
        Options {
            require_known_connectors: false,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clock: SharedClock = Arc::new(SystemClock);
    let book = Book::new(
        super::super::topology(&config, &clock),
        Vec::new(),
        clock.now(),
    );
    let bus = EventBus::default();
    let writer = Writer::new(
        store,
        book,
        Arc::new(config),
        bus.clone(),
        clock,
        Arc::new(Metrics::new()),
        Arc::default(),
    );
    (writer, bus)
}

fn completed(check: &str, n: u64, assets: &[&str]) -> Completed {
    let started = UNIX_EPOCH + Duration::from_secs(1_780_000_000 + n);
    Completed {
        run: RunRow {
            id: format!("{check}-{n}"),
            check_id: check.into(),
            connector: "probe".into(),
            plugin_version: "1".into(),
            trigger: Trigger::Schedule,
            attempt: 1,
            started_at: started,
            finished_at: started + Duration::from_millis(5),
            failure: None,
            assets: assets.len() as u32,
        },
        system: if check == "good-1" { "up" } else { "down" }.into(),
        observations: assets
            .iter()
            .map(|a| ObservationRow {
                asset: (*a).into(),
                kind: "probe".into(),
                received: Some(1),
                ..ObservationRow::default()
            })
            .collect(),
        ids: BTreeMap::new(),
        judge: true,
    }
}

/// Makes the database refuse any observation of the asset `poison`.
async fn poison(backend: Backend, url: &str) {
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            conn.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON observations WHEN NEW.asset = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned asset'); END",
            )
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            conn.execute(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.asset = 'poison' THEN RAISE EXCEPTION 'poisoned asset'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER poison BEFORE INSERT ON observations \
                 FOR EACH ROW EXECUTE FUNCTION poison()",
            )
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
    }
}

async fn a_refused_run_fails_alone(store: Store, url: &str) {
    poison(store.backend(), url).await;
    let (mut writer, bus) = writer(store.clone());
    let mut runs_seen = bus.runs();
    writer
        .write_runs(vec![
            completed("good-1", 1, &["a", "b"]),
            completed("hostile", 2, &["fine", "poison"]),
            completed("good-2", 3, &["c"]),
            completed("good-1", 4, &["a", "b"]),
        ])
        .await;

    for (check, n, assets) in [("good-1", 1, 2), ("good-2", 1, 1)] {
        let runs = store.runs(check, None, 10).await.unwrap();
        assert!(runs.len() >= n, "{check}: {runs:?}");
        assert!(runs.iter().all(RunRow::succeeded), "{check}: {runs:?}");
        assert_eq!(runs[0].assets, assets);
    }
    let hostile = store.runs("hostile", None, 10).await.unwrap();
    assert_eq!(hostile.len(), 1, "the refused run is stored once");
    let failure = hostile[0].failure.as_ref().expect("stored as failed");
    assert_eq!(failure.class, FailureClass::System);
    assert!(
        failure
            .message
            .contains("the database refused this run's data")
            && failure.message.contains("poisoned asset"),
        "{}",
        failure.message
    );
    assert_eq!(hostile[0].assets, 0);
    assert!(
        store
            .asset_observations("hostile", "fine", 1)
            .await
            .unwrap()
            .is_empty(),
        "a refused run keeps none of its observations"
    );
    assert_eq!(
        store
            .asset_observations("good-2", "c", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let health = store
        .health(&EntityRef::Check("hostile".into()))
        .await
        .unwrap()
        .expect("the refused run is judged");
    assert_eq!(health.state.status, Status::Unknown);
    assert!(
        health.state.reasons[0].message.contains("refused"),
        "{:?}",
        health.state.reasons
    );
    // Every run is published once it is stored, the refused one as failed.
    let mut published = Vec::new();
    for _ in 0..4 {
        let received = tokio::time::timeout(Duration::from_secs(5), runs_seen.recv()).await;
        match received {
            Ok(crate::events::Received::Message(run)) => {
                published.push((run.run_id.clone(), run.succeeded))
            }
            other => panic!("expected a published run, got {other:?}"),
        }
    }
    published.sort();
    assert_eq!(
        published,
        [
            ("good-1-1".to_owned(), true),
            ("good-1-4".to_owned(), true),
            ("good-2-3".to_owned(), true),
            ("hostile-2".to_owned(), false),
        ]
    );
}

#[tokio::test]
async fn a_refused_run_fails_alone_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    a_refused_run_fails_alone(store.clone(), &url).await;
    store.close().await;
}

#[tokio::test]
async fn a_refused_run_fails_alone_on_postgres() {
    let scratch = PgScratch::new("writer_split")
        .await
        .expect("Postgres on 127.0.0.1:5432 (see README: Tests)");
    let store = scratch.store().await.unwrap();
    a_refused_run_fails_alone(store.clone(), &scratch.url).await;
    store.close().await;
    scratch.drop_schema().await.unwrap();
}

/// Writes held while the database was unavailable, then refused when it
/// answers: split the same way when the backlog is flushed.
async fn a_refused_held_write_is_split(store: Store, url: &str) {
    poison(store.backend(), url).await;
    let (mut writer, _bus) = writer(store.clone());
    let mut pending = HashMap::new();
    let mut parts = Vec::new();
    for c in [
        completed("good-1", 1, &["a"]),
        completed("hostile", 2, &["poison"]),
        completed("good-2", 3, &["c"]),
    ] {
        parts.push(writer.prepare(c, &mut pending).await);
    }
    writer
        .backlog
        .push(Held { parts }, tokio::time::Instant::now());
    writer.flush().await;
    assert!(writer.backlog.is_empty(), "nothing is held any more");
    for check in ["good-1", "good-2"] {
        let runs = store.runs(check, None, 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{check}");
        assert!(runs[0].succeeded(), "{check}");
    }
    let hostile = store.runs("hostile", None, 10).await.unwrap();
    assert_eq!(hostile.len(), 1);
    assert!(
        hostile[0]
            .failure
            .as_ref()
            .is_some_and(|f| f.message.contains("poisoned asset"))
    );
}

#[tokio::test]
async fn a_refused_held_write_is_split_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    a_refused_held_write_is_split(store.clone(), &url).await;
    store.close().await;
}

#[tokio::test]
async fn a_refused_held_write_is_split_on_postgres() {
    let scratch = PgScratch::new("writer_held_split")
        .await
        .expect("Postgres on 127.0.0.1:5432 (see README: Tests)");
    let store = scratch.store().await.unwrap();
    a_refused_held_write_is_split(store.clone(), &scratch.url).await;
    store.close().await;
    scratch.drop_schema().await.unwrap();
}

/// A report of many assets is written in time linear in its size: the
/// health book, the rollups and the statements find each asset by key.
/// (Timed in `tests/benches/write_path.rs`; here, that it is all stored.)
#[tokio::test]
async fn a_big_report_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    let (mut writer, _bus) = writer(store.clone());
    let names: Vec<String> = (0..20_000).map(|i| format!("asset-{i}")).collect();
    let assets: Vec<&str> = names.iter().map(String::as_str).collect();
    writer
        .write_runs(vec![completed("good-1", 1, &assets)])
        .await;
    let runs = store.runs("good-1", None, 1).await.unwrap();
    assert_eq!(runs[0].assets, 20_000);
    assert_eq!(
        store
            .asset_observations("good-1", "asset-19999", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
}
