//! A resume storm, for the test that checks it and the bench that times it:
//! a daemon holding thousands of stored health events of two tenants, twelve
//! checks running every second, its API served, and thousands of raw
//! graphql-transport-ws connections resuming `healthChanged(afterSeq: 0)` at
//! once with tenant-scoped and unscoped tokens, most of them filtered to one
//! check ([`Want`]). Every replay examines every stored event either way;
//! the filter keeps what is sent (each event resolved and framed per
//! subscriber) within what a debug build on two cores sends in seconds.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use plugin_sdk::harness::TestServer;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tributary::health::{Change, EntityRef, Status};
use tributary::store::testing::PgScratch;
use tributary::store::{HealthEvent, NewEvent, Store, WriteBatch};

use crate::kit::{self, Daemon, Fake, doc_ids};

/// The tokens subscribers use in turn: every tenant, then each one alone.
pub const TOKENS: [&str; 3] = ["viewer-token", "acme-admin-token", "globex-viewer-token"];

/// Checks per tenant, on two systems of one flow.
const CHECKS: usize = 6;

/// The tenant a stored entity belongs to, from the names this config gives
/// (`a-*` and kit's flow `docs` are acme's, `g-*` globex's).
fn tenant_of(entity: &EntityRef) -> &'static str {
    let id = match entity {
        EntityRef::Tenant(id) | EntityRef::Flow(id) | EntityRef::System(id) => id,
        EntityRef::Check(id) | EntityRef::Asset { check: id, .. } => id,
    };
    if id == "globex" || id.starts_with("g-") {
        "globex"
    } else {
        "acme"
    }
}

/// Whether the holder of `token` may see `event`.
fn visible(token: &str, event: &HealthEvent) -> bool {
    match token {
        "acme-admin-token" => tenant_of(&event.entity) == "acme",
        "globex-viewer-token" => tenant_of(&event.entity) == "globex",
        _ => true,
    }
}

/// What one subscriber asks for: a token and, but for every 50th, one
/// check's events (as a dashboard of one check would); the others take every
/// event their token may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Want {
    pub token: &'static str,
    pub check: Option<String>,
}

impl Want {
    /// The `n`th subscriber's: tokens in turn, checks its token may see in turn.
    pub fn nth(n: usize) -> Want {
        let token = TOKENS[n % TOKENS.len()];
        let prefixes: &[&str] = match token {
            "acme-admin-token" => &["a"],
            "globex-viewer-token" => &["g"],
            _ => &["a", "g"],
        };
        let k = n / TOKENS.len();
        let check = (!n.is_multiple_of(50)).then(|| {
            let p = prefixes[k % prefixes.len()];
            format!("{p}-c{}", (k / prefixes.len()) % CHECKS)
        });
        Want { token, check }
    }

    /// Whether this subscriber is to get `event`.
    pub fn sees(&self, event: &HealthEvent) -> bool {
        visible(self.token, event)
            && (self.check.as_ref())
                .is_none_or(|c| matches!(&event.entity, EntityRef::Check(e) if e == c))
    }

    /// The subscription's variables.
    fn variables(&self) -> Value {
        use base64::Engine;
        let filter = self.check.as_ref().map(|c| {
            let key = tributary::store::entity_key(&EntityRef::Check(c.clone()));
            json!({"entity": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)})
        });
        json!({"f": filter})
    }
}

/// The daemon under the storm, and what feeds it.
pub struct Storm {
    pub d: Daemon,
    pub base: String,
    /// Each tenant's document service (acme, globex): make one fail to
    /// change its checks' health.
    pub services: [(Arc<Mutex<Fake>>, TestServer); 2],
    pub scratch: Option<PgScratch>,
}

impl Storm {
    /// A daemon on SQLite, or on a schema of its own in Postgres, whose store
    /// holds `events` health events of both tenants before it starts.
    pub async fn start(postgres: bool, events: usize) -> Storm {
        raise_fd_limit();
        let mut services = Vec::new();
        for _ in 0..2 {
            let fake = Arc::new(Mutex::new(Fake {
                ids: doc_ids(100),
                ..Fake::default()
            }));
            let server = kit::document_service(fake.clone()).await;
            services.push((fake, server));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut text = kit::config_text(dir.path(), &[]);
        let token = dir.path().join("token");
        text.push_str(&tenant_text("a", "acme", &services[0].1.url(), &token));
        text.push_str(&tenant_text("g", "globex", &services[1].1.url(), &token));
        let scratch = if postgres {
            let scratch = PgScratch::new("resume_storm")
                .await
                .expect("Postgres on 127.0.0.1:5432 (see README: Tests)");
            let sqlite = format!("sqlite://{}", dir.path().join("tributary.db").display());
            text = text.replace(&sqlite, &scratch.url);
            Some(scratch)
        } else {
            None
        };
        let url = match &scratch {
            Some(s) => s.url.clone(),
            None => format!("sqlite://{}", dir.path().join("tributary.db").display()),
        };
        seed(&url, events).await;
        let d = kit::start_live(dir, &text).await;
        let base = d.serve_api().await;
        let services: [(Arc<Mutex<Fake>>, TestServer); 2] =
            services.try_into().unwrap_or_else(|_| unreachable!());
        Storm {
            d,
            base,
            services,
            scratch,
        }
    }

    /// Every stored event, oldest first.
    pub async fn stored(&self) -> Vec<HealthEvent> {
        self.d.store.events_after(0, 1_000_000).await.unwrap()
    }

    /// Makes both tenants' services fail, so their checks change health at
    /// their next runs: a live event for every subscriber.
    pub fn break_services(&self) {
        for (fake, _) in &self.services {
            fake.lock().unwrap().fail_with = Some(500);
        }
    }

    /// Stops the daemon and drops its Postgres schema.
    pub async fn stop(self) {
        self.d.service.stop(Duration::from_secs(10)).await;
        if let Some(s) = self.scratch {
            s.drop_schema().await.unwrap();
        }
    }
}

/// Tenant `tenant`'s flow `{p}-flow` from `{p}-up` to `{p}-down`, with
/// [`CHECKS`] checks running every second against the service at `url`
/// (with the service's token in the file `token`).
fn tenant_text(p: &str, tenant: &str, url: &str, token: &Path) -> String {
    let mut text = String::new();
    for system in ["up", "down"] {
        text.push_str(&format!(
            "[[systems]]\nid = \"{p}-{system}\"\nname = \"{p} {system}\"\nkind = \"service\"\n\n"
        ));
    }
    text.push_str(&format!(
        "[[flows]]\nid = \"{p}-flow\"\ntenant = \"{tenant}\"\nname = \"{tenant} flow\"\n\
         upstream = \"{p}-up\"\ndownstream = [\"{p}-down\"]\n\n"
    ));
    for n in 0..CHECKS {
        let system = if n % 2 == 0 { "up" } else { "down" };
        text.push_str(&format!(
            "[[checks]]\nid = \"{p}-c{n}\"\nsystem = \"{p}-{system}\"\nconnector = \"example\"\n\
             schedule = {{ every = \"1s\" }}\ntimeout = \"10s\"\n\
             grants = {{ allowed_hosts = [\"{url}\"] }}\n\
             config = {{ base_url = \"{url}\", tenant = \"acme\", token = {{ file = \"{}\" }} }}\n\n",
            token.display()
        ));
    }
    text
}

/// Writes `n` health events of both tenants' entities into the store at `url`.
async fn seed(url: &str, n: usize) {
    let entities: Vec<EntityRef> = ["a", "g"]
        .iter()
        .flat_map(|p| {
            let tenant = if *p == "a" { "acme" } else { "globex" };
            let mut e = vec![
                EntityRef::Tenant(tenant.into()),
                EntityRef::Flow(format!("{p}-flow")),
                EntityRef::System(format!("{p}-up")),
                EntityRef::System(format!("{p}-down")),
            ];
            e.extend((0..CHECKS).map(|c| EntityRef::Check(format!("{p}-c{c}"))));
            e
        })
        .collect();
    let store = Store::open(url).await.unwrap();
    let statuses = [Status::Healthy, Status::Warning, Status::Unhealthy];
    let events = (0..n)
        .map(|i| NewEvent {
            entity: entities[i % entities.len()].clone(),
            change: Change {
                from: Some(statuses[i % 3]),
                to: statuses[(i + 1) % 3],
                reasons: vec![],
                muted: false,
                maintenance: None,
                suppressed_by: None,
            },
            run_id: None,
            at: SystemTime::now(),
        })
        .collect();
    store
        .write(&WriteBatch {
            events,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    store.close().await;
}

/// Lets this process hold the storm's sockets (client and server ends).
fn raise_fd_limit() {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let want = hard.min(65_536);
    if soft < want {
        rlimit::Resource::NOFILE.set(want, hard).unwrap();
    }
}

/// What one subscriber got.
#[derive(Debug)]
pub struct Served {
    pub want: Want,
    /// The sequence numbers received, in order.
    pub seqs: Vec<i64>,
    /// From the start of the storm until it had every event stored before.
    pub caught_up: Duration,
}

/// Where each subscriber stops: once it has every event up to `backlog`
/// (the last stored when the storm began, for its token) it is served; it
/// then reads on until it has an event at or after its `live` mark, once
/// the test sets one.
#[derive(Debug, Clone, Copy)]
pub struct Marks {
    pub backlog: i64,
    pub live: Option<i64>,
}

/// Opens a connection, resumes from `afterSeq: 0` as `want` says, and reads
/// until the marks say it is done, counting itself in `caught` once it has
/// the backlog; an error message, a close or a silence of 60 s is an error.
pub async fn subscriber(
    base: String,
    want: Want,
    started: Instant,
    mut marks: watch::Receiver<Marks>,
    caught: Arc<AtomicUsize>,
) -> Result<Served, String> {
    let url = format!("{}/graphql", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    (request.headers_mut()).insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({"type": "connection_init",
            "payload": {"Authorization": format!("Bearer {}", want.token)}})))
        .await
        .map_err(|e| format!("init: {e}"))?;
    socket
        .send(send(json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($f: HealthEventFilter) { healthChanged(filter: $f, afterSeq: 0) { seq } }",
            "variables": want.variables()}})))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let mut seqs = Vec::new();
    let mut caught_up = None;
    // Whether the marks may still move (their sender lives).
    let mut moving = true;
    loop {
        let m = *marks.borrow_and_update();
        let last = seqs.last().copied().unwrap_or(0);
        if caught_up.is_none() && last >= m.backlog {
            caught_up = Some(started.elapsed());
            caught.fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(at), Some(live)) = (caught_up, m.live)
            && last >= live
        {
            return Ok(Served {
                want,
                seqs,
                caught_up: at,
            });
        }
        let frame = tokio::select! {
            f = tokio::time::timeout(Duration::from_secs(60), socket.next()) => f,
            changed = marks.changed(), if moving => {
                moving = changed.is_ok();
                continue;
            }
        };
        let text = match frame {
            Err(_) => return Err(format!("nothing for 60 s after seq {last}")),
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Close(f)))) => return Err(format!("closed: {f:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(format!("socket: {e}")),
            Ok(None) => return Err("the connection ended".into()),
        };
        let m: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match m["type"].as_str() {
            Some("connection_ack") | Some("pong") => {}
            Some("ping") => {
                let _ = socket.send(send(json!({"type": "pong"}))).await;
            }
            Some("next") if m["payload"]["errors"].is_null() => {
                let seq = m["payload"]["data"]["healthChanged"]["seq"].as_i64();
                seqs.push(seq.ok_or_else(|| format!("no seq in {m}"))?);
            }
            _ => return Err(format!("got {m}")),
        }
    }
}
