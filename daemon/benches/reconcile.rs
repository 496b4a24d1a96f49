//! Id reconciliation at the size the product owner set: 1,000,000 upstream ids
//! against 1,000,000 downstream ids, 10,000 (1 %) of the upstream ids missing
//! downstream and 10,000 downstream-only ids, measured against Postgres
//! computing the same difference with `EXCEPT`.
//!
//! ```sh
//! cargo bench -p tributary --bench reconcile
//! ```
//!
//! Tributary's figure is the whole path a flow takes: every id handed to an
//! [`IdCollector`] in batches of 1,000 `String`s (as the plugin host hands
//! them over), both sets finished, the difference computed, on one thread.
//! "End to end" makes the `String`s inside the measured time, because the host
//! allocates them when it lifts a batch out of the guest (making them alone is
//! printed too); "batches made beforehand" leaves them out, which is
//! Tributary's own work. Peak heap is counted by the global allocator below,
//! over the end-to-end run, above what was live when it started.
//!
//! Two kinds of id: `doc-0000123456` (14 bytes, like a sequence-numbered
//! record) and UUID-like strings (36 bytes).
//!
//! Postgres gets the same ids in two tables `(id text)` loaded with `COPY`
//! and analysed; only the `EXCEPT` queries are timed. Its URL is
//! `TRIBUTARY_BENCH_PG_URL`, else `postgres://root@127.0.0.1:5432/test`, else
//! user `postgres`. Unreachable means Tributary's figures only, exit 0; an
//! answer that differs from Tributary's fails the bench.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tributary::plugin::IdSink;
use tributary::reconcile::{Difference, IdCollector, IdSet, difference};

const UPSTREAM: u64 = 1_000_000;
/// Upstream ids with `index % MISSING_EVERY == MISSING_AT` are absent downstream.
const MISSING_EVERY: u64 = 100;
const MISSING_AT: u64 = 37;
const MISSING: u64 = UPSTREAM / MISSING_EVERY;
const DOWNSTREAM_ONLY: u64 = MISSING;
const BATCH: usize = 1_000;
const ASSET: &str = "documents";
const RUNS: usize = 5;

// ---------------------------------------------------------------------------
// Heap accounting.

/// Counts live heap bytes and their high-water mark. It sees what the program
/// asks for, not allocator overhead or RSS.
struct CountingAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl CountingAlloc {
    fn grew(by: usize) {
        let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
        // A plain load first: most allocations are not a new peak, and this
        // keeps the counter's own cost out of the timings as far as it can.
        if now > PEAK.load(Ordering::Relaxed) {
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn shrank(by: usize) {
        CURRENT.fetch_sub(by, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only
// updates counters, and only after `System` has succeeded.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's, checked by it.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                Self::grew(new_size - layout.size());
            } else {
                Self::shrank(layout.size() - new_size);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Starts a peak measurement; returns the live bytes it is relative to.
fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

// ---------------------------------------------------------------------------
// The data.

/// One kind of id: the same indices give the same ids for Tributary and
/// Postgres.
struct Scenario {
    name: &'static str,
    id: fn(u64) -> String,
}

const SCENARIOS: [Scenario; 2] = [
    Scenario {
        name: "doc-0000123456 (14 bytes)",
        id: doc_id,
    },
    Scenario {
        name: "UUID-like (36 bytes)",
        id: uuid_like_id,
    },
];

/// `doc-` and ten decimal digits. Written digit by digit rather than with
/// `format!`, which costs several times the allocation and would swamp what is
/// measured: the host lifts a batch out of the guest with an allocation and a
/// copy per id, nothing more.
fn doc_id(index: u64) -> String {
    let mut digits = [b'0'; 10];
    let mut rest = index;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let mut id = String::with_capacity(14);
    id.push_str("doc-");
    id.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
    id
}

/// A version-4-shaped UUID drawn from the index with splitmix64, so ids are
/// random-looking yet reproducible.
fn uuid_like_id(index: u64) -> String {
    let mut state = index;
    let (hi, lo) = (splitmix64(&mut state), splitmix64(&mut state));
    let mut id = String::with_capacity(36);
    push_hex(&mut id, hi >> 32, 8);
    id.push('-');
    push_hex(&mut id, hi >> 16, 4);
    id.push_str("-4");
    push_hex(&mut id, hi, 3);
    id.push('-');
    push_hex(&mut id, 0x8000 | (lo >> 48) & 0x3fff, 4);
    id.push('-');
    push_hex(&mut id, lo, 12);
    id
}

/// The low `nibbles` hex digits of `value`.
fn push_hex(out: &mut String, value: u64, nibbles: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for place in (0..nibbles).rev() {
        out.push(char::from(HEX[(value >> (4 * place)) as usize & 0xf]));
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn upstream_indices() -> impl Iterator<Item = u64> {
    0..UPSTREAM
}

/// Upstream less the missing ones, then the downstream-only ones.
fn downstream_indices() -> impl Iterator<Item = u64> {
    (0..UPSTREAM)
        .filter(|i| i % MISSING_EVERY != MISSING_AT)
        .chain(UPSTREAM..UPSTREAM + DOWNSTREAM_ONLY)
}

fn expected_missing(scenario: &Scenario) -> Vec<String> {
    let mut ids: Vec<String> = (0..UPSTREAM)
        .filter(|i| i % MISSING_EVERY == MISSING_AT)
        .map(scenario.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// The ids of `indices` in batches of [`BATCH`] freshly made `String`s,
/// made as they are pulled, as the host lifts them out of the guest.
fn batches(
    mut indices: impl Iterator<Item = u64>,
    id: fn(u64) -> String,
) -> impl Iterator<Item = Vec<String>> {
    std::iter::from_fn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        batch.extend(indices.by_ref().take(BATCH).map(id));
        (!batch.is_empty()).then_some(batch)
    })
}

// ---------------------------------------------------------------------------
// Tributary.

#[derive(Clone, Copy)]
struct Phases {
    feed: Duration,
    finish: Duration,
    diff: Duration,
}

impl Phases {
    fn total(self) -> Duration {
        self.feed + self.finish + self.diff
    }
}

/// One plugin run's ids handed to a fresh collector, batch by batch.
fn collect(batches: impl Iterator<Item = Vec<String>>) -> IdCollector {
    let run = IdCollector::new();
    for batch in batches {
        run.accept(ASSET, batch).expect("no limits set");
    }
    run
}

fn take_set(run: &IdCollector) -> IdSet {
    run.take().remove(ASSET).expect("asset fed")
}

/// What the daemon does for one flow: each system's ids through its own
/// collector (as two plugin runs would hand them over), both sets finished,
/// the difference computed. Returns the upstream set for the stored-form
/// figures.
fn reconcile(
    upstream_batches: impl Iterator<Item = Vec<String>>,
    downstream_batches: impl Iterator<Item = Vec<String>>,
) -> (Phases, Difference, IdSet) {
    let start = Instant::now();
    let upstream_run = collect(upstream_batches);
    let downstream_run = collect(downstream_batches);
    let fed = Instant::now();

    let upstream = take_set(&upstream_run);
    let downstream = take_set(&downstream_run);
    let finished = Instant::now();

    let diff = difference(&upstream, &downstream);
    let end = Instant::now();

    assert_eq!(
        (upstream.len() as u64, downstream.len() as u64),
        (UPSTREAM, UPSTREAM)
    );
    let phases = Phases {
        feed: fed - start,
        finish: finished - fed,
        diff: end - finished,
    };
    (phases, diff, upstream)
}

/// The whole path, `String`s made batch by batch inside the measured time;
/// also the peak heap above what was live before it.
fn end_to_end(scenario: &Scenario) -> (Phases, usize, Difference, IdSet) {
    let baseline = reset_peak();
    let (phases, diff, upstream) = reconcile(
        batches(upstream_indices(), scenario.id),
        batches(downstream_indices(), scenario.id),
    );
    let peak_heap = PEAK.load(Ordering::Relaxed) - baseline;
    (phases, peak_heap, diff, upstream)
}

/// The same with every batch made before the clock starts: Tributary's own
/// work. (No heap figure: the 2 million `String`s held beforehand and freed
/// during the run would hide the sets' growth.)
fn batches_made_beforehand(scenario: &Scenario) -> Phases {
    let upstream: Vec<Vec<String>> = batches(upstream_indices(), scenario.id).collect();
    let downstream: Vec<Vec<String>> = batches(downstream_indices(), scenario.id).collect();
    reconcile(upstream.into_iter(), downstream.into_iter()).0
}

/// Making and dropping the batches alone: the host's share of the end-to-end
/// feed time.
fn strings_only(scenario: &Scenario) -> Duration {
    let start = Instant::now();
    batches(upstream_indices(), scenario.id)
        .chain(batches(downstream_indices(), scenario.id))
        .for_each(|batch| drop(std::hint::black_box(batch)));
    start.elapsed()
}

struct StoredForm {
    bytes: usize,
    encode: Duration,
    decode: Duration,
}

fn stored_form(set: &IdSet) -> StoredForm {
    let start = Instant::now();
    let blob = set.encode();
    let encode = start.elapsed();
    let start = Instant::now();
    let decoded = IdSet::decode(&blob).expect("own encoding decodes");
    let decode = start.elapsed();
    assert_eq!(&decoded, set);
    StoredForm {
        bytes: blob.len(),
        encode,
        decode,
    }
}

// ---------------------------------------------------------------------------
// Postgres.

const COUNT_SQL: &str = "SELECT count(*) FROM (SELECT id FROM up EXCEPT SELECT id FROM down) d";
const FETCH_SQL: &str = "SELECT id FROM up EXCEPT SELECT id FROM down ORDER BY id";

struct PostgresRun {
    load: Duration,
    count: Vec<Duration>,
    fetch: Vec<Duration>,
    plan: Vec<String>,
}

async fn connect() -> Result<(PgConnection, String)> {
    let urls = match std::env::var("TRIBUTARY_BENCH_PG_URL") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://root@127.0.0.1:5432/test".to_owned(),
            "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        ],
    };
    let mut failures = Vec::new();
    for url in urls {
        let attempt = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url));
        match attempt.await {
            Ok(Ok(conn)) => return Ok((conn, url)),
            Ok(Err(error)) => failures.push(format!("{url}: {error}")),
            Err(_) => failures.push(format!("{url}: no answer in 5 s")),
        }
    }
    anyhow::bail!("{}", failures.join("; "))
}

/// Loads `table` with `COPY`, in 1 MB messages.
async fn load(
    conn: &mut PgConnection,
    table: &str,
    ids: impl Iterator<Item = String>,
) -> Result<()> {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} (id) FROM STDIN"))
        .await?;
    let mut buffer = Vec::with_capacity(1 << 20);
    for id in ids {
        // Text-format COPY would unescape these; the generated ids have none.
        debug_assert!(!id.contains(['\\', '\t', '\n', '\r']));
        buffer.extend_from_slice(id.as_bytes());
        buffer.push(b'\n');
        if buffer.len() >= 1 << 20 {
            copy.send(buffer.as_slice()).await?;
            buffer.clear();
        }
    }
    copy.send(buffer.as_slice()).await?;
    copy.finish().await?;
    Ok(())
}

async fn postgres_in_schema(
    conn: &mut PgConnection,
    scenario: &Scenario,
    expected: &[String],
) -> Result<PostgresRun> {
    sqlx::raw_sql("CREATE TABLE up (id text); CREATE TABLE down (id text)")
        .execute(&mut *conn)
        .await?;
    let start = Instant::now();
    load(conn, "up", upstream_indices().map(scenario.id)).await?;
    load(conn, "down", downstream_indices().map(scenario.id)).await?;
    sqlx::raw_sql("ANALYZE up; ANALYZE down")
        .execute(&mut *conn)
        .await?;
    let load_time = start.elapsed();

    let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {FETCH_SQL}")))
        .fetch_all(&mut *conn)
        .await?;

    let mut count = Vec::new();
    let mut fetch = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let missing: i64 = sqlx::query_scalar(COUNT_SQL).fetch_one(&mut *conn).await?;
        count.push(start.elapsed());
        ensure!(
            missing as u64 == MISSING,
            "Postgres counted {missing} missing"
        );

        let start = Instant::now();
        let mut ids: Vec<String> = sqlx::query_scalar(FETCH_SQL).fetch_all(&mut *conn).await?;
        fetch.push(start.elapsed());
        // ORDER BY follows the database's collation; compare in byte order.
        ids.sort_unstable();
        ensure!(
            ids == expected,
            "Postgres and Tributary disagree on the missing ids"
        );
    }
    Ok(PostgresRun {
        load: load_time,
        count,
        fetch,
        plan,
    })
}

/// Runs the scenario in a fresh schema and drops it whatever happened; `None`
/// when Postgres cannot be reached.
async fn postgres(scenario: &Scenario, expected: &[String]) -> Result<Option<PostgresRun>> {
    let (mut conn, url) = match connect().await {
        Ok(connected) => connected,
        Err(error) => {
            println!("  postgres UNREACHABLE, not measured: {error:#}");
            return Ok(None);
        }
    };
    let schema = format!("bench_reconcile_{}", std::process::id());
    // The schema name is made of a literal and the process id: nothing to inject.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("creating schema {schema} on {url}"))?;
    let result = postgres_in_schema(&mut conn, scenario, expected).await;
    let dropped = sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut conn)
        .await;
    let run = result?;
    dropped.with_context(|| format!("dropping schema {schema}"))?;
    let work_mem: String = sqlx::query_scalar("SHOW work_mem")
        .fetch_one(&mut conn)
        .await?;
    println!("  postgres: {url}, work_mem {work_mem}");
    Ok(Some(run))
}

// ---------------------------------------------------------------------------
// Report.

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Median and minimum total, and the median of each phase.
fn summary(runs: &[Phases]) -> String {
    let of = |f: fn(&Phases) -> Duration| median(runs.iter().map(f).collect());
    let min = runs.iter().map(|r| r.total()).min().unwrap_or_default();
    format!(
        "total {} (min {}) = feed {} + finish {} + difference {}",
        ms(of(|r| r.total())),
        ms(min),
        ms(of(|r| r.feed)),
        ms(of(|r| r.finish)),
        ms(of(|r| r.diff)),
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "id reconciliation: {UPSTREAM} upstream vs {UPSTREAM} downstream ids, {MISSING} missing, \
         {DOWNSTREAM_ONLY} downstream-only, batches of {BATCH}, {RUNS} runs each; \
         load average {}",
        load_average()
    );
    for scenario in &SCENARIOS {
        println!("\n== ids: {}", scenario.name);
        let expected = expected_missing(scenario);

        let mut end_to_end_runs = Vec::new();
        let mut peak = 0;
        let mut upstream = IdSet::default();
        for _ in 0..RUNS {
            let (phases, peak_heap, diff, set) = end_to_end(scenario);
            assert_eq!(
                (diff.expected, diff.received),
                (UPSTREAM, UPSTREAM - MISSING)
            );
            assert_eq!(diff.missing, expected, "Tributary's missing ids are wrong");
            end_to_end_runs.push(phases);
            peak = peak.max(peak_heap);
            upstream = set;
        }
        let beforehand_runs: Vec<Phases> = (0..RUNS)
            .map(|_| batches_made_beforehand(scenario))
            .collect();
        let strings = median((0..RUNS).map(|_| strings_only(scenario)).collect());
        let stored = stored_form(&upstream);
        drop(upstream);

        println!("  tributary end to end:  {}", summary(&end_to_end_runs));
        println!(
            "    of which making the 2,000,000 Strings alone: {}",
            ms(strings)
        );
        println!(
            "  tributary, batches made beforehand: {}",
            summary(&beforehand_runs)
        );
        println!(
            "  stored form of the upstream set: {} ({:.1} bytes/id), encode {}, decode {}",
            mb(stored.bytes),
            stored.bytes as f64 / UPSTREAM as f64,
            ms(stored.encode),
            ms(stored.decode)
        );

        let total = median(end_to_end_runs.iter().map(|r| r.total()).collect());
        let own = median(beforehand_runs.iter().map(|r| r.total()).collect());
        let pg = runtime.block_on(postgres(scenario, &expected))?;
        println!("  | figure | value |");
        println!("  | --- | --- |");
        println!(
            "  | tributary end to end (median of {RUNS}) | {} |",
            ms(total)
        );
        println!(
            "  | tributary, batches made beforehand (median of {RUNS}) | {} |",
            ms(own)
        );
        println!(
            "  | tributary peak heap, end to end (max of {RUNS}) | {} |",
            mb(peak)
        );
        match pg {
            Some(pg) => {
                let count = median(pg.count);
                let fetch = median(pg.fetch);
                let ratio = |pg: Duration, ours: Duration| pg.as_secs_f64() / ours.as_secs_f64();
                println!("  | postgres EXCEPT count(*) (median) | {} |", ms(count));
                println!(
                    "  | postgres EXCEPT fetch ids ORDER BY (median) | {} |",
                    ms(fetch)
                );
                println!(
                    "  | postgres load (COPY both + ANALYZE) | {} |",
                    ms(pg.load)
                );
                println!(
                    "  | postgres count / tributary end to end | {:.1}x |",
                    ratio(count, total)
                );
                println!(
                    "  | postgres count / tributary, batches made beforehand | {:.1}x |",
                    ratio(count, own)
                );
                println!(
                    "  | postgres fetch / tributary end to end | {:.1}x |",
                    ratio(fetch, total)
                );
                println!("  postgres plan of the fetch query:");
                for line in pg.plan {
                    println!("    {line}");
                }
            }
            None => println!("  | postgres | not measured (unreachable) |"),
        }
    }
    println!("\nload average at the end: {}", load_average());
    Ok(())
}
