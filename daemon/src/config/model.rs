//! The typed config: what the rest of the daemon reads once a file is valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::secrets::{CheckConfig, Secret};
use super::units::Jitter;
use crate::health::{Heartbeat, Rules, Status, Window};
use crate::plugin::{Grants, Limits};

/// A whole, valid config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    pub server: Server,
    pub api: Api,
    pub storage: Storage,
    /// Where connector components (`*.wasm`) are loaded from.
    pub plugins_dir: PathBuf,
    /// Where the daemon keeps its own files (compiled component cache, ...).
    pub data_dir: PathBuf,
    pub scheduler: Scheduler,
    pub tenants: Vec<Tenant>,
    pub systems: Vec<System>,
    pub flows: Vec<Flow>,
    pub checks: Vec<Check>,
    pub alerts: Alerts,
    /// `[[maintenance]]`: windows during which changes announce nothing.
    pub maintenance: Vec<Window>,
    /// `[[slos]]`: service level objectives, in the order of the file.
    pub slos: Vec<crate::slo::Slo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub listen: SocketAddr,
    /// Bytes the unfinished OpenLineage runs of all checks may hold
    /// together (`openlineage_max_held`); each check's `max_held` is a
    /// reserved share of it.
    pub openlineage_max_held: u64,
}

/// Who may use the GraphQL API, and how much one request may ask.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Api {
    pub tokens: Vec<ApiToken>,
    pub limits: ApiLimits,
    /// Browser origins (`https://app.example.com`) whose pages may call the
    /// API: answered CORS preflights, and WebSocket upgrades let through.
    pub allowed_origins: Vec<String>,
    pub introspection: Introspection,
    pub persisted_queries: PersistedQueries,
    pub websocket: ApiWebSocket,
}

/// Automatic Persisted Queries (Apollo's `persistedQuery` extension): clients
/// send a query's SHA-256 instead of its text once the daemon has stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistedQueries {
    /// Requests naming a hash get `PERSISTED_QUERY_NOT_SUPPORTED`, which tells
    /// Apollo Client to send texts from then on.
    Off,
    /// Query texts are kept up to `max_bytes` in all; past it the least used
    /// go, and their clients send the text again.
    On { max_bytes: u64 },
}

impl Default for PersistedQueries {
    fn default() -> Self {
        PersistedQueries::On {
            max_bytes: 16 << 20,
        }
    }
}

/// How the API's WebSocket keeps a connection (`[api.websocket]`): read
/// when a connection opens, so a reload applies to the next ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiWebSocket {
    /// How often the server pings (a `ping` message; `ka` and a WebSocket
    /// ping frame in the legacy protocol), so a client that never pings
    /// itself still has something to answer.
    pub ping_interval: Duration,
    /// How long the client may stay silent (no message at all, pongs
    /// included) before the connection is closed; longer than
    /// `ping_interval`, so a live client always has a ping to answer first.
    pub idle_timeout: Duration,
    /// How long a new connection may take to send `connection_init`.
    pub init_timeout: Duration,
    /// Operations one connection may hold at once: each holds a stream on
    /// the event bus and its reads.
    pub max_subscriptions: usize,
}

impl Default for ApiWebSocket {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            init_timeout: Duration::from_secs(10),
            max_subscriptions: 100,
        }
    }
}

/// Who may read the schema through `__schema` / `__type`: tools and code
/// generators need it; a public endpoint may rather not show its map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Introspection {
    /// Anyone, with or without a token.
    #[default]
    Public,
    /// Holders of a valid token.
    Authenticated,
    /// Nobody; `schema.graphql` is the reference then.
    Off,
}

/// A bearer token. The config holds only its SHA-256, so a leaked config file
/// does not leak access.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who uses it: recorded in the audit log as the actor of its mutations.
    pub name: String,
    /// Lowercase hex SHA-256 of the token (`tributary token` makes both).
    pub sha256: String,
    pub role: Role,
    /// When set, the token sees and acts on this tenant only.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// What a token may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in its scope.
    Viewer,
    /// Also runs checks now, re-syncs, mutes and unmutes.
    Operator,
    /// Also deletes data and reloads the config.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Bounds on one GraphQL request, so no client can make the daemon work
/// without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_body_bytes: u64,
    /// Most aliased fields in one document: each alias repeats a field's
    /// answer, so they multiply what one request costs.
    pub max_aliases: usize,
    /// Largest answer, in bytes, before it is refused with `ANSWER_TOO_LARGE`.
    pub max_answer_bytes: u64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_complexity: 1_000_000,
            max_body_bytes: 256 * 1024,
            max_aliases: 50,
            max_answer_bytes: 16 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `sqlite://path` or `postgres://...`.
    pub url: String,
    pub retention: Retention,
    /// Most runs held in memory while the database cannot take writes; the
    /// oldest are dropped past it.
    pub write_buffer: usize,
}

/// Runs held while the database is unavailable, unless configured: at one
/// run a second per check, minutes of a busy daemon's work.
pub const DEFAULT_WRITE_BUFFER: usize = 10_000;

/// How long stored data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Runs, observations, errors and ids.
    pub raw: Duration,
    /// Hourly and daily rollups.
    pub rollups: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: Duration::from_secs(30 * 86_400),
            rollups: Duration::from_secs(400 * 86_400),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    pub max_concurrent_runs: u32,
    /// Concurrency caps by connector name.
    pub per_connector: BTreeMap<String, u32>,
    pub jitter: Jitter,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 16,
            per_connector: BTreeMap::new(),
            jitter: Jitter::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// Who answers for it (a team, an email); inherited downward, see
    /// `alerts::routes`.
    #[serde(default)]
    pub owner: Option<String>,
    /// Inherited downward per key, the nearer entity winning.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether `/status/{id}` and the badges of the tenant's entities are
    /// served to anyone, without a token; see `statuspage`.
    #[serde(default)]
    pub public: bool,
}

/// One node of a flow; flows and checks name systems by id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub id: String,
    pub name: String,
    /// What it is, e.g. `snowflake`, `looker`, `service`.
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Who answers for it (a team, an email); inherited downward, see
    /// `alerts::routes`.
    #[serde(default)]
    pub owner: Option<String>,
    /// Inherited downward per key, the nearer entity winning.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// System id.
    pub upstream: String,
    /// System ids, at least one.
    pub downstream: Vec<String>,
    #[serde(default)]
    pub links: Links,
    /// Who answers for it (a team, an email); inherited downward, see
    /// `alerts::routes`.
    #[serde(default)]
    pub owner: Option<String>,
    /// Inherited downward per key, the nearer entity winning.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    #[serde(default)]
    pub runbook: Option<String>,
    #[serde(default)]
    pub diagram: Option<String>,
    /// A chat channel or address, e.g. `#data-oncall`.
    #[serde(default)]
    pub contact: Option<String>,
}

/// A configured, scheduled use of a connector against a system.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub id: String,
    pub name: Option<String>,
    /// System id.
    pub system: String,
    /// Plugin name.
    pub connector: String,
    /// The sha256 the connector's plugin file must have, when pinned.
    pub plugin_sha256: Option<String>,
    pub schedule: Schedule,
    /// `limits.deadline` is the check's `timeout`.
    pub limits: Limits,
    pub grants: Grants,
    pub config: CheckConfig,
    pub rules: Rules,
    /// Set for `connector = "push"`: the check is not run but reported to
    /// (see the `push` module); `schedule` then only paces staleness.
    pub push: Option<Box<PushCheck>>,
    /// As a system's, nearer than it.
    pub owner: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The connector name of checks that are reported to instead of run.
pub const PUSH_CONNECTOR: &str = "push";

/// What a push check (`[checks.push]`) accepts, from whom, and how often it
/// expects to hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCheck {
    /// Who may report; only their SHA-256 is kept.
    pub tokens: Vec<PushToken>,
    /// The assets reports may name; any asset when empty.
    pub assets: Vec<String>,
    /// The heartbeat deadline: no report within `every + grace` is silence
    /// worth a verdict.
    pub expect: Option<Heartbeat>,
    /// Heartbeats of single assets (`[checks.push.deadlines.ASSET]`): such
    /// an asset answers to its own, not the check's.
    pub deadlines: BTreeMap<String, Heartbeat>,
    /// Browser origins whose pages may report (CORS), e.g. with `sendBeacon`.
    pub allowed_origins: Vec<String>,
    /// The largest request body, compressed or not.
    pub max_body_bytes: u64,
    /// Requests per second each token may send (its bucket holds as many).
    pub rate_per_second: u32,
    /// Set for `connector = "openlineage"`: the check takes OpenLineage
    /// run events (`POST /api/v1/lineage`) of these jobs, not native reports.
    pub openlineage: Option<OpenLineageJobs>,
}

/// The connector name of checks fed by OpenLineage run events.
pub const OPENLINEAGE_CONNECTOR: &str = "openlineage";

/// The jobs whose OpenLineage events feed a check (`[checks.openlineage]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLineageJobs {
    /// Globs on `<job namespace>/<job name>` (`*` crosses `/` and `.`).
    pub jobs: Vec<String>,
    /// Bytes one unfinished run may hold (`max_run_held`).
    pub max_run_held: u64,
    /// Bytes all the check's unfinished runs may hold (`max_held`): its
    /// share of `server.openlineage_max_held`, so a producer filling it
    /// fails alone.
    pub max_held: u64,
    /// An unfinished run not heard of for this long is let go of
    /// (`run_idle`): a START whose run never ended.
    pub run_idle: Duration,
}

impl OpenLineageJobs {
    /// Whether the job `namespace`/`name` feeds this check.
    pub fn maps(&self, namespace: &str, name: &str) -> bool {
        let job = format!("{namespace}/{name}");
        self.jobs.iter().any(|g| crate::health::glob_match(g, &job))
    }
}

/// The default `max_body` of an OpenLineage check: Spark's events carry
/// whole logical plans (Marquez raised its own limit for them).
pub const DEFAULT_OPENLINEAGE_MAX_BODY: u64 = 5 << 20;

/// The default `max_run_held` of an OpenLineage check: a run's datasets'
/// names and assertions, thousands of them.
pub const DEFAULT_OPENLINEAGE_MAX_RUN_HELD: u64 = 1 << 20;
/// The largest default `max_held` of an OpenLineage check (less when the
/// checks' shares of `server.openlineage_max_held` are smaller).
pub const DEFAULT_OPENLINEAGE_MAX_HELD: u64 = 64 << 20;
/// The default `server.openlineage_max_held`.
pub const DEFAULT_OPENLINEAGE_MAX_HELD_TOTAL: u64 = 256 << 20;
/// The default `run_idle`: a day, longer than any nightly batch job runs.
pub const DEFAULT_OPENLINEAGE_RUN_IDLE: Duration = Duration::from_secs(24 * 3600);

/// The default `max_body` of a push check: a report of thousands of assets,
/// or a batch of ~100k ids.
pub const DEFAULT_PUSH_MAX_BODY: u64 = 4 << 20;
/// The default `rate` of a push token.
pub const DEFAULT_PUSH_RATE: u32 = 100;

/// A push token: scoped to its check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushToken {
    /// Who reports with it (a service, a page, a cron job).
    pub name: String,
    /// Lowercase hex SHA-256 of the token (`tributary push-token` makes both).
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<CronSchedule>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    /// As written.
    pub expr: String,
    pub cron: croner::Cron,
}

/// Where health changes are sent (`[alerts]`): channels, and the routes
/// that pick which changes go to which channels and how they are grouped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alerts {
    /// Joined with an entity's page to make the link a message carries.
    pub link_base: Option<String>,
    pub channels: Vec<AlertChannel>,
    pub routes: Vec<AlertRoute>,
    pub delivery: AlertDelivery,
}

impl Alerts {
    pub fn channel(&self, name: &str) -> Option<&AlertChannel> {
        self.channels.iter().find(|c| c.name == name)
    }
}

/// One destination of alert messages.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChannel {
    /// Unique among channels; routes name it.
    pub name: String,
    pub kind: ChannelKind,
    /// The least time between two requests to it: Slack takes about one
    /// message a second, PagerDuty 120 events a minute.
    pub min_interval: Duration,
}

/// What a channel speaks, with its settings. Secrets were read at load.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    /// A JSON POST signed as Standard Webhooks v1; two secrets while one is
    /// being rotated.
    Webhook { url: String, secrets: Vec<Secret> },
    /// A Slack incoming webhook (its URL is the secret).
    Slack { webhook_url: Secret },
    /// PagerDuty Events API v2.
    PagerDuty {
        routing_key: Secret,
        url: Option<String>,
    },
    /// SMTP.
    Email(EmailChannel),
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::PagerDuty { .. } => "pagerduty",
            ChannelKind::Email(_) => "email",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailChannel {
    pub host: String,
    pub port: Option<u16>,
    pub security: crate::alerts::email::Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra trusted roots (PEM), read from `ca_file` at load.
    pub ca_pem: Option<Vec<u8>>,
    /// One SMTP exchange, at most; the email module's default when `None`.
    pub timeout: Option<Duration>,
}

/// Which health changes go to which channels, and how they are grouped
/// (Alertmanager's `group_by`, `group_wait`, `group_interval`,
/// `repeat_interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRoute {
    /// Unique; the grouping state is kept under it.
    pub name: String,
    /// Globs on the entity's path; `None` matches anything. A tenant
    /// without `*` or `?` scopes the route to that tenant.
    pub tenant: Option<String>,
    pub flow: Option<String>,
    pub system: Option<String>,
    pub check: Option<String>,
    pub asset: Option<String>,
    /// Glob on the entity's inherited owner; an entity without one never
    /// matches a set glob.
    pub owner: Option<String>,
    /// Globs on the entity's inherited labels, all of which must match.
    pub labels: BTreeMap<String, String>,
    /// The entity kinds alerted (`tenant` ... `asset`); empty = all.
    pub entities: Vec<String>,
    /// The least bad status that fires.
    pub min_status: Status,
    pub channels: Vec<String>,
    pub send_resolved: bool,
    /// Sent again while still firing, this often.
    pub repeat_every: Option<Duration>,
    /// Path levels (`tenant`, `flow`, `system`, `check`) whose values make
    /// a group.
    pub group_by: Vec<String>,
    /// How long a new group waits for more changes before its first message.
    pub group_wait: Duration,
    /// How long a group waits after a message before sending its changes.
    pub group_interval: Duration,
}

/// How the dispatcher delivers (`[alerts.delivery]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDelivery {
    /// One request, at most.
    pub timeout: Duration,
    /// A message not delivered this long after it was made is given up.
    pub give_up_after: Duration,
    /// Waits between attempts (jittered); the last repeats.
    pub retry_schedule: Vec<Duration>,
    /// The dispatcher's safety net: it works when woken (a health event, its
    /// next due time, a reload) and looks at the tables at least this often
    /// for what another process or a crash left.
    pub poll_interval: Duration,
}

impl Default for AlertDelivery {
    fn default() -> Self {
        let h = |hours: u64| Duration::from_secs(hours * 3_600);
        Self {
            timeout: Duration::from_secs(15),
            give_up_after: h(72),
            // Standard Webhooks' schedule.
            retry_schedule: vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1_800),
                h(2),
                h(5),
                h(10),
                h(14),
                h(20),
                h(24),
            ],
            poll_interval: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// The fields that differ between `self` and `new` and only take effect
    /// after a restart (the rest can be swapped in while running).
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.server.listen != new.server.listen {
            fields.push("server.listen");
        }
        if self.storage.url != new.storage.url {
            fields.push("storage.url");
        }
        if self.api.limits != new.api.limits {
            fields.push("api.limits");
        }
        fields
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}
