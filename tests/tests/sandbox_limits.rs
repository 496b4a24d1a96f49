//! Every host-side allocation a plugin can cause is charged to its run: a
//! hostile plugin built straight from the WIT (`plugins/testing/hostile`, no
//! SDK) attacks the host's memory through ids, log calls, header sets, resource
//! handles and HTTP bodies, and its sockets through held connections. Each
//! attack fails its own run with the limit it hit (naming the `limits.*` key to
//! raise) and the host goes on serving. Then the real `tributary serve`, in a
//! memory-capped cgroup with hostile checks at full concurrency, keeps running
//! its good check; and with a low fd limit its API keeps answering while a
//! plugin holds every connection it may.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary::plugin::{
    CollectRequest, HostConfig, Invocation, Limits, Plugin, PluginHost, Report, RunError,
    RunLabels, VecIdSink, Violation, escape_controls,
};
use tributary::store::Store;
use tributary_tests::gql::Client;
use tributary_tests::kit::{
    Fake, config_text, daemon_binary, doc_ids, document_service, free_port,
};
use tributary_tests::logs::Captured;
use tributary_tests::plugin;

struct Fixture {
    host: PluginHost,
    hostile: Plugin,
    _cache: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let cache = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(cache.path());
    config.max_instances = 8;
    let host = PluginHost::new(config).unwrap();
    let hostile = host.load(plugin("hostile")).await.unwrap();
    Fixture {
        host,
        hostile,
        _cache: cache,
    }
}

fn invocation(config: Value, limits: Limits) -> Invocation {
    Invocation {
        labels: RunLabels {
            plugin: String::new(),
            check: "hostile-test".into(),
            tenant: None,
        },
        config: config.to_string(),
        limits,
        ids: Some(Arc::new(VecIdSink::default())),
        ..Invocation::default()
    }
}

fn request() -> CollectRequest {
    CollectRequest {
        run_id: "run-1".into(),
        last_success: None,
        attempt: 1,
    }
}

impl Fixture {
    async fn collect(&self, config: Value, limits: Limits) -> Result<Report, RunError> {
        self.hostile
            .collect(&invocation(config, limits), &request())
            .await
    }

    /// Runs `config` and returns the violation it must fail with.
    async fn violation(&self, config: Value, limits: Limits) -> Violation {
        match self.collect(config.clone(), limits).await {
            Err(RunError::Sandbox(v)) => v,
            other => panic!("{config}: expected a sandbox violation, got {other:?}"),
        }
    }

    /// After whatever the previous run did, a good run on the same host works.
    async fn assert_host_still_serves(&self) {
        let report = self
            .collect(json!({"mode": "ok"}), Limits::default())
            .await
            .expect("a good run after a hostile one");
        assert_eq!(report.observations[0].asset, "hostile");
        let _ = &self.host;
    }
}

fn names(violation: &Violation, key: &str) {
    let message = violation.to_string();
    assert!(message.contains(key), "{message} should name {key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_ids_aliasing_one_big_buffer_is_refused_without_copying_it() {
    let f = fixture().await;
    // 100,000 ids that all point at one 32 MiB string: 3.2 TB if lifted.
    let v = f
        .violation(
            json!({"mode": "alias-ids", "length": 32 << 20, "count": 100_000}),
            Limits::default(),
        )
        .await;
    assert!(
        matches!(v, Violation::IdLength { limit: 4096, length } if length == 32 << 20),
        "{v}"
    );
    names(&v, "limits.id_length");
    // Short enough to pass the length check, then refused by bytes: 1 M ids
    // aliasing one 4 KiB string would be 4 GB.
    let v = f
        .violation(
            json!({"mode": "alias-ids", "length": 4096, "count": 1_000_000}),
            Limits::default(),
        )
        .await;
    assert_eq!(v, Violation::IdBytes { limit: 128 << 20 });
    names(&v, "limits.id_bytes");
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_whose_strings_alias_one_big_buffer_is_refused_without_copying_it() {
    let f = fixture().await;
    // 50,000 asset names that all point at one 32 MiB string: 1.6 TB if
    // lifted; the copy stops at the plugin's memory size.
    let v = f
        .violation(
            json!({"mode": "alias-report", "length": 32 << 20, "count": 50_000}),
            Limits::default(),
        )
        .await;
    assert_eq!(v, Violation::CallData { limit: 64 << 20 });
    names(&v, "limits.memory");
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_charged_by_bytes_count_length_and_asset() {
    let f = fixture().await;
    let small = Limits {
        id_bytes: 1 << 20,
        ..Limits::default()
    };
    // Big ids in big batches: bytes.
    let sink = Arc::new(VecIdSink::default());
    let mut inv = invocation(
        json!({"mode": "ids", "length": 1000, "count": 10_000, "batch": 100}),
        small.clone(),
    );
    inv.ids = Some(sink.clone());
    let err = f.hostile.collect(&inv, &request()).await.unwrap_err();
    assert!(
        matches!(err, RunError::Sandbox(Violation::IdBytes { limit }) if limit == 1 << 20),
        "{err}"
    );
    let kept: usize = sink.take().values().flatten().map(String::len).sum();
    assert!(kept <= 1 << 20, "the sink got {kept} bytes of ids");
    // Many tiny calls: the count.
    let v = f
        .violation(
            json!({"mode": "ids", "length": 1, "count": 20_000, "batch": 1}),
            Limits {
                ids: 10_000,
                ..Limits::default()
            },
        )
        .await;
    assert_eq!(v, Violation::Ids { limit: 10_000 });
    names(&v, "limits.ids");
    // One huge id: its length, before it is copied.
    let v = f
        .violation(
            json!({"mode": "ids", "length": 16 << 20, "count": 1}),
            Limits::default(),
        )
        .await;
    assert!(matches!(v, Violation::IdLength { .. }), "{v}");
    // Ids spread over 100,000 assets: each asset costs its own overhead.
    let v = f
        .violation(
            json!({"mode": "ids", "length": 1, "count": 100_000, "batch": 1, "assets": 100_000}),
            Limits {
                id_bytes: 16 << 20,
                ..Limits::default()
            },
        )
        .await;
    assert_eq!(v, Violation::IdBytes { limit: 16 << 20 });
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millions_of_handles_stop_at_the_handle_limit() {
    let f = fixture().await;
    let v = f
        .violation(
            json!({"mode": "handles", "count": 10_000_000}),
            Limits::default(),
        )
        .await;
    assert_eq!(v, Violation::Handles { limit: 256 });
    names(&v, "limits.handles");
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_sets_over_the_limit_are_refused() {
    let f = fixture().await;
    // One header of a megabyte.
    let v = f
        .violation(
            json!({"mode": "header", "length": 1 << 20, "count": 1}),
            Limits::default(),
        )
        .await;
    assert_eq!(v, Violation::HttpHeaders { limit: 32 << 10 });
    names(&v, "limits.http_headers");
    // Ten thousand small ones, in one list or one by one.
    for append in [false, true] {
        let v = f
            .violation(
                json!({"mode": "header", "length": 100, "count": 10_000, "append": append}),
                Limits::default(),
            )
            .await;
        assert_eq!(
            v,
            Violation::HttpHeaders { limit: 32 << 10 },
            "append: {append}"
        );
    }
    f.assert_host_still_serves().await;
}

/// A loopback server that answers every request with the head of a gigabyte
/// response and its first 64 KiB, then holds the connection until
/// the client closes it. It counts the connections open now and at most.
struct Holder {
    addr: SocketAddr,
    open: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

async fn holder() -> Holder {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (o, p) = (open.clone(), peak.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let now = o.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            let o = o.clone();
            tokio::spawn(async move {
                // The request's head first: hyper refuses an answer before it.
                let mut request = Vec::new();
                let mut byte = [0; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    if !matches!(socket.read(&mut byte).await, Ok(1)) {
                        o.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                    request.push(byte[0]);
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n";
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&vec![b'x'; 64 << 10]).await;
                let mut buf = vec![0; 4096];
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Holder { addr, open, peak }
}

/// A loopback server that reads request bytes forever and never answers;
/// returns its address and the bytes it received.
async fn bottomless() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 64 << 10];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    r.fetch_add(n as u64, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, received)
}

fn granting(addr: SocketAddr, config: Value, limits: Limits) -> Invocation {
    let mut inv = invocation(config, limits);
    inv.grants
        .allowed_hosts
        .push(format!("http://{addr}").parse().unwrap());
    inv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_ending_request_body_is_cut_at_the_limit() {
    let f = fixture().await;
    let (addr, received) = bottomless().await;
    let limits = Limits {
        http_request_bytes: 1 << 20,
        ..Limits::default()
    };
    let inv = granting(
        addr,
        json!({"mode": "post", "authority": addr.to_string()}),
        limits,
    );
    let err = f.hostile.collect(&inv, &request()).await.unwrap_err();
    assert!(
        matches!(err, RunError::Sandbox(Violation::HttpRequestBytes { limit }) if limit == 1 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("limits.http_request"), "{err}");
    let sent = received.load(Ordering::SeqCst);
    assert!(
        sent <= (1 << 20) + (64 << 10) + 4096,
        "the server got {sent} bytes"
    );
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_responses_hold_connections_up_to_the_run_cap() {
    let f = fixture().await;
    let server = holder().await;
    let limits = Limits {
        http_connections: 4,
        ..Limits::default()
    };
    let config = json!({"mode": "hold", "authority": server.addr.to_string(), "count": 100});
    let err = f
        .hostile
        .collect(&granting(server.addr, config, limits), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Sandbox(Violation::HttpConnections { limit: 4 })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("limits.http_connections"), "{err}");
    assert_eq!(server.peak.load(Ordering::SeqCst), 4);
    // The run's end closes them all.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.open.load(Ordering::SeqCst) > 0 {
        assert!(
            Instant::now() < deadline,
            "connections stay open after the run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_a_megabyte_of_headers_fails_the_request_only() {
    let f = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 0\r\n\r\n",
                    "a".repeat(1 << 20)
                );
                let _ = socket.write_all(head.as_bytes()).await;
            });
        }
    });
    let config = json!({"mode": "hold", "authority": addr.to_string(), "count": 1});
    let err = f
        .hostile
        .collect(&granting(addr, config, Limits::default()), &request())
        .await
        .unwrap_err();
    // hyper refuses the head (its buffer stops at about 400 KiB): the plugin
    // sees a failed request and says so.
    assert!(
        matches!(&err, RunError::Connector { message, .. } if message.contains("request 0: request failed")),
        "{err}"
    );
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_caps_connections_over_all_runs() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(cache.path());
    config.max_connections = 6;
    let host = PluginHost::new(config).unwrap();
    let hostile = host.load(plugin("hostile")).await.unwrap();
    let server = holder().await;
    let limits = Limits {
        http_connections: 1000,
        deadline: Duration::from_secs(2),
        ..Limits::default()
    };
    let config = json!({"mode": "hold", "authority": server.addr.to_string(), "count": 1000});
    let inv = granting(server.addr, config, limits);
    let req = request();
    let (a, b) = tokio::join!(hostile.collect(&inv, &req), hostile.collect(&inv, &req));
    // Both wait for a connection another run holds, until their deadline.
    for err in [a.unwrap_err(), b.unwrap_err()] {
        assert!(matches!(err, RunError::Timeout(_)), "{err}");
    }
    assert_eq!(server.peak.load(Ordering::SeqCst), 6);
}

/// Runs the hostile plugin with `config` on this thread, under a subscriber
/// that writes text logs; returns what was logged.
async fn logged(config: Value, limits: Limits) -> String {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let f = fixture().await;
    f.collect(config, limits)
        .await
        .expect("logging is not a failure");
    captured.text()
}

// Current-thread runtimes keep the plugin on this thread, where the
// subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn a_log_call_with_ten_thousand_huge_fields_is_cut_to_size() {
    // 10,000 fields aliasing one 1 MiB value: 10 GB if copied.
    let text = logged(
        json!({"mode": "log", "fields": 10_000, "value_length": 1 << 20, "lines": 1}),
        Limits::default(),
    )
    .await;
    let line = text
        .lines()
        .find(|l| l.contains("hostile says hello"))
        .expect("the line is logged");
    assert!(line.len() < 64 << 10, "a line of {} bytes", line.len());
    assert!(line.contains("fields_dropped=9968"), "{line}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_log_budget_counts_bytes() {
    let limits = Limits {
        log_bytes: 100 << 10,
        ..Limits::default()
    };
    let text = logged(
        json!({"mode": "log", "fields": 4, "value_length": 1000, "lines": 900}),
        limits,
    )
    .await;
    let lines = text
        .lines()
        .filter(|l| l.contains("hostile says hello"))
        .count();
    // Each line costs about 4 KB: 100 KiB lasts about 25 lines, far below
    // the 1,000-line budget.
    assert!((20..=30).contains(&lines), "{lines} lines logged");
    assert!(text.len() < 200 << 10, "{} bytes logged", text.len());
    assert!(text.contains("log byte limit reached"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_newline_or_escape_sequence_cannot_forge_a_log_line() {
    let forged = "ok\n2026-12-04T00:00:00Z  INFO tributary: forged line\u{1b}[2J\u{202e}";
    let text = logged(
        json!({"mode": "log", "message": forged, "lines": 1}),
        Limits::default(),
    )
    .await;
    assert!(
        !text.contains('\u{1b}'),
        "an escape reached the log: {text:?}"
    );
    assert!(!text.contains('\u{202e}'), "{text:?}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("forged")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0]
            .contains(r"ok\n2026-12-04T00:00:00Z  INFO tributary: forged line\u{1b}[2J\u{202e}"),
        "{}",
        lines[0]
    );
    assert_eq!(
        escape_controls("plain text, ünïcode"),
        "plain text, ünïcode"
    );
}

// ---------------------------------------------------------------------------
// The real daemon.

/// A config whose good check watches `service` with the example plugin, with
/// `hostile` checks (id, plugin config, limits) run every second, the API on
/// `port` and at most `concurrency` runs at once.
fn daemon_config(
    dir: &Path,
    service: &str,
    port: u16,
    concurrency: u32,
    hostile: &[(String, Value, &str)],
    grant: Option<SocketAddr>,
) -> PathBuf {
    let mut text = config_text(dir, &[("good", "ingest", service, "")])
        .replace(r#"every = "1h""#, r#"every = "1s""#)
        .replace(
            "[storage]",
            &format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[scheduler]\nmax_concurrent_runs = {concurrency}\n\n[storage]"
            ),
        );
    for (id, config, limits) in hostile {
        let config = toml_inline(config);
        let grants = grant.map_or(String::new(), |a| {
            format!("grants = {{ allowed_hosts = [\"http://{a}\"] }}\n")
        });
        text.push_str(&format!(
            "\n[[checks]]\nid = \"{id}\"\nsystem = \"warehouse\"\nconnector = \"hostile\"\nschedule = {{ every = \"1s\" }}\ntimeout = \"20s\"\nlimits = {{ {limits} }}\n{grants}config = {config}\n"
        ));
    }
    let file = dir.join("tributary.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// A JSON object as a TOML inline table (strings and numbers only).
fn toml_inline(value: &Value) -> String {
    let fields: Vec<String> = value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

/// The daemon process, killed when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tributary serve` through `sh`, which first runs `prelude` (joining
/// a cgroup, lowering a limit) in the process that then becomes the daemon.
fn spawn_daemon(file: &Path, prelude: &str, log: &Path) -> Running {
    let script = format!("{prelude}\nexec \"$0\" serve --config \"$1\" --log-format json");
    Running(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(daemon_binary())
            .arg(file)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

async fn wait_ready(api: &Client, child: &mut Running, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "the daemon exited ({status}) before it was ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if api.get("/readyz").await.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "the daemon never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The runs of `check` so far, as (succeeded, error message).
async fn runs(db: &str, check: &str) -> Vec<(bool, String)> {
    let Ok(store) = Store::open(db).await else {
        return Vec::new();
    };
    let runs = store.runs(check, None, 1000).await.unwrap_or_default();
    store.close().await;
    runs.iter()
        .map(|r| {
            (
                r.succeeded(),
                r.failure
                    .as_ref()
                    .map(|f| f.message.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// A memory cgroup of this test's own under the one this process is in
/// (v2 `memory.max` or v1 `memory.limit_in_bytes`), removed on drop.
struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    fn create(limit: u64) -> MemoryCgroup {
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let name = format!("tributary-test-{}", std::process::id());
        for line in cgroups.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
            let (Some(controllers), Some(path)) = (controllers, path) else {
                continue;
            };
            let (base, v2) = match controllers {
                "" => ("/sys/fs/cgroup", true),
                c if c.split(',').any(|c| c == "memory") => ("/sys/fs/cgroup/memory", false),
                _ => continue,
            };
            let dir = Path::new(base)
                .join(path.trim_start_matches('/'))
                .join(&name);
            let limit_file = if v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            if std::fs::create_dir(&dir).is_ok() {
                if std::fs::write(dir.join(limit_file), limit.to_string()).is_ok() {
                    return MemoryCgroup { dir, v2 };
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
        panic!("no writable memory cgroup (v2 memory.max or v1 memory.limit_in_bytes) here");
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The most memory the group has used.
    fn peak(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The worst case README's sandbox section gives for the default limits:
/// per run, 4 x memory + 2 x id_bytes + 3 x report + handles x 128 KiB +
/// http_connections x 512 KiB.
const PER_RUN_WORST: u64 =
    4 * (64 << 20) + 2 * (128 << 20) + 3 * (8 << 20) + 256 * (128 << 10) + 16 * (512 << 10);
/// The daemon itself (runtime, pools, compiled plugins, caches).
const DAEMON_BASE: u64 = 256 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_checks_at_full_concurrency_do_not_get_the_daemon_killed_for_memory() {
    let concurrency = 4;
    let cap = DAEMON_BASE + concurrency as u64 * PER_RUN_WORST;
    let cgroup = MemoryCgroup::create(cap);
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(50),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let attacks = [
        ("alias", json!({"mode": "alias-ids"}), "limits.id_length"),
        (
            "ids",
            json!({"mode": "ids", "length": 4000, "count": 10_000_000, "batch": 2000}),
            "limits.id_bytes",
        ),
        ("handles", json!({"mode": "handles"}), "limits.handles"),
        ("alloc", json!({"mode": "alloc"}), "limits.memory"),
        ("report", json!({"mode": "alias-report"}), "limits.memory"),
        ("poll", json!({"mode": "poll"}), "limits.memory"),
        (
            "headers",
            json!({"mode": "header", "length": 100, "count": 100_000}),
            "limits.http_headers",
        ),
        (
            "log",
            json!({"mode": "log", "fields": 100_000, "value_length": 1 << 20, "lines": 100}),
            "",
        ),
    ];
    let checks: Vec<(String, Value, &str)> = attacks
        .iter()
        .map(|(id, config, _)| (format!("hostile-{id}"), config.clone(), ""))
        .collect();
    let file = daemon_config(dir.path(), &service.url(), port, concurrency, &checks, None);
    let log = dir.path().join("daemon.log");
    let prelude = format!("echo $$ > {}", cgroup.procs().display());
    let mut child = spawn_daemon(&file, &prelude, &log);
    let api = Client::new(format!("http://127.0.0.1:{port}"));
    wait_ready(&api, &mut child, &log).await;
    let db = format!("sqlite://{}", dir.path().join("tributary.db").display());

    // Every attack fails its runs with its limit, at least twice, while the
    // daemon lives and its good check keeps succeeding.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "the daemon died ({status}) under a {} MiB cap:\n{}",
                cap >> 20,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let mut done = true;
        for (id, _, limit) in &attacks {
            let runs = runs(&db, &format!("hostile-{id}")).await;
            for (ok, message) in &runs {
                if !limit.is_empty() {
                    assert!(!ok, "hostile-{id} succeeded");
                    assert!(message.contains(limit), "hostile-{id}: {message}");
                }
            }
            done &= runs.len() >= 2;
        }
        let good = runs(&db, "good").await;
        done &= good.iter().filter(|(ok, _)| *ok).count() >= 5;
        if done {
            assert!(good.iter().all(|(ok, m)| *ok || m.is_empty()), "{good:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every attack ran twice within 3 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(child.0.try_wait().unwrap().is_none(), "the daemon died");
    let peak = cgroup.peak();
    eprintln!(
        "peak memory of the daemon: {} MiB of a {} MiB cap",
        peak.unwrap_or(0) >> 20,
        cap >> 20
    );
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tributary_run_escapes_the_text_a_plugin_reports() {
    let service = document_service(Arc::new(Mutex::new(Fake::default()))).await;
    let dir = tempfile::tempdir().unwrap();
    let asset = "evil\nforged line\u{1b}[2J\u{202e}";
    let hostile = [(
        "hostile-text".to_owned(),
        json!({"mode": "ok", "asset": asset}),
        "",
    )];
    let file = daemon_config(dir.path(), &service.url(), free_port(), 4, &hostile, None);
    let output = Command::new(daemon_binary())
        .args(["run", "hostile-text", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{202e}'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains(r"evil\nforged line\u{1b}[2J\u{202e}"),
        "{stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l.starts_with("forged line")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_while_a_plugin_holds_every_connection_it_may() {
    let server = holder().await;
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hostile = [(
        "hostile-hold".to_owned(),
        json!({"mode": "hold", "authority": server.addr.to_string(), "count": 5000}),
        "http_connections = 5000, http_requests = 10000",
    )];
    let file = daemon_config(
        dir.path(),
        &service.url(),
        port,
        4,
        &hostile,
        Some(server.addr),
    );
    let log = dir.path().join("daemon.log");
    // A hard limit of 256 open files: the daemon raises its soft limit to it
    // and lets plugins open a quarter.
    let mut child = spawn_daemon(&file, "ulimit -n 256", &log);
    let api = Client::new(format!("http://127.0.0.1:{port}"));
    wait_ready(&api, &mut child, &log).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.open.load(Ordering::SeqCst) < 64 {
        assert!(
            Instant::now() < deadline,
            "the plugin never reached the cap"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // At the cap, for a few seconds: the API answers every request.
    for _ in 0..20 {
        assert_eq!(api.get("/healthz").await.status, 200);
        let answer = api
            .query(Some("viewer-token"), "{ daemon { version } }", json!({}))
            .await;
        assert!(
            answer.data()["daemon"]["version"].is_string(),
            "{}",
            answer.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.peak.load(Ordering::SeqCst),
        64,
        "the host's cap is a quarter of 256"
    );
    drop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("open-file limit raised to the hard limit")
            && text.contains(r#""limit":256"#),
        "{text}"
    );
}
