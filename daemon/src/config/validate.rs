//! The layers of validation, each adding to one list of errors.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use toml::de::DeTable;

use super::error::{ConfigError, ConfigErrors, SHOWN_ERRORS};
use super::model::*;
use super::secrets::{
    CheckConfig, Secret, SecretRef, SecretSource, as_secret_ref, find_secret_refs, read_secret,
};
use super::source::{self, SourceMap, escape};
use super::units::{parse_jitter, parse_size};
use super::{Connectors, MAX_TIMEOUT, MIN_INTERVAL, Options, SCHEMA};
use crate::health::{
    Heartbeat, Recurring, Rules, Scope, Status, When, Window, parse_duration, parse_zone,
};
use crate::plugin::{Grants, HostGrant, Limits, missing_because};

mod slos;

static FILE_SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the config schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the config schema is a valid JSON Schema")
});

/// Longest message taken from a schema error (they quote the instance).
const MAX_MESSAGE: usize = 300;

struct Cx<'t> {
    text: &'t str,
    file: PathBuf,
    map: SourceMap,
    errors: Found,
}

/// The errors found so far. A broken file of thousands of checks has
/// hundreds of thousands of them: only the first [`SHOWN_ERRORS`] by place
/// are kept, the rest counted, so the memory held stays small and every
/// lookup stays logarithmic.
#[derive(Default)]
struct Found {
    /// The first errors by place (byte offset, then order found): a max-heap
    /// whose top is the one to drop when a better placed one comes.
    kept: BinaryHeap<Placed>,
    /// The pointer of every error, for [`Cx::has_error_under`].
    pointers: BTreeSet<String>,
    /// A hash of each (pointer, message), so a repeat is neither kept nor
    /// counted.
    seen: HashSet<u64>,
    /// Errors found, repeats aside.
    total: usize,
}

struct Placed {
    offset: usize,
    seq: usize,
    pointer: String,
    message: String,
}

impl PartialEq for Placed {
    fn eq(&self, other: &Self) -> bool {
        (self.offset, self.seq) == (other.offset, other.seq)
    }
}
impl Eq for Placed {}
impl PartialOrd for Placed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Placed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.offset, self.seq).cmp(&(other.offset, other.seq))
    }
}

impl Found {
    fn push(&mut self, offset: usize, pointer: &str, message: String) {
        let key = {
            let mut h = std::hash::DefaultHasher::new();
            (pointer, &message).hash(&mut h);
            h.finish()
        };
        if !self.seen.insert(key) {
            return;
        }
        if !self.pointers.contains(pointer) {
            self.pointers.insert(pointer.to_owned());
        }
        self.total += 1;
        let placed = Placed {
            offset,
            seq: self.total,
            pointer: pointer.to_owned(),
            message,
        };
        if self.kept.len() < SHOWN_ERRORS {
            self.kept.push(placed);
        } else if self.kept.peek().is_some_and(|last| placed < *last) {
            self.kept.pop();
            self.kept.push(placed);
        }
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether an error was found at `pointer` or below it.
    fn under(&self, pointer: &str) -> bool {
        if self.pointers.contains(pointer) {
            return true;
        }
        // Every pointer below `pointer` starts with `pointer/`, and those
        // sort together right from there.
        let below = format!("{pointer}/");
        self.pointers
            .range(below.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(&below))
    }
}

impl Cx<'_> {
    fn at_offset(&mut self, offset: usize, pointer: &str, message: String) {
        self.errors.push(offset, pointer, message);
    }

    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        let offset = self.map.offset_of(pointer);
        self.at_offset(offset, pointer, message.into());
    }

    fn has_error_under(&self, pointer: &str) -> bool {
        self.errors.under(pointer)
    }

    /// The errors found, in the order of the file, with their place.
    fn finish(self) -> ConfigErrors {
        let Cx {
            text,
            file,
            map,
            errors,
        } = self;
        let shown: Vec<ConfigError> = errors
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|p| {
                let (line, column) = map.line_col(text, p.offset);
                ConfigError {
                    file: file.clone(),
                    line,
                    column,
                    pointer: p.pointer,
                    message: p.message,
                }
            })
            .collect();
        ConfigErrors {
            more: errors.total - shown.len(),
            shown,
        }
    }

    /// Types `value`; a failure is reported unless the schema already spoke
    /// about that place.
    fn typed<T: DeserializeOwned>(&mut self, value: &Value, pointer: &str) -> Option<T> {
        match serde_json::from_value(value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                if !self.has_error_under(pointer) {
                    self.error(pointer, e.to_string());
                }
                None
            }
        }
    }

    fn duration(&mut self, value: &Value, pointer: &str) -> Option<Duration> {
        match value {
            Value::Number(n) => match n.as_u64() {
                Some(secs) => Some(Duration::from_secs(secs)),
                None => {
                    self.error_once(
                        pointer,
                        "a duration in seconds must be a whole number of 0 or more",
                    );
                    None
                }
            },
            Value::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error_once(pointer, e.to_string());
                    None
                }
            },
            _ => {
                self.error_once(
                    pointer,
                    "a duration must be a string such as \"30s\" or whole seconds",
                );
                None
            }
        }
    }

    fn size(&mut self, value: &Value, pointer: &str) -> Option<u64> {
        let parsed = match value {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| "a size in bytes must be a whole number of 0 or more".to_owned()),
            Value::String(s) => parse_size(s),
            _ => Err("a size must be a string such as \"64MiB\" or whole bytes".to_owned()),
        };
        parsed.map_err(|e| self.error_once(pointer, e)).ok()
    }

    fn count<T: TryFrom<u64>>(&mut self, value: &Value, pointer: &str) -> Option<T> {
        let n = value.as_u64().and_then(|n| T::try_from(n).ok());
        if n.is_none() {
            self.error_once(pointer, "must be a whole number in range");
        }
        n
    }

    /// Reports unless the place already has an error (the schema's, usually).
    fn error_once(&mut self, pointer: &str, message: impl Into<String>) {
        if !self.has_error_under(pointer) {
            self.error(pointer, message);
        }
    }
}

/// The folders a config file names, read once its TOML syntax is valid:
/// enough to find its plugins before it is validated against them.
pub(crate) fn folders(text: &str, origin: &Path) -> Result<super::Folders, ConfigErrors> {
    let (_, doc) = parse_toml(text, origin)?;
    let top = |key: &str, default: &str| {
        let value = doc.get_ref().get(key).map(|v| v.get_ref());
        PathBuf::from(match value {
            Some(toml::de::DeValue::String(s)) => s.as_ref(),
            // The full validation says what is wrong with it.
            _ => default,
        })
    };
    Ok(super::Folders {
        plugins_dir: top("plugins_dir", DEFAULT_PLUGINS_DIR),
        data_dir: top("data_dir", DEFAULT_DATA_DIR),
    })
}

/// Parses `text` as TOML and gives the context the later steps collect
/// their errors in; on a syntax error, every error the parser can recover
/// past, with its place.
fn parse_toml<'t>(
    text: &'t str,
    origin: &Path,
) -> Result<(Cx<'t>, toml::Spanned<DeTable<'t>>), ConfigErrors> {
    let mut cx = Cx {
        text,
        file: origin.to_owned(),
        map: SourceMap::new(text),
        errors: Found::default(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if syntax.is_empty() {
        return Ok((cx, doc));
    }
    for e in syntax {
        let offset = e.span().map_or(0, |s| s.start);
        cx.at_offset(offset, "", e.message().trim().to_owned());
    }
    Err(cx.finish())
}

const DEFAULT_PLUGINS_DIR: &str = "plugins";
const DEFAULT_DATA_DIR: &str = "data";

pub(crate) fn run(
    text: &str,
    origin: &Path,
    connectors: &Connectors,
    options: Options,
) -> Result<Config, ConfigErrors> {
    // a. TOML syntax: every error the parser can recover past, then stop.
    let (mut cx, doc) = parse_toml(text, origin)?;
    let json = source::to_json(doc.get_ref(), &mut cx.map);
    // The parsed document is as big as the JSON made of it (a tree of maps
    // per table): free it before the rest of the work.
    drop(doc);

    // b. The file's schema.
    schema_errors(&mut cx, &FILE_SCHEMA, &json, "", &[], "");

    // c. Each check's config against its connector's schema.
    plugin_configs(&mut cx, &json, connectors, options);

    // d. Meaning, and the typed config.
    let config = build(&mut cx, &json);

    match config {
        Some(config) if cx.errors.is_empty() => Ok(config),
        _ => {
            if cx.errors.is_empty() {
                cx.error("", "the config is invalid");
            }
            Err(cx.finish())
        }
    }
}

/// Reports `validator`'s errors for `instance`, whose pointers are relative to
/// `base` in the file. Errors at `secrets` (placeholders standing for secret
/// references) are dropped unless the schema wanted something other than a
/// string there.
fn schema_errors(
    cx: &mut Cx<'_>,
    validator: &jsonschema::Validator,
    instance: &Value,
    base: &str,
    secrets: &[String],
    connector: &str,
) {
    for err in validator.iter_errors(instance) {
        let rel = err.instance_path().as_str().to_owned();
        let keyword = err.kind().keyword().to_owned();
        let mut pointer = format!("{base}{rel}");
        let mut message = err.to_string();
        if secrets.contains(&rel) {
            if keyword != "type" {
                continue;
            }
            message = format!(
                "a secret reference gives a string, but connector {connector:?} expects another type here"
            );
        }
        use jsonschema::error::ValidationErrorKind as Kind;
        if let Kind::AdditionalProperties { unexpected }
        | Kind::UnevaluatedProperties { unexpected } = err.kind()
            && let [first, ..] = unexpected.as_slice()
        {
            pointer = format!("{pointer}/{}", escape(first));
            message = format!("unknown key {first:?}; {message}");
        }
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        cx.error(&pointer, message);
    }
}

fn plugin_configs(cx: &mut Cx<'_>, json: &Value, connectors: &Connectors, options: Options) {
    let Some(checks) = json.get("checks").and_then(Value::as_array) else {
        return;
    };
    let mut validators: HashMap<&str, Result<jsonschema::Validator, String>> = HashMap::new();
    for (i, check) in checks.iter().enumerate() {
        let Some(connector) = check.get("connector").and_then(Value::as_str) else {
            continue;
        };
        if connector == PUSH_CONNECTOR || connector == OPENLINEAGE_CONNECTOR {
            // Built in: no plugin, no plugin config.
            continue;
        }
        let at = format!("/checks/{i}");
        let Some(loaded) = connectors.loaded.get(connector) else {
            let failure = missing_because(&connectors.failed, connector);
            if options.keep_checks_of_failed_plugins && failure.is_some() {
                continue;
            }
            if options.require_known_connectors {
                let message = match failure {
                    Some(why) => format!("connector {connector:?} is not loaded: {why}"),
                    None if connectors.loaded.is_empty() => {
                        format!("unknown connector {connector:?}; no connectors are loaded")
                    }
                    None => {
                        let names: Vec<&str> =
                            connectors.loaded.keys().map(String::as_str).collect();
                        format!(
                            "unknown connector {connector:?}; known connectors: {}",
                            names.join(", ")
                        )
                    }
                };
                cx.error(&format!("{at}/connector"), message);
            }
            continue;
        };
        if let Some(pin) = str_at(check, "plugin_sha256")
            && let Some((file, sha256)) = &loaded.file
            && pin != sha256
        {
            cx.error(
                &format!("{at}/plugin_sha256"),
                format!(
                    "connector {connector:?} is loaded from {} whose sha256 is {sha256}, not the pinned {pin}; the check is refused so its secrets reach no other build (pin the new hash to accept the file)",
                    file.display()
                ),
            );
        }
        let schema = &loaded.schema;
        let validator = validators.entry(connector).or_insert_with(|| {
            jsonschema::options()
                .should_validate_formats(true)
                .build(schema)
                .map_err(|e| e.to_string())
        });
        let validator = match validator {
            Ok(v) => v,
            Err(e) => {
                let message = format!("connector {connector:?} has an invalid config schema: {e}");
                cx.error(&format!("{at}/connector"), message);
                continue;
            }
        };
        let mut config = check
            .get("config")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let mut refs = Vec::new();
        find_secret_refs(&config, "", &mut refs);
        for (p, _) in &refs {
            if let Some(slot) = config.pointer_mut(p) {
                *slot = Value::String("<secret>".into());
            }
        }
        let secrets: Vec<String> = refs.into_iter().map(|(p, _)| p).collect();
        schema_errors(
            cx,
            validator,
            &config,
            &format!("{at}/config"),
            &secrets,
            connector,
        );
    }
}

fn str_at<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// The ids of a section, in the order of the file, for lookups (a file may
/// hold tens of thousands).
#[derive(Default)]
struct Ids<'v> {
    order: Vec<&'v str>,
    first: HashMap<&'v str, usize>,
}

impl Ids<'_> {
    fn contains(&self, id: &str) -> bool {
        self.first.contains_key(id)
    }
}

/// How many ids an error lists when it names the known ones.
const KNOWN_LISTED: usize = 10;

/// Ids of `section`'s elements; duplicates reported.
fn unique_ids<'v>(cx: &mut Cx<'_>, json: &'v Value, section: &str, what: &str) -> Ids<'v> {
    unique_keys(cx, json, section, "id", what)
}

/// The values of `key` in `section`'s elements; duplicates reported.
fn unique_keys<'v>(
    cx: &mut Cx<'_>,
    json: &'v Value,
    section: &str,
    key: &str,
    what: &str,
) -> Ids<'v> {
    let mut ids = Ids::default();
    for (i, item) in elements(json, &format!("/{section}")) {
        let Some(id) = str_at(item, key) else {
            continue;
        };
        let pointer = format!("/{section}/{i}/{key}");
        if let Some(&j) = ids.first.get(id) {
            let (line, _) = cx
                .map
                .line_col(cx.text, cx.map.offset_of(&format!("/{section}/{j}/{key}")));
            cx.error(
                &pointer,
                format!("duplicate {what} {key} {id:?} (first defined at line {line})"),
            );
        } else {
            ids.first.insert(id, i);
            ids.order.push(id);
        }
    }
    ids
}

/// The elements of the array at JSON `pointer` (none when it is absent or not
/// an array), with their index.
fn elements<'v>(json: &'v Value, pointer: &str) -> impl Iterator<Item = (usize, &'v Value)> {
    json.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn build(cx: &mut Cx<'_>, json: &Value) -> Option<Config> {
    let tenant_ids = unique_ids(cx, json, "tenants", "tenant");
    let system_ids = unique_ids(cx, json, "systems", "system");
    unique_ids(cx, json, "flows", "flow");
    unique_ids(cx, json, "checks", "check");

    let server = server(cx, json);
    let api = api(cx, json, &tenant_ids);
    let storage = storage(cx, json);
    let scheduler = scheduler(cx, json);
    let plugins_dir = PathBuf::from(str_at(json, "plugins_dir").unwrap_or(DEFAULT_PLUGINS_DIR));
    let data_dir = PathBuf::from(str_at(json, "data_dir").unwrap_or(DEFAULT_DATA_DIR));

    let mut ok = true;
    let mut tenants = Vec::new();
    for (i, t) in elements(json, "/tenants") {
        match cx.typed::<Tenant>(t, &format!("/tenants/{i}")) {
            Some(t) => tenants.push(t),
            None => ok = false,
        }
    }
    let mut systems = Vec::new();
    for (i, s) in elements(json, "/systems") {
        match cx.typed::<System>(s, &format!("/systems/{i}")) {
            Some(s) => systems.push(s),
            None => ok = false,
        }
    }

    let mut flows = Vec::new();
    for (i, f) in elements(json, "/flows") {
        let at = format!("/flows/{i}");
        if let Some(tenant) = str_at(f, "tenant")
            && !tenant_ids.contains(tenant)
        {
            cx.error(
                &format!("{at}/tenant"),
                format!(
                    "unknown tenant {tenant:?}; {}",
                    known("tenants", &tenant_ids)
                ),
            );
        }
        let upstream = str_at(f, "upstream");
        if let Some(up) = upstream
            && !system_ids.contains(up)
        {
            cx.error(
                &format!("{at}/upstream"),
                format!("unknown system {up:?}; {}", known("systems", &system_ids)),
            );
        }
        let mut seen = Vec::new();
        for (j, down) in elements(f, "/downstream") {
            let Some(down) = down.as_str() else { continue };
            let p = format!("{at}/downstream/{j}");
            if !system_ids.contains(down) {
                cx.error(
                    &p,
                    format!("unknown system {down:?}; {}", known("systems", &system_ids)),
                );
            }
            if Some(down) == upstream {
                cx.error(
                    &p,
                    format!("system {down:?} is both upstream and downstream of this flow"),
                );
            }
            if seen.contains(&down) {
                cx.error(&p, format!("system {down:?} is listed twice as downstream"));
            }
            seen.push(down);
        }
        match cx.typed::<Flow>(f, &at) {
            Some(f) => flows.push(f),
            None => ok = false,
        }
    }

    let mut checks = Vec::new();
    for (i, c) in elements(json, "/checks") {
        match check(cx, c, i, &system_ids) {
            Some(c) => checks.push(c),
            None => ok = false,
        }
    }
    // A push token names its check (heartbeats carry only the token).
    let mut push_tokens: HashMap<&str, &str> = HashMap::new();
    for (i, c) in elements(json, "/checks") {
        let tokens = [PUSH_CONNECTOR, OPENLINEAGE_CONNECTOR]
            .into_iter()
            .flat_map(|table| {
                let list = c.get(table).and_then(|p| p.get("tokens"));
                let list = list.and_then(Value::as_array).map(Vec::as_slice);
                list.unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(move |(j, t)| (table, j, t))
            });
        for (table, j, t) in tokens {
            let (Some(sha), Some(id)) = (str_at(t, "sha256"), str_at(c, "id")) else {
                continue;
            };
            if let Some(other) = push_tokens.insert(sha, id) {
                cx.error(
                    &format!("/checks/{i}/{table}/tokens/{j}/sha256"),
                    format!("the same token is listed twice (also in check {other:?}); each push token belongs to one check"),
                );
                ok = false;
            }
        }
    }
    if let Some(server) = &server {
        ok &= openlineage_shares(cx, json, &mut checks, server.openlineage_max_held);
    }
    let alerts = alerts(cx, json, &tenant_ids);

    let maintenance = maintenance(cx, json);
    let slos = slos::slos(cx, json);

    Some(Config {
        file: cx.file.clone(),
        server: server?,
        api: api?,
        storage: storage?,
        plugins_dir,
        data_dir,
        scheduler: scheduler?,
        tenants,
        systems,
        flows,
        checks,
        alerts: alerts?,
        maintenance: maintenance?,
        slos: slos?,
    })
    .filter(|_| ok)
}

fn known(what: &str, ids: &Ids<'_>) -> String {
    let listed = &ids.order[..ids.order.len().min(KNOWN_LISTED)];
    match ids.order.len() - listed.len() {
        _ if listed.is_empty() => format!("no {what} are defined"),
        0 => format!("known {what}: {}", listed.join(", ")),
        more => format!("known {what}: {} and {more} more", listed.join(", ")),
    }
}

fn server(cx: &mut Cx<'_>, json: &Value) -> Option<Server> {
    let listen = match json.pointer("/server/listen") {
        None => "127.0.0.1:8080",
        Some(v) => v.as_str()?,
    };
    let openlineage_max_held = match json.pointer("/server/openlineage_max_held") {
        None => Some(DEFAULT_OPENLINEAGE_MAX_HELD_TOTAL),
        Some(v) => at_least_1kib(cx, v, "/server/openlineage_max_held"),
    };
    match SocketAddr::from_str(listen) {
        Ok(listen) => Some(Server {
            listen,
            openlineage_max_held: openlineage_max_held?,
        }),
        Err(_) => {
            cx.error_once(
                "/server/listen",
                format!("invalid listen address {listen:?}: write an IP address and a port, such as \"127.0.0.1:8080\""),
            );
            None
        }
    }
}

/// A size of at least 1KiB at `at`.
fn at_least_1kib(cx: &mut Cx<'_>, v: &Value, at: &str) -> Option<u64> {
    match cx.size(v, at) {
        Some(n) if n >= 1024 => Some(n),
        Some(_) => {
            cx.error_once(at, "must be at least 1KiB");
            None
        }
        None => None,
    }
}

/// Gives each OpenLineage check without `max_held` its share of
/// `server.openlineage_max_held` (at most 64MiB), and each without
/// `max_run_held` at most its `max_held`: the checks' budgets are reserved
/// shares of the total, so one check's producer filling its own never gets
/// another check's events refused. `false` after a located error.
fn openlineage_shares(cx: &mut Cx<'_>, json: &Value, checks: &mut [Check], total: u64) -> bool {
    let mut ok = true;
    // (place in the file, place in `checks`, explicit max_held)
    let mut found = Vec::new();
    for (i, c) in elements(json, "/checks") {
        let Some(id) = str_at(c, "id") else { continue };
        let Some(k) = checks.iter().position(|c| c.id == id) else {
            continue;
        };
        if checks[k]
            .push
            .as_ref()
            .is_some_and(|p| p.openlineage.is_some())
        {
            let explicit = c.pointer("/openlineage/max_held").is_some();
            found.push((i, k, explicit));
        }
    }
    fn jobs(checks: &mut [Check], k: usize) -> &mut OpenLineageJobs {
        let push = checks[k].push.as_mut().expect("an openlineage check");
        push.openlineage.as_mut().expect("an openlineage check")
    }
    let explicit: u64 = (found.iter())
        .filter(|(_, _, e)| *e)
        .map(|(_, k, _)| {
            checks[*k]
                .push
                .as_ref()
                .and_then(|p| p.openlineage.as_ref())
        })
        .map(|j| j.map_or(0, |j| j.max_held))
        .sum();
    let defaulted = found.iter().filter(|(_, _, e)| !*e).count() as u64;
    let total_at = "/server/openlineage_max_held";
    let share = total.saturating_sub(explicit) / defaulted.max(1);
    if explicit > total || (defaulted > 0 && share < 1024) {
        cx.error_once(
            total_at,
            format!(
                "the OpenLineage checks' max_held add up to {explicit} bytes and {defaulted} more checks need a share, over this total of {total} bytes: raise it or lower theirs (each check's unfinished runs are held within its own share)"
            ),
        );
        return false;
    }
    for (i, k, explicit) in found {
        if !explicit {
            jobs(checks, k).max_held = share.min(DEFAULT_OPENLINEAGE_MAX_HELD);
        }
        let j = jobs(checks, k);
        let run_at = format!("/checks/{i}/openlineage/max_run_held");
        if json.pointer(&run_at).is_none() {
            j.max_run_held = j.max_run_held.min(j.max_held);
        } else if j.max_run_held > j.max_held {
            let message = format!(
                "{} bytes is over the check's max_held of {} bytes: one run cannot hold more than all of them",
                j.max_run_held, j.max_held
            );
            cx.error_once(&run_at, message);
            ok = false;
        }
    }
    ok
}

fn api(cx: &mut Cx<'_>, json: &Value, tenant_ids: &Ids<'_>) -> Option<Api> {
    let mut api = Api::default();
    let mut ok = true;
    let mut names: Vec<&str> = Vec::new();
    for (i, t) in elements(json, "/api/tokens") {
        let at = format!("/api/tokens/{i}");
        let Some(token) = cx.typed::<ApiToken>(t, &at) else {
            ok = false;
            continue;
        };
        if token.sha256.len() != 64
            || !token
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            cx.error(
                &format!("{at}/sha256"),
                "must be the 64 lowercase hex digits of the token's SHA-256 (`tributary token` prints it)",
            );
            ok = false;
        }
        if let Some(tenant) = &token.tenant
            && !tenant_ids.contains(tenant)
        {
            cx.error(
                &format!("{at}/tenant"),
                format!(
                    "unknown tenant {tenant:?}; {}",
                    known("tenants", tenant_ids)
                ),
            );
            ok = false;
        }
        if names.contains(&token.name.as_str()) {
            cx.error(
                &format!("{at}/name"),
                format!("token name {:?} is used twice", token.name),
            );
            ok = false;
        }
        if api
            .tokens
            .iter()
            .any(|o: &ApiToken| o.sha256 == token.sha256)
        {
            cx.error(&format!("{at}/sha256"), "the same token is listed twice");
            ok = false;
        }
        names.push(t.get("name").and_then(Value::as_str).unwrap_or_default());
        api.tokens.push(token);
    }
    let limits = &mut api.limits;
    for (key, slot) in [
        ("max_depth", &mut limits.max_depth),
        ("max_complexity", &mut limits.max_complexity),
        ("max_aliases", &mut limits.max_aliases),
    ] {
        let at = format!("/api/limits/{key}");
        if let Some(v) = json.pointer(&at) {
            match cx.count::<usize>(v, &at) {
                Some(n) if n > 0 => *slot = n,
                Some(_) => {
                    cx.error_once(&at, "must be at least 1");
                    ok = false;
                }
                None => ok = false,
            }
        }
    }
    if let Some(v) = json.pointer("/api/limits/max_body") {
        match cx.size(v, "/api/limits/max_body") {
            Some(n) => limits.max_body_bytes = n,
            None => ok = false,
        }
    }
    if let Some(v) = json.pointer("/api/limits/max_answer") {
        match cx.size(v, "/api/limits/max_answer") {
            Some(n) => limits.max_answer_bytes = n,
            None => ok = false,
        }
    }
    if let Some(v) = json.pointer("/api/introspection") {
        match cx.typed(v, "/api/introspection") {
            Some(i) => api.introspection = i,
            None => ok = false,
        }
    }
    if let Some(v) = json.pointer("/api/persisted_queries") {
        match persisted_queries(cx, v) {
            Some(p) => api.persisted_queries = p,
            None => ok = false,
        }
    }
    const ORIGINS: &str = "/api/cors/allowed_origins";
    match origins(cx, json.pointer(ORIGINS), ORIGINS) {
        Some(o) => api.allowed_origins = o,
        None => ok = false,
    }
    match websocket(cx, json) {
        Some(ws) => api.websocket = ws,
        None => ok = false,
    }
    ok.then_some(api)
}

/// `api.persisted_queries`: `"off"`, or a table with an optional `max_bytes`.
fn persisted_queries(cx: &mut Cx<'_>, value: &Value) -> Option<PersistedQueries> {
    const AT: &str = "/api/persisted_queries";
    if value.as_str() == Some("off") {
        return Some(PersistedQueries::Off);
    }
    if !value.is_object() {
        cx.error_once(
            AT,
            "must be \"off\" or a table such as { max_bytes = \"16MiB\" }",
        );
        return None;
    }
    let Some(v) = value.get("max_bytes") else {
        return Some(PersistedQueries::default());
    };
    match cx.size(v, &format!("{AT}/max_bytes"))? {
        0 => {
            cx.error_once(
                &format!("{AT}/max_bytes"),
                "must be at least 1 byte; to turn persisted queries off, write persisted_queries = \"off\"",
            );
            None
        }
        max_bytes => Some(PersistedQueries::On { max_bytes }),
    }
}

/// `[api.websocket]`: every setting at least 1, and an idle timeout longer
/// than the ping interval (else a client that answers every ping would still
/// be closed as idle).
fn websocket(cx: &mut Cx<'_>, json: &Value) -> Option<ApiWebSocket> {
    let mut ws = ApiWebSocket::default();
    let mut ok = true;
    for (key, slot) in [
        ("ping_interval", &mut ws.ping_interval),
        ("idle_timeout", &mut ws.idle_timeout),
        ("init_timeout", &mut ws.init_timeout),
    ] {
        let at = format!("/api/websocket/{key}");
        if let Some(v) = json.pointer(&at) {
            match cx.duration(v, &at) {
                Some(d) if !d.is_zero() => *slot = d,
                Some(_) => {
                    cx.error_once(&at, "must be longer than 0s");
                    ok = false;
                }
                None => ok = false,
            }
        }
    }
    let at = "/api/websocket/max_subscriptions";
    if let Some(v) = json.pointer(at) {
        match cx.count::<usize>(v, at) {
            Some(n) if n > 0 => ws.max_subscriptions = n,
            Some(_) => {
                cx.error_once(at, "must be at least 1");
                ok = false;
            }
            None => ok = false,
        }
    }
    if ok && ws.idle_timeout <= ws.ping_interval {
        // Said where the file sets the value that breaks it: the idle
        // timeout if written, else the ping interval against its default.
        let (at, message) = if json.pointer("/api/websocket/idle_timeout").is_some() {
            (
                "/api/websocket/idle_timeout",
                format!(
                    "must be longer than ping_interval ({:?}), or a client answering every \
                     ping would be closed as idle",
                    ws.ping_interval
                ),
            )
        } else {
            (
                "/api/websocket/ping_interval",
                format!(
                    "must be shorter than idle_timeout ({:?}, the default), or a client \
                     answering every ping would be closed as idle",
                    ws.idle_timeout
                ),
            )
        };
        cx.error(at, message);
        ok = false;
    }
    ok.then_some(ws)
}

/// The browser origins of `list` (at `pointer` in the file), each checked
/// by [`is_origin`].
fn origins(cx: &mut Cx<'_>, list: Option<&Value>, pointer: &str) -> Option<Vec<String>> {
    let mut ok = true;
    let mut out = Vec::new();
    let listed = list.and_then(Value::as_array).into_iter().flatten();
    for (i, origin) in listed.enumerate() {
        match origin.as_str().filter(|o| is_origin(o)) {
            Some(o) => out.push(o.to_owned()),
            None => {
                cx.error_once(
                    &format!("{pointer}/{i}"),
                    "must be an origin as a browser sends it: http(s)://host[:port], \
                     without path or trailing slash, e.g. \"https://app.example.com\"",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Whether `o` is an origin as browsers send it in `Origin`: the exact
/// string is what CORS and the WebSocket check compare.
fn is_origin(o: &str) -> bool {
    let Some((scheme, host)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

fn storage(cx: &mut Cx<'_>, json: &Value) -> Option<Storage> {
    let url = match json.pointer("/storage/url") {
        None => "sqlite://data/tributary.db",
        Some(v) => v.as_str()?,
    };
    let mut ok = true;
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| url.starts_with(p))
    {
        cx.error_once(
            "/storage/url",
            "the database URL must start with sqlite: or postgres://",
        );
        ok = false;
    }
    let mut retention = Retention::default();
    if let Some(v) = json.pointer("/storage/retention/raw") {
        match cx.duration(v, "/storage/retention/raw") {
            Some(d) => retention.raw = d,
            None => ok = false,
        }
    }
    if let Some(v) = json.pointer("/storage/retention/rollups") {
        match cx.duration(v, "/storage/retention/rollups") {
            Some(d) => retention.rollups = d,
            None => ok = false,
        }
    }
    if ok && retention.rollups < retention.raw {
        cx.error(
            "/storage/retention/rollups",
            "rollups are kept for less time than raw data; keep them at least as long",
        );
        ok = false;
    }
    let mut write_buffer = super::model::DEFAULT_WRITE_BUFFER;
    if let Some(v) = json.pointer("/storage/write_buffer") {
        match cx.count::<usize>(v, "/storage/write_buffer") {
            Some(0) => {
                cx.error_once("/storage/write_buffer", "must be at least 1");
                ok = false;
            }
            Some(n) => write_buffer = n,
            None => ok = false,
        }
    }
    ok.then(|| Storage {
        url: url.to_owned(),
        retention,
        write_buffer,
    })
}

fn scheduler(cx: &mut Cx<'_>, json: &Value) -> Option<Scheduler> {
    let mut s = Scheduler::default();
    let mut ok = true;
    if let Some(v) = json.pointer("/scheduler/max_concurrent_runs") {
        match cx.count::<u32>(v, "/scheduler/max_concurrent_runs") {
            Some(0) => {
                cx.error_once("/scheduler/max_concurrent_runs", "must be at least 1");
                ok = false;
            }
            Some(n) => s.max_concurrent_runs = n,
            None => ok = false,
        }
    }
    if let Some(caps) = json
        .pointer("/scheduler/per_connector")
        .and_then(Value::as_object)
    {
        for (name, v) in caps {
            let p = format!("/scheduler/per_connector/{}", escape(name));
            match cx.count::<u32>(v, &p) {
                Some(0) => {
                    cx.error_once(&p, "must be at least 1");
                    ok = false;
                }
                Some(n) => {
                    s.per_connector.insert(name.clone(), n);
                }
                None => ok = false,
            }
        }
    }
    if let Some(v) = json.pointer("/scheduler/jitter") {
        match v.as_str().map(parse_jitter) {
            Some(Ok(j)) => s.jitter = j,
            Some(Err(e)) => {
                cx.error_once("/scheduler/jitter", e);
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(s)
}

fn check(cx: &mut Cx<'_>, c: &Value, i: usize, system_ids: &Ids<'_>) -> Option<Check> {
    let at = format!("/checks/{i}");
    let mut ok = true;
    let id = str_at(c, "id");
    let system = str_at(c, "system");
    let connector = str_at(c, "connector");
    if let Some(system) = system
        && !system_ids.contains(system)
    {
        cx.error(
            &format!("{at}/system"),
            format!(
                "unknown system {system:?}; {}",
                known("systems", system_ids)
            ),
        );
        ok = false;
    }

    let push = reported(cx, c, connector, &at);
    let schedule = match &push {
        // Not run: its schedule only paces the API's view; silence is judged
        // by its heartbeat.
        Some(Some(p)) if c.get("schedule").is_none() => Some(Schedule::Every(
            p.expect.map_or(Duration::from_secs(86_400), |h| h.every),
        )),
        _ => schedule(cx, c.get("schedule"), &format!("{at}/schedule")),
    };

    let mut limits = Limits::default();
    if let Some(v) = c.get("timeout") {
        let p = format!("{at}/timeout");
        match cx.duration(v, &p) {
            Some(d) if d.is_zero() => {
                cx.error_once(&p, "the timeout must be more than 0");
                ok = false;
            }
            Some(d) if d > MAX_TIMEOUT => {
                cx.error_once(&p, "the timeout is more than the maximum of 1h");
                ok = false;
            }
            Some(d) => limits.deadline = d,
            None => ok = false,
        }
    }
    if let Some(l) = c.get("limits").and_then(Value::as_object) {
        for (key, v) in l {
            let p = format!("{at}/limits/{}", escape(key));
            let set = match key.as_str() {
                "memory" => cx
                    .size(v, &p)
                    .and_then(|n| usize::try_from(n).ok())
                    .map(|n| limits.memory_bytes = n),
                "report" => cx
                    .size(v, &p)
                    .and_then(|n| usize::try_from(n).ok())
                    .map(|n| limits.report_bytes = n),
                "http_response" => cx.size(v, &p).map(|n| limits.http_response_bytes = n),
                "http_requests" => cx.count(v, &p).map(|n| limits.http_requests = n),
                "http_request" => cx.size(v, &p).map(|n| limits.http_request_bytes = n),
                "http_headers" => cx
                    .size(v, &p)
                    .and_then(|n| usize::try_from(n).ok())
                    .map(|n| limits.http_headers = n),
                "http_connections" => cx.count(v, &p).map(|n| limits.http_connections = n),
                "handles" => cx.count(v, &p).map(|n| limits.handles = n),
                "ids" => cx.count(v, &p).map(|n| limits.ids = n),
                "id_bytes" => cx.size(v, &p).map(|n| limits.id_bytes = n),
                "id_length" => cx
                    .size(v, &p)
                    .and_then(|n| usize::try_from(n).ok())
                    .map(|n| limits.id_length = n),
                "log_lines" => cx.count(v, &p).map(|n| limits.log_lines = n),
                "log_bytes" => cx.size(v, &p).map(|n| limits.log_bytes = n),
                _ => None, // the schema reports unknown keys
            };
            ok &= set.is_some();
        }
        if limits.memory_bytes < 1 << 20 {
            cx.error_once(&format!("{at}/limits/memory"), "must be at least 1MiB");
            ok = false;
        }
    }

    let mut grants = Grants::default();
    for (j, host) in elements(c, "/grants/allowed_hosts") {
        let Some(host) = host.as_str() else { continue };
        match HostGrant::from_str(host) {
            Ok(g) => grants.allowed_hosts.push(g),
            Err(e) => {
                cx.error_once(&format!("{at}/grants/allowed_hosts/{j}"), e.to_string());
                ok = false;
            }
        }
    }
    if let Some(dir) = c.pointer("/grants/read_dir").and_then(Value::as_str) {
        if dir.is_empty() {
            cx.error_once(&format!("{at}/grants/read_dir"), "the directory is empty");
            ok = false;
        }
        grants.read_dir = Some(PathBuf::from(dir));
    }

    let rules_at = format!("{at}/rules");
    let rules = match c.get("rules") {
        None => Some(Rules::default()),
        Some(v) => cx.typed::<Rules>(v, &rules_at),
    };
    if let Some(rules) = &rules {
        for problem in rules.validate() {
            cx.error(&rules_at, format!("rules.{problem}"));
        }
    }

    let config_value = c
        .get("config")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut refs = Vec::new();
    find_secret_refs(&config_value, "", &mut refs);
    let secrets = refs
        .into_iter()
        .map(|(rel, source)| {
            let pointer = format!("{at}/config{rel}");
            let (line, column) = cx.map.line_col(cx.text, cx.map.offset_of(&pointer));
            SecretRef {
                at: rel,
                pointer,
                line,
                column,
                source,
            }
        })
        .collect();

    let check = Check {
        id: id?.to_owned(),
        name: str_at(c, "name").map(str::to_owned),
        system: system?.to_owned(),
        connector: connector?.to_owned(),
        plugin_sha256: str_at(c, "plugin_sha256").map(str::to_owned),
        schedule: schedule?,
        limits,
        grants,
        config: CheckConfig {
            value: config_value,
            secrets,
            file: cx.file.clone(),
        },
        rules: rules?,
        push: push?,
        owner: str_at(c, "owner").map(str::to_owned),
        labels: labels(cx, c, &at)?,
    };
    ok.then_some(check)
}

/// The `labels` table of the entity (or route) `v` at `at`; empty when
/// absent. The schema has already located bad keys and non-string values.
fn labels(cx: &mut Cx<'_>, v: &Value, at: &str) -> Option<BTreeMap<String, String>> {
    match v.get("labels") {
        Some(l) => cx.typed(l, &format!("{at}/labels")),
        None => Some(BTreeMap::new()),
    }
}

/// The table of a check that is reported to instead of run: `[checks.push]`
/// (`connector = "push"`) or `[checks.openlineage]` (`connector =
/// "openlineage"`). `Some(None)` for a check that is run; `None` after a
/// located error.
fn reported(
    cx: &mut Cx<'_>,
    c: &Value,
    connector: Option<&str>,
    at: &str,
) -> Option<Option<Box<PushCheck>>> {
    let kind = [PUSH_CONNECTOR, OPENLINEAGE_CONNECTOR]
        .into_iter()
        .find(|k| connector == Some(*k));
    let mut ok = true;
    for table in [PUSH_CONNECTOR, OPENLINEAGE_CONNECTOR] {
        if c.get(table).is_some() && kind != Some(table) {
            cx.error_once(
                &format!("{at}/{table}"),
                format!("only checks with connector = {table:?} take a [checks.{table}] table"),
            );
            ok = false;
        }
    }
    let Some(kind) = kind else {
        return ok.then_some(None);
    };
    let Some(p) = c.get(kind) else {
        cx.error_once(
            at,
            if kind == PUSH_CONNECTOR {
                "a push check needs a [checks.push] table with at least one token (`tributary push-token` makes one)"
            } else {
                "an openlineage check needs a [checks.openlineage] table with its jobs and at least one token (`tributary push-token` makes one)"
            },
        );
        return None;
    };
    let table_at = format!("{at}/{kind}");
    let mut push = push_check(cx, p, &table_at);
    if kind == OPENLINEAGE_CONNECTOR {
        let mut jobs = Vec::new();
        for (i, j) in elements(p, "/jobs") {
            match j.as_str().filter(|j| !j.is_empty()) {
                Some(j) => jobs.push(j.to_owned()),
                None => {
                    cx.error_once(
                        &format!("{table_at}/jobs/{i}"),
                        "must be a non-empty glob on \"<job namespace>/<job name>\"",
                    );
                    ok = false;
                }
            }
        }
        if jobs.is_empty() && !cx.has_error_under(&format!("{table_at}/jobs")) {
            cx.error(
                &format!("{table_at}/jobs"),
                "list the jobs whose events feed this check, as globs on \"<job namespace>/<job name>\" (e.g. \"dbt-prod/*\")",
            );
            ok = false;
        }
        let mut held = OpenLineageJobs {
            jobs,
            max_run_held: DEFAULT_OPENLINEAGE_MAX_RUN_HELD,
            // Set to the check's share once every check is read.
            max_held: DEFAULT_OPENLINEAGE_MAX_HELD,
            run_idle: DEFAULT_OPENLINEAGE_RUN_IDLE,
        };
        for (key, into) in [
            ("max_run_held", &mut held.max_run_held),
            ("max_held", &mut held.max_held),
        ] {
            if let Some(v) = p.get(key) {
                match at_least_1kib(cx, v, &format!("{table_at}/{key}")) {
                    Some(n) => *into = n,
                    None => ok = false,
                }
            }
        }
        if let Some(v) = p.get("run_idle") {
            let i_at = format!("{table_at}/run_idle");
            match cx.duration(v, &i_at) {
                Some(d) if d >= MIN_INTERVAL => held.run_idle = d,
                Some(_) => {
                    cx.error_once(&i_at, "must be at least 1s");
                    ok = false;
                }
                None => ok = false,
            }
        }
        if let Some(p) = &mut push {
            if c.pointer(&format!("/{kind}/max_body")).is_none() {
                p.max_body_bytes = DEFAULT_OPENLINEAGE_MAX_BODY;
            }
            p.openlineage = Some(held);
        }
    }
    let push = push?;
    ok.then(|| Some(Box::new(push)))
}

/// `[checks.push]` of a push check at `at` (or the same keys of
/// `[checks.openlineage]`).
fn push_check(cx: &mut Cx<'_>, p: &Value, at: &str) -> Option<PushCheck> {
    let mut ok = true;
    let mut push = PushCheck {
        tokens: Vec::new(),
        assets: Vec::new(),
        expect: None,
        deadlines: BTreeMap::new(),
        allowed_origins: Vec::new(),
        max_body_bytes: DEFAULT_PUSH_MAX_BODY,
        rate_per_second: DEFAULT_PUSH_RATE,
        openlineage: None,
    };
    for (i, t) in elements(p, "/tokens") {
        let t_at = format!("{at}/tokens/{i}");
        let Some(token) = cx.typed::<PushToken>(t, &t_at) else {
            ok = false;
            continue;
        };
        if !is_sha256_hex(&token.sha256) {
            cx.error_once(
                &format!("{t_at}/sha256"),
                "must be the 64 lowercase hex digits of the token's SHA-256 (`tributary push-token` prints it)",
            );
            ok = false;
        }
        push.tokens.push(token);
    }
    if push.tokens.is_empty() && !cx.has_error_under(at) {
        cx.error(
            &format!("{at}/tokens"),
            "a push check needs at least one token (`tributary push-token` makes one)",
        );
        ok = false;
    }
    for (i, a) in elements(p, "/assets") {
        match a.as_str().filter(|a| !a.is_empty()) {
            Some(a) => push.assets.push(a.to_owned()),
            None => {
                cx.error_once(&format!("{at}/assets/{i}"), "must be a non-empty asset key");
                ok = false;
            }
        }
    }
    match heartbeat(cx, p, at) {
        Ok(expect) => push.expect = expect,
        Err(()) => ok = false,
    }
    if let Some(deadlines) = p.get("deadlines").and_then(Value::as_object) {
        for (asset, d) in deadlines {
            let d_at = format!("{at}/deadlines/{}", escape(asset));
            if !push.assets.is_empty() && !push.assets.contains(asset) {
                cx.error_once(
                    &d_at,
                    format!("asset {asset:?} is not one of this check's push.assets"),
                );
                ok = false;
            }
            match heartbeat(cx, d, &d_at) {
                Ok(Some(h)) => {
                    push.deadlines.insert(asset.clone(), h);
                }
                Ok(None) => {
                    cx.error_once(
                        &format!("{d_at}/expect_every"),
                        "an asset's deadline needs expect_every",
                    );
                    ok = false;
                }
                Err(()) => ok = false,
            }
        }
    }
    match origins(
        cx,
        p.get("allowed_origins"),
        &format!("{at}/allowed_origins"),
    ) {
        Some(o) => push.allowed_origins = o,
        None => ok = false,
    }
    if let Some(v) = p.get("max_body") {
        match at_least_1kib(cx, v, &format!("{at}/max_body")) {
            Some(n) => push.max_body_bytes = n,
            None => ok = false,
        }
    }
    if let Some(v) = p.get("rate") {
        let r_at = format!("{at}/rate");
        match cx.count::<u32>(v, &r_at) {
            Some(n) if n > 0 => push.rate_per_second = n,
            Some(_) => {
                cx.error_once(&r_at, "must be at least 1 request per second");
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(push)
}

/// The heartbeat `expect_every` (+ `grace`) of the table `v` at `at`, if it
/// has one: a push check's, or one asset's (`deadlines.ASSET`).
fn heartbeat(cx: &mut Cx<'_>, v: &Value, at: &str) -> Result<Option<Heartbeat>, ()> {
    let every = v
        .get("expect_every")
        .map(|e| cx.duration(e, &format!("{at}/expect_every")));
    let grace = v
        .get("grace")
        .map(|g| cx.duration(g, &format!("{at}/grace")));
    match (every, grace) {
        (Some(Some(every)), grace) if every >= MIN_INTERVAL => match grace {
            Some(None) => Err(()),
            Some(Some(grace)) => Ok(Some(Heartbeat { every, grace })),
            None => Ok(Some(Heartbeat {
                every,
                grace: Duration::ZERO,
            })),
        },
        (Some(Some(_)), _) => {
            cx.error_once(&format!("{at}/expect_every"), "must be at least 1s");
            Err(())
        }
        (Some(None), _) => Err(()),
        (None, Some(_)) => {
            cx.error_once(&format!("{at}/grace"), "grace needs expect_every");
            Err(())
        }
        (None, None) => Ok(None),
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `[[maintenance]]` windows: a name unique among them, a reason, a
/// one-off span (`start` < `end`, RFC 3339) or a recurring one (`cron`,
/// `duration`, `timezone`), and at least one scope glob.
fn maintenance(cx: &mut Cx<'_>, json: &Value) -> Option<Vec<Window>> {
    unique_keys(cx, json, "maintenance", "name", "maintenance window");
    let mut windows = Vec::new();
    let mut ok = true;
    for (i, w) in elements(json, "/maintenance") {
        match window(cx, w, &format!("/maintenance/{i}")) {
            Some(w) => windows.push(w),
            None => ok = false,
        }
    }
    ok.then_some(windows)
}

/// The place globs an entry gives (a maintenance window, an SLO).
fn scope(entry: &Value) -> Scope {
    let text = |key: &str| str_at(entry, key).map(str::to_owned);
    Scope {
        tenant: text("tenant"),
        flow: text("flow"),
        system: text("system"),
        check: text("check"),
        asset: text("asset"),
    }
}

fn window(cx: &mut Cx<'_>, w: &Value, at: &str) -> Option<Window> {
    let text = |key: &str| str_at(w, key).map(str::to_owned);
    let scope = scope(w);
    if scope == Scope::default() {
        cx.error_once(
            at,
            "name at least one of tenant, flow, system, check or asset (globs; \"*\" is all)",
        );
    }
    let once = ["start", "end"].map(|k| w.get(k));
    let recurring = ["cron", "duration", "timezone"].map(|k| w.get(k));
    let when = match (once, recurring) {
        ([Some(start), Some(end)], [None, None, None]) => {
            let start = rfc3339(cx, start, &format!("{at}/start"));
            let end = rfc3339(cx, end, &format!("{at}/end"));
            let (start, end) = (start?, end?);
            if end <= start {
                cx.error_once(&format!("{at}/end"), "the end must be after the start");
                return None;
            }
            When::Once { start, end }
        }
        ([None, None], [Some(cron), Some(duration), zone]) => {
            let p = format!("{at}/cron");
            let expr = cron.as_str()?;
            let cron = croner::Cron::from_str(expr)
                .map_err(|e| {
                    cx.error_once(
                        &p,
                        format!("invalid cron expression {expr:?}: {e} (write 5 fields, or 6 with seconds first)"),
                    )
                })
                .ok();
            let duration = cx.duration(duration, &format!("{at}/duration"));
            if duration.is_some_and(|d| d.is_zero()) {
                cx.error_once(
                    &format!("{at}/duration"),
                    "a window must last longer than 0s",
                );
            }
            let zone = match zone.map(|z| (z, z.as_str().and_then(parse_zone))) {
                None => Some(chrono_tz::UTC),
                Some((_, Some(zone))) => Some(zone),
                Some((z, None)) => {
                    cx.error_once(
                        &format!("{at}/timezone"),
                        format!("unknown time zone {z}: write an IANA name such as \"Europe/Berlin\" or \"UTC\""),
                    );
                    None
                }
            };
            When::Recurring(Box::new(Recurring {
                expr: expr.to_owned(),
                cron: cron?,
                zone: zone?,
                duration: duration.filter(|d| !d.is_zero())?,
            }))
        }
        _ => {
            cx.error_once(
                at,
                "give `start` and `end` (a one-off window) or `cron` and `duration` (a recurring one, with an optional `timezone`)",
            );
            return None;
        }
    };
    Some(Window {
        name: text("name")?,
        reason: text("reason")?,
        scope,
        when,
    })
}

/// An RFC 3339 time (`2026-03-01T22:00:00Z`, or with an offset).
fn rfc3339(cx: &mut Cx<'_>, value: &Value, at: &str) -> Option<std::time::SystemTime> {
    let text = value.as_str()?;
    match chrono::DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => Some(t.into()),
        Err(e) => {
            cx.error_once(
                at,
                format!(
                    "{text:?} is not an RFC 3339 time ({e}); write e.g. \"2026-03-01T22:00:00Z\""
                ),
            );
            None
        }
    }
}

fn schedule(cx: &mut Cx<'_>, value: Option<&Value>, at: &str) -> Option<Schedule> {
    let object = value?.as_object()?;
    match (object.get("every"), object.get("cron")) {
        (Some(every), None) => {
            let p = format!("{at}/every");
            let d = cx.duration(every, &p)?;
            if d < MIN_INTERVAL {
                cx.error_once(&p, "the interval must be at least 1s");
                return None;
            }
            Some(Schedule::Every(d))
        }
        (None, Some(cron)) => {
            let p = format!("{at}/cron");
            let expr = cron.as_str()?;
            match croner::Cron::from_str(expr) {
                Ok(cron) => Some(Schedule::Cron(Box::new(CronSchedule {
                    expr: expr.to_owned(),
                    cron,
                }))),
                Err(e) => {
                    cx.error_once(
                        &p,
                        format!("invalid cron expression {expr:?}: {e} (write 5 fields, or 6 with seconds first)"),
                    );
                    None
                }
            }
        }
        _ => {
            cx.error_once(at, "give exactly one of `every` or `cron`");
            None
        }
    }
}

/// `[alerts]`: channels with their secrets read now, and routes naming
/// channels that exist.
fn alerts(cx: &mut Cx<'_>, json: &Value, tenant_ids: &Ids<'_>) -> Option<Alerts> {
    let mut ok = true;
    let link_base = str_at_pointer(json, "/alerts/link_base").map(str::to_owned);
    if let Some(link) = &link_base
        && crate::alerts::wording::web_link(link).is_none()
    {
        cx.error_once(
            "/alerts/link_base",
            "must be an absolute http:// or https:// URL",
        );
        ok = false;
    }
    let mut channels: Vec<AlertChannel> = Vec::new();
    for (i, c) in elements(json, "/alerts/channels") {
        let at = format!("/alerts/channels/{i}");
        match alert_channel(cx, c, &at) {
            Some(channel) => {
                if channels.iter().any(|o| o.name == channel.name) {
                    cx.error(
                        &format!("{at}/name"),
                        format!("channel name {:?} is used twice", channel.name),
                    );
                    ok = false;
                }
                channels.push(channel);
            }
            None => ok = false,
        }
    }
    let mut routes: Vec<AlertRoute> = Vec::new();
    for (i, r) in elements(json, "/alerts/routes") {
        let at = format!("/alerts/routes/{i}");
        match alert_route(cx, r, &at, &channels, tenant_ids) {
            Some(route) => {
                if routes.iter().any(|o| o.name == route.name) {
                    cx.error(
                        &format!("{at}/name"),
                        format!("route name {:?} is used twice", route.name),
                    );
                    ok = false;
                }
                routes.push(route);
            }
            None => ok = false,
        }
    }
    let mut delivery = AlertDelivery::default();
    for (key, slot) in [
        ("timeout", &mut delivery.timeout),
        ("give_up_after", &mut delivery.give_up_after),
        ("poll_interval", &mut delivery.poll_interval),
    ] {
        let at = format!("/alerts/delivery/{key}");
        if let Some(v) = json.pointer(&at) {
            match cx.duration(v, &at) {
                Some(d) if !d.is_zero() => *slot = d,
                Some(_) => {
                    cx.error_once(&at, "must be more than zero");
                    ok = false;
                }
                None => ok = false,
            }
        }
    }
    if let Some(list) = json.pointer("/alerts/delivery/retry_schedule") {
        let mut schedule = Vec::new();
        for (j, v) in elements(list, "") {
            let at = format!("/alerts/delivery/retry_schedule/{j}");
            match cx.duration(v, &at) {
                Some(d) => schedule.push(d),
                None => ok = false,
            }
        }
        if schedule.is_empty() {
            cx.error_once("/alerts/delivery/retry_schedule", "needs at least one wait");
            ok = false;
        }
        delivery.retry_schedule = schedule;
    }
    ok.then_some(Alerts {
        link_base,
        channels,
        routes,
        delivery,
    })
}

fn str_at_pointer<'v>(json: &'v Value, pointer: &str) -> Option<&'v str> {
    json.pointer(pointer).and_then(Value::as_str)
}

/// The secret `value` refers to, read now; errors name the variable or
/// file, never a value.
fn alert_secret(cx: &mut Cx<'_>, value: Option<&Value>, at: &str) -> Option<Secret> {
    let Some(value) = value else {
        cx.error_once(
            at,
            "missing: write { env = \"NAME\" } or { file = \"path\" }",
        );
        return None;
    };
    let Some(mut source) = as_secret_ref(value) else {
        cx.error_once(
            at,
            "a secret is written { env = \"NAME\" } or { file = \"path\" }, never in the file itself",
        );
        return None;
    };
    // Read at load, wherever the daemon was started from: a relative file
    // is relative to the config file's folder.
    if let SecretSource::File(path) = &source
        && path.is_relative()
        && let Some(folder) = cx.file.parent()
    {
        source = SecretSource::File(folder.join(path));
    }
    match read_secret(&source) {
        Ok(text) => Some(Secret::new(source, text)),
        Err(e) => {
            cx.error(at, e);
            None
        }
    }
}

fn alert_channel(cx: &mut Cx<'_>, c: &Value, at: &str) -> Option<AlertChannel> {
    let name = str_at(c, "name")?.to_owned();
    let kind = str_at(c, "kind")?;
    let url = str_at(c, "url");
    let web_url = |cx: &mut Cx<'_>, url: Option<&str>, required: bool| -> Option<Option<String>> {
        match url {
            None if required => {
                cx.error_once(&format!("{at}/url"), "missing: the receiver's http(s) URL");
                None
            }
            None => Some(None),
            Some(u) if crate::alerts::wording::web_link(u).is_some() => Some(Some(u.to_owned())),
            Some(_) => {
                cx.error_once(
                    &format!("{at}/url"),
                    "must be an absolute http:// or https:// URL",
                );
                None
            }
        }
    };
    let (kind, default_interval) = match kind {
        "webhook" => {
            let url = web_url(cx, url, true)?.unwrap_or_default();
            let mut secrets = Vec::new();
            match (c.get("secret"), c.get("secrets")) {
                (Some(_), Some(_)) => {
                    cx.error(
                        &format!("{at}/secrets"),
                        "write secret or secrets, not both",
                    );
                    return None;
                }
                (Some(one), None) => {
                    secrets.push(alert_secret(cx, Some(one), &format!("{at}/secret"))?)
                }
                (None, Some(list)) => {
                    for (j, v) in elements(list, "") {
                        let p = format!("{at}/secrets/{j}");
                        secrets.push(alert_secret(cx, Some(v), &p)?);
                    }
                    if !(1..=2).contains(&secrets.len()) {
                        cx.error(
                            &format!("{at}/secrets"),
                            "one secret, or two while rotating",
                        );
                        return None;
                    }
                }
                (None, None) => {
                    alert_secret(cx, None, &format!("{at}/secret"))?;
                }
            }
            for (j, secret) in secrets.iter().enumerate() {
                if let Err(e) = crate::alerts::webhook::SigningKey::new(secret.expose()) {
                    let p = if c.get("secret").is_some() {
                        format!("{at}/secret")
                    } else {
                        format!("{at}/secrets/{j}")
                    };
                    cx.error(&p, format!("the secret from {}: {e}", secret.source()));
                    return None;
                }
            }
            (ChannelKind::Webhook { url, secrets }, Duration::ZERO)
        }
        "slack" => {
            let webhook_url = alert_secret(cx, c.get("webhook_url"), &format!("{at}/webhook_url"))?;
            if let Err(e) = crate::alerts::slack::SlackSettings::new(webhook_url.expose()) {
                cx.error(
                    &format!("{at}/webhook_url"),
                    format!("the secret from {}: {e}", webhook_url.source()),
                );
                return None;
            }
            (ChannelKind::Slack { webhook_url }, Duration::from_secs(1))
        }
        "pagerduty" => {
            let routing_key = alert_secret(cx, c.get("routing_key"), &format!("{at}/routing_key"))?;
            let url = web_url(cx, url, false)?;
            if let Err(e) = crate::alerts::pagerduty::PagerDutySettings::new(
                routing_key.expose(),
                url.as_deref(),
            ) {
                cx.error(
                    &format!("{at}/routing_key"),
                    format!("the secret from {}: {e}", routing_key.source()),
                );
                return None;
            }
            (
                ChannelKind::PagerDuty { routing_key, url },
                Duration::from_millis(500),
            )
        }
        "email" => {
            use crate::alerts::email::Security;
            let security = match str_at(c, "security").unwrap_or("starttls") {
                "plain" => Security::Plain,
                "starttls" => Security::StartTls,
                "tls" => Security::Tls,
                other => {
                    cx.error_once(
                        &format!("{at}/security"),
                        format!("unknown security {other:?}: plain, starttls or tls"),
                    );
                    return None;
                }
            };
            let password = match c.get("password") {
                Some(v) => Some(alert_secret(cx, Some(v), &format!("{at}/password"))?),
                None => None,
            };
            let ca_pem = match str_at(c, "ca_file") {
                Some(path) => match std::fs::read(path) {
                    Ok(pem) => Some(pem),
                    Err(e) => {
                        cx.error(
                            &format!("{at}/ca_file"),
                            format!("cannot read {path}: {}", e.kind()),
                        );
                        return None;
                    }
                },
                None => None,
            };
            let timeout = match c.get("timeout") {
                Some(v) => Some(cx.duration(v, &format!("{at}/timeout"))?),
                None => None,
            };
            let to: Vec<String> = elements(c, "/to")
                .filter_map(|(_, v)| v.as_str().map(str::to_owned))
                .collect();
            let email = EmailChannel {
                host: str_at(c, "host").unwrap_or_default().to_owned(),
                port: c
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok()),
                security,
                username: str_at(c, "username").map(str::to_owned),
                password,
                from: str_at(c, "from").unwrap_or_default().to_owned(),
                to,
                ca_pem,
                timeout,
            };
            if let Err(e) =
                crate::alerts::email::Mailer::new(&crate::alerts::email::settings(&email))
            {
                cx.error(at, e.to_string());
                return None;
            }
            (ChannelKind::Email(email), Duration::ZERO)
        }
        other => {
            cx.error_once(
                &format!("{at}/kind"),
                format!("unknown channel kind {other:?}: webhook, slack, pagerduty or email"),
            );
            return None;
        }
    };
    let min_interval = match c.get("min_interval") {
        Some(v) => cx.duration(v, &format!("{at}/min_interval"))?,
        None => default_interval,
    };
    Some(AlertChannel {
        name,
        kind,
        min_interval,
    })
}

const GROUP_LEVELS: [&str; 4] = ["tenant", "flow", "system", "check"];
const ENTITY_KINDS: [&str; 5] = ["tenant", "flow", "system", "check", "asset"];

fn alert_route(
    cx: &mut Cx<'_>,
    r: &Value,
    at: &str,
    channels: &[AlertChannel],
    tenant_ids: &Ids<'_>,
) -> Option<AlertRoute> {
    let mut ok = true;
    let name = str_at(r, "name")?.to_owned();
    let glob = |key: &str| str_at(r, key).map(str::to_owned);
    let tenant = glob("tenant");
    if let Some(t) = &tenant
        && !t.contains(['*', '?'])
        && !tenant_ids.contains(t)
    {
        cx.error(
            &format!("{at}/tenant"),
            format!("unknown tenant {t:?}; {}", known("tenants", tenant_ids)),
        );
        ok = false;
    }
    let mut names = Vec::new();
    for (j, v) in elements(r, "/channels") {
        let Some(channel) = v.as_str() else { continue };
        if channels.iter().all(|c| c.name != channel) {
            let known: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
            cx.error(
                &format!("{at}/channels/{j}"),
                format!(
                    "unknown channel {channel:?}; known channels: {}",
                    known.join(", ")
                ),
            );
            ok = false;
        }
        names.push(channel.to_owned());
    }
    // A missing `channels` is the schema's to report.
    if names.is_empty() && r.get("channels").is_some() {
        cx.error_once(&format!("{at}/channels"), "name at least one channel");
        ok = false;
    }
    let mut list = |key: &str, allowed: &[&str]| -> Vec<String> {
        let mut out = Vec::new();
        for (j, v) in elements(r, &format!("/{key}")) {
            let Some(text) = v.as_str() else { continue };
            if !allowed.contains(&text) {
                cx.error_once(
                    &format!("{at}/{key}/{j}"),
                    format!("unknown {text:?}: one of {}", allowed.join(", ")),
                );
                ok = false;
            }
            out.push(text.to_owned());
        }
        out
    };
    let entities = list("entities", &ENTITY_KINDS);
    let group_by = match r.get("group_by") {
        Some(_) => list("group_by", &GROUP_LEVELS),
        None => vec!["tenant".to_owned()],
    };
    let min_status = match str_at(r, "min_status").unwrap_or("WARNING") {
        "WARNING" => Status::Warning,
        "UNKNOWN" => Status::Unknown,
        "UNHEALTHY" => Status::Unhealthy,
        other => {
            cx.error_once(
                &format!("{at}/min_status"),
                format!("unknown status {other:?}: WARNING, UNKNOWN or UNHEALTHY"),
            );
            ok = false;
            Status::Warning
        }
    };
    let mut duration = |key: &str, default: Option<Duration>| -> Option<Duration> {
        let p = format!("{at}/{key}");
        match r.get(key) {
            Some(v) => {
                let d = cx.duration(v, &p);
                ok &= d.is_some();
                d
            }
            None => default,
        }
    };
    let group_wait = duration("group_wait", Some(Duration::from_secs(30)));
    let group_interval = duration("group_interval", Some(Duration::from_secs(300)));
    let repeat_every = duration("repeat_every", None);
    let send_resolved = r
        .get("send_resolved")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if repeat_every.is_some_and(|d| d.is_zero()) {
        cx.error_once(&format!("{at}/repeat_every"), "must be more than zero");
        ok = false;
    }
    let labels = labels(cx, r, at)?;
    ok.then(|| AlertRoute {
        name,
        tenant,
        flow: glob("flow"),
        system: glob("system"),
        check: glob("check"),
        asset: glob("asset"),
        owner: glob("owner"),
        labels,
        entities,
        min_status,
        channels: names,
        send_resolved,
        repeat_every,
        group_by,
        group_wait: group_wait.unwrap_or_default(),
        group_interval: group_interval.unwrap_or_default(),
    })
}
