//! The native push API: systems that cannot be polled report to their push
//! check (`connector = "push"`) over HTTP.
//!
//! - `POST /push/v1/checks/{check}/reports`: a report in the shape of the
//!   plugin contract's ([`wire`]);
//! - `POST /push/v1/checks/{check}/assets/{asset}/ids?set=NAME`: a batch of
//!   ids (NDJSON or a JSON array, gzip accepted) added to an unfinished set
//!   ([`ids`]) that a report finishes by naming it;
//! - `GET|POST /push/v1/beat/{token}?status=ok|error&msg=...`: a one-line
//!   heartbeat for scripts and cron jobs;
//! - `POST /api/v1/lineage`: OpenLineage run events for checks with
//!   `connector = "openlineage"` ([`openlineage`]).
//!
//! It owns the HTTP side of a push: tokens, rate limits, body limits, CORS
//! per check, `Idempotency-Key`s, and the answers (202 once the report is
//! durably stored, see [`Service::accept_push`]; each refusal with its
//! [`Refusal`] code). It must not judge health or write the store: a checked
//! report goes to the service, which takes it the way of a plugin's report.

mod body;
mod gate;
mod ids;
mod openlineage;
mod refusal;
mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::Digest;

use crate::clock::SharedClock;
use crate::config::{Check, Config, PushCheck};
use crate::reconcile::{IdSet, Limits as IdLimits};
use crate::service::{ActionError, Pushed, ReportError, Service, normalise};
use crate::store::Store;
use gate::{Gate, Holder, Seen};
use ids::{PendingIds, SetKey};
pub use refusal::Refusal;
use wire::{FieldError, escape};

/// The JSON Schema of a pushed report, as `tributary push-schema` prints it.
pub use wire::SCHEMA;

/// The longest `Idempotency-Key` taken.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// The asset a heartbeat speaks of unless it names one (`?asset=`).
pub const BEAT_ASSET: &str = "heartbeat";

/// What the push API reads and acts through.
pub struct PushApi {
    service: Arc<Service>,
    store: Store,
    clock: SharedClock,
    gate: Gate,
    pending: PendingIds,
    open_runs: openlineage::OpenRuns,
}

impl PushApi {
    pub fn new(service: Arc<Service>, store: Store, clock: SharedClock) -> Self {
        Self {
            service,
            store,
            clock,
            gate: Gate::default(),
            pending: PendingIds::default(),
            open_runs: openlineage::OpenRuns::default(),
        }
    }
}

type Api = Arc<PushApi>;

/// The routes of the push API, merged into the daemon's HTTP server.
pub fn router(api: Api) -> Router {
    Router::new()
        .route(
            "/push/v1/checks/{check}/reports",
            post(post_report).options(preflight),
        )
        .route(
            "/push/v1/checks/{check}/assets/{asset}/ids",
            post(post_ids).options(preflight),
        )
        .route("/push/v1/beat/{token}", get(beat).post(beat))
        .route("/api/v1/lineage", post(openlineage::post_event))
        .with_state(api)
}

/// Counts the answer in the metrics and adds the CORS headers `origin` earned.
fn answer(
    api: &PushApi,
    kind: &'static str,
    origin: Option<HeaderValue>,
    result: Result<Response, Refusal>,
) -> Response {
    let metrics = api.service.metrics();
    let mut response = match result {
        Ok(r) => {
            metrics.push_accepted(kind);
            r
        }
        Err(refusal) => {
            metrics.push_refused(refusal.code());
            refusal.into_response()
        }
    };
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// A push check with an allowed origin answers browsers' preflights.
async fn preflight(
    State(api): State<Api>,
    Path(params): Path<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let check = params.get("check").map(String::as_str).unwrap_or_default();
    let loaded = api.service.loaded();
    let Some(push) = loaded.config.check(check).and_then(|c| c.push.as_deref()) else {
        return Refusal::UnknownCheck(check.to_owned()).into_response();
    };
    match allowed_origin(push, &headers) {
        Ok(Some(origin)) => (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
                (
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("POST"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(
                        "authorization, content-type, content-encoding, idempotency-key",
                    ),
                ),
                (
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("3600"),
                ),
                (header::VARY, HeaderValue::from_static("Origin")),
            ],
        )
            .into_response(),
        Ok(None) => Refusal::Forbidden {
            code: "origin_not_allowed",
            message: "a preflight needs an Origin listed in the check's push.allowed_origins"
                .to_owned(),
        }
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The request's `Origin`, when it has one the check allows; a request
/// from a page of another origin is refused (`None`: no `Origin`).
fn allowed_origin(push: &PushCheck, headers: &HeaderMap) -> Result<Option<HeaderValue>, Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let text = origin.to_str().unwrap_or_default();
    if push.allowed_origins.iter().any(|o| o == text) {
        Ok(Some(origin.clone()))
    } else {
        Err(Refusal::Forbidden {
            code: "origin_not_allowed",
            message: format!(
                "origin {text:?} may not push to this check; list it in the check's push.allowed_origins"
            ),
        })
    }
}

/// The token of a request: `Authorization: Bearer`, or `?token=` for a
/// browser's `sendBeacon`, which cannot set headers.
fn token_of(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::api::bearer)
        .map(str::to_owned)
        .or_else(|| param(query, "token").map(str::to_owned))
        .filter(|t| !t.is_empty())
}

fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// What a request feeds: a native push check, or an OpenLineage check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Native,
    OpenLineage,
}

impl Feed {
    fn of(push: &PushCheck) -> Self {
        if push.openlineage.is_some() {
            Feed::OpenLineage
        } else {
            Feed::Native
        }
    }
}

/// A request let through to a check: its holder and the check's rules, in
/// the config in force (shared, not copied per request).
struct Admitted {
    holder: Holder,
    config: Arc<Config>,
    /// The check's place in `config.checks`.
    index: usize,
}

impl Admitted {
    fn check(&self) -> &Check {
        &self.config.checks[self.index]
    }

    fn push(&self) -> &PushCheck {
        self.check().push.as_deref().expect("a push check")
    }
}

/// Who is asking, for which check (`None`: the token's own) fed how, and
/// may they now: 401, 404, 403, 429 in that order.
fn admit(
    api: &PushApi,
    check_id: Option<&str>,
    token: Option<String>,
    feed: Feed,
    origin_ok: impl FnOnce(&PushCheck) -> Result<(), Refusal>,
) -> Result<Admitted, Refusal> {
    let token = token.ok_or(Refusal::Unauthenticated(
        "send the check's push token: Authorization: Bearer <token> (or ?token= from a browser)",
    ))?;
    let loaded = api.service.loaded();
    let holder = api
        .gate
        .holder(&loaded.config, &token)
        .ok_or(Refusal::Unauthenticated(
            "this push token is not configured",
        ))?;
    let check_id = check_id.unwrap_or(&holder.check);
    let index = (loaded.config.checks.iter())
        .position(|c| c.id == check_id && c.push.is_some())
        .ok_or_else(|| Refusal::UnknownCheck(check_id.to_owned()))?;
    let check = &loaded.config.checks[index];
    let push = check.push.as_deref().expect("found above");
    if Feed::of(push) != feed {
        return Err(Refusal::Forbidden {
            code: "wrong_check",
            message: match feed {
                Feed::Native => format!(
                    "check {:?} is fed by OpenLineage events (POST /api/v1/lineage), not native pushes",
                    check.id
                ),
                Feed::OpenLineage => format!(
                    "this token belongs to push check {:?}, which takes native pushes (/push/v1), not OpenLineage events",
                    check.id
                ),
            },
        });
    }
    origin_ok(push)?;
    if holder.check != check.id {
        return Err(Refusal::Forbidden {
            code: "wrong_check",
            message: format!("this token belongs to another check, not {:?}", check.id),
        });
    }
    api.gate
        .take(&holder, push.rate_per_second)
        .map_err(|retry_after| Refusal::RateLimited { retry_after })?;
    api.service.note_push_token(&holder.sha256, api.clock.now());
    Ok(Admitted {
        holder,
        config: loaded.config.clone(),
        index,
    })
}

/// [`admit`] for a POST to `check` that a browser page may send: sets
/// `origin` to the request's allowed `Origin`, and takes JSON, `text/plain`
/// or the `also` media types.
fn admit_posted(
    api: &PushApi,
    check: &str,
    headers: &HeaderMap,
    query: &[(String, String)],
    also: &[&str],
    origin: &mut Option<HeaderValue>,
) -> Result<Admitted, Refusal> {
    let admitted = admit(
        api,
        Some(check),
        token_of(headers, query),
        Feed::Native,
        |push| {
            *origin = allowed_origin(push, headers)?;
            Ok(())
        },
    )?;
    json_media(headers, also)?;
    Ok(admitted)
}

/// JSON (or `text/plain`, what `sendBeacon` sends a string as), or none.
fn json_media(headers: &HeaderMap, also: &[&str]) -> Result<(), Refusal> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if ["application/json", "text/plain"]
        .iter()
        .chain(also)
        .any(|m| *m == media)
    {
        Ok(())
    } else {
        Err(Refusal::Unsupported(format!(
            "Content-Type {media:?} is not read here; send application/json (or text/plain{})",
            also.iter().map(|m| format!(", {m}")).collect::<String>()
        )))
    }
}

/// The run id a request stands for: derived from its `Idempotency-Key`
/// (so a retry, even after a restart, names the stored run), else new.
fn run_id(check: &str, headers: &HeaderMap, now: SystemTime) -> Result<(String, bool), Refusal> {
    match headers.get("idempotency-key") {
        Some(key) => {
            let key = key
                .to_str()
                .ok()
                .filter(|k| !k.trim().is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY);
            let Some(key) = key else {
                return Err(Refusal::Invalid(vec![FieldError::new(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
                )]));
            };
            Ok((keyed_run_id(check, key), true))
        }
        None => {
            let ms = crate::store::to_ms(now);
            Ok((
                format!("push-{ms:013x}-{:016x}", rand::random::<u64>()),
                false,
            ))
        }
    }
}

/// The run id that `key` stands for in `check`: the same key, the same run.
fn keyed_run_id(check: &str, key: &str) -> String {
    let mut hash = sha2::Sha256::new();
    hash.update(check.as_bytes());
    hash.update([0]);
    hash.update(key.as_bytes());
    format!("push-{}", &hex::encode(hash.finalize())[..40])
}

/// What a retry of a stored request is answered.
fn duplicate(run: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"accepted": true, "run": run, "duplicate": true})),
    )
        .into_response()
}

async fn post_report(
    State(api): State<Api>,
    Path(check): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = parse_query(query.as_deref());
    let mut origin = None;
    let result = async {
        let admitted = match admit_posted(&api, &check, &headers, &query, &[], &mut origin) {
            Ok(admitted) => admitted,
            Err(refusal) => return Err(body::refuse(body, refusal)),
        };
        let push = admitted.push();
        let body = body::read(body, &headers, push.max_body_bytes).await?;
        let now = api.clock.now();
        let (run_id, keyed) = run_id(&check, &headers, now)?;
        let pushed = wire::read_report(&body, now).map_err(Refusal::Invalid)?;
        submit(&api, &admitted, run_id, keyed, now, pushed).await
    }
    .await;
    answer(&api, "report", origin, result)
}

/// Checks a read report against its check, finishes the id sets it names
/// and hands it to the service; answers 202 once it is stored.
async fn submit(
    api: &PushApi,
    admitted: &Admitted,
    run_id: String,
    keyed: bool,
    now: SystemTime,
    pushed: wire::Pushed,
) -> Result<Response, Refusal> {
    let push = admitted.push();
    let mut errors = Vec::new();
    if !push.assets.is_empty() {
        for (i, o) in pushed.report.observations.iter().enumerate() {
            if !push.assets.contains(&o.asset) {
                errors.push(FieldError::new(
                    format!("/observations/{i}/asset"),
                    format!(
                        "asset {:?} is not one of this check's assets (push.assets)",
                        o.asset
                    ),
                ));
            }
        }
    }
    let set_key = |asset: &str, set: &str| SetKey {
        token: admitted.holder.sha256.clone(),
        check: admitted.check().id.clone(),
        asset: asset.to_owned(),
        set: set.to_owned(),
    };
    for (asset, set) in &pushed.ids {
        if !api.pending.has(&set_key(asset, set)) {
            errors.push(FieldError::new(
                format!("/ids/{}", escape(asset)),
                format!(
                    "no unfinished id set {set:?} of asset {asset:?} from this token (sets are held in memory for {}m after their last batch, and not across a restart: send its batches again)",
                    ids::IDLE_EXPIRY.as_secs() / 60
                ),
            ));
        }
    }
    let normalised = match normalise(pushed.report, &crate::plugin::Redactor::default()) {
        Ok(n) => Some(n),
        Err(e) => {
            errors.push(report_error(&e));
            None
        }
    };
    if !errors.is_empty() {
        return Err(Refusal::Invalid(errors));
    }
    let observations = normalised.expect("no errors").observations;

    if keyed {
        if let Some(seen) = api.gate.begin(&run_id) {
            return match seen {
                Seen::Stored => Ok(duplicate(&run_id)),
                Seen::InFlight => Err(Refusal::InProgress),
            };
        }
        match api.store.run(&run_id).await {
            Ok(Some(_)) => {
                api.gate.end(&run_id, true);
                return Ok(duplicate(&run_id));
            }
            Ok(None) => {}
            // Unreadable now: the writer holds what it cannot write, and the
            // in-memory mark still guards retries while the daemon runs.
            Err(err) => {
                tracing::warn!(error = %err, "checking an Idempotency-Key against the store failed")
            }
        }
    }
    let mut sets: BTreeMap<String, Arc<IdSet>> = BTreeMap::new();
    for (asset, set) in &pushed.ids {
        let Some(builder) = api.pending.take(&set_key(asset, set)) else {
            if keyed {
                api.gate.end(&run_id, false);
            }
            return Err(Refusal::Invalid(vec![FieldError::new(
                format!("/ids/{}", escape(asset)),
                format!("the id set {set:?} expired while this report was read"),
            )]));
        };
        sets.insert(asset.clone(), ids::finish(builder).await);
    }
    let result = api
        .service
        .accept_push(Pushed {
            check: admitted.check().id.clone(),
            run_id: run_id.clone(),
            // A clock a little ahead (accepted by the reader) must not make
            // the check's next reports look older than this one.
            at: pushed.at.unwrap_or(now).min(now),
            observations,
            ids: sets,
        })
        .await;
    if keyed {
        api.gate.end(&run_id, result.is_ok());
    }
    match result {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({"accepted": true, "run": run_id, "duplicate": false})),
        )
            .into_response()),
        Err(ActionError::UnknownCheck(c)) => Err(Refusal::UnknownCheck(c)),
        Err(other) => Err(Refusal::Unavailable(other.to_string())),
    }
}

/// A report the normaliser refused, as the field to blame.
fn report_error(e: &ReportError) -> FieldError {
    let at = match e {
        ReportError::DuplicateAsset { second, .. } => format!("/observations/{second}/asset"),
        ReportError::AssetKeyTooLong { index, .. } => format!("/observations/{index}/asset"),
    };
    FieldError::new(at, e.to_string())
}

async fn post_ids(
    State(api): State<Api>,
    Path((check, asset)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = parse_query(query.as_deref());
    let mut origin = None;
    let result = async {
        let (admitted, set) = match ids_target(&api, &check, &asset, &headers, &query, &mut origin)
        {
            Ok(target) => target,
            Err(refusal) => return Err(body::refuse(body, refusal)),
        };
        let push = admitted.push();
        let body = body::read(body, &headers, push.max_body_bytes).await?;
        let ndjson = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("ndjson") || v.contains("jsonl"));
        let limits = &admitted.check().limits;
        let batch = read_ids(&body, ndjson, limits.id_length).map_err(Refusal::Invalid)?;
        let key = SetKey {
            token: admitted.holder.sha256.clone(),
            check: admitted.check().id.clone(),
            asset: asset.clone(),
            set: set.clone(),
        };
        let id_limits = IdLimits {
            max_ids: usize::try_from(limits.ids).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(limits.id_bytes).unwrap_or(usize::MAX),
        };
        let total = api
            .pending
            .add(key, &batch, id_limits)
            .map_err(|e| Refusal::TooManyIds(e.to_string()))?;
        Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({
                "accepted": true,
                "set": set,
                "batch": batch.len(),
                "total": total,
                "finished": false,
            })),
        )
            .into_response())
    }
    .await;
    answer(&api, "ids", origin, result)
}

/// Who posts a batch of ids, and to which set of `asset` (`?set=`).
fn ids_target(
    api: &PushApi,
    check: &str,
    asset: &str,
    headers: &HeaderMap,
    query: &[(String, String)],
    origin: &mut Option<HeaderValue>,
) -> Result<(Admitted, String), Refusal> {
    let ndjson = ["application/x-ndjson", "application/jsonl"];
    let admitted = admit_posted(api, check, headers, query, &ndjson, origin)?;
    let push = admitted.push();
    let Some(set) = param(query, "set").filter(|s| !s.is_empty() && s.len() <= 128) else {
        return Err(Refusal::Invalid(vec![FieldError::new(
            "?set",
            "name the id set this batch belongs to (?set=NAME, 1 to 128 characters); a report finishes it with \"ids\": {\"<asset>\": \"NAME\"}",
        )]));
    };
    if !push.assets.is_empty() && !push.assets.iter().any(|a| a == asset) {
        return Err(Refusal::Invalid(vec![FieldError::new(
            "{asset}",
            format!("asset {asset:?} is not one of this check's assets (push.assets)"),
        )]));
    }
    Ok((admitted, set.to_owned()))
}

/// Ids of a batch: a JSON array of strings, or NDJSON (one JSON string a
/// line, blank lines skipped). Every bad entry is named.
fn read_ids(body: &Bytes, ndjson: bool, max_len: usize) -> Result<Vec<String>, Vec<FieldError>> {
    let text = std::str::from_utf8(body).map_err(|e| {
        vec![FieldError::new(
            "",
            format!("the body is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )]
    })?;
    let mut errors = Vec::new();
    let mut ids = Vec::new();
    let mut check = |id: Result<String, String>, at: String| match id {
        Ok(id) if id.is_empty() => errors.push(FieldError::new(at, "an id is empty")),
        Ok(id) if id.len() > max_len => errors.push(FieldError::new(
            at,
            format!("the id is {} bytes, over the limit of {max_len}", id.len()),
        )),
        Ok(id) => ids.push(id),
        Err(e) => errors.push(FieldError::new(at, e)),
    };
    if ndjson {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let id =
                serde_json::from_str::<String>(line).map_err(|e| format!("not a JSON string: {e}"));
            check(id, format!("line {}", n + 1));
        }
    } else {
        let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            vec![FieldError::new(
                "",
                format!("the body is not a JSON array of ids: {e}"),
            )]
        })?;
        for (i, v) in values.into_iter().enumerate() {
            let id = match v {
                serde_json::Value::String(s) => Ok(s),
                other => Err(format!("an id must be a string, not {other}")),
            };
            check(id, format!("/{i}"));
        }
    }
    errors.truncate(100);
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(errors)
    }
}

async fn beat(
    State(api): State<Api>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = parse_query(query.as_deref());
    let result = async {
        // The token names its check.
        let admitted = admit(&api, None, Some(token.clone()), Feed::Native, |_| Ok(()))?;
        let ok = match param(&query, "status").unwrap_or("ok") {
            "ok" | "up" => true,
            "error" | "down" => false,
            other => {
                return Err(Refusal::Invalid(vec![FieldError::new(
                    "?status",
                    format!("status {other:?} is not ok or error"),
                )]));
            }
        };
        let asset = param(&query, "asset").unwrap_or(BEAT_ASSET);
        let message = param(&query, "msg").map(str::to_owned);
        let now = api.clock.now();
        let (run_id, keyed) = run_id(&admitted.check().id, &headers, now)?;
        let pushed = wire::Pushed {
            at: None,
            report: wire::beat_report(asset, ok, message),
            ids: BTreeMap::new(),
        };
        submit(&api, &admitted, run_id, keyed, now, pushed).await
    }
    .await;
    answer(&api, "beat", None, result)
}
