//! The GraphQL API: queries over the config, health and stored runs;
//! mutations that act through the service and are audited; subscriptions fed
//! by the event bus and resumable from the store; bearer-token auth with roles
//! and tenant scope; `/graphql` (POST; GET for queries, GraphiQL for a
//! browser without one; WebSocket on the same path, spoken by [`ws`]),
//! `/healthz`, `/readyz` and `/metrics`; CORS for the configured browser
//! origins (the WebSocket's `Origin` checked against the same list),
//! compressed answers and Apollo's persisted queries over POST, GET and
//! WebSocket.
//!
//! It owns the HTTP surface and what each principal may see and do. It must
//! not judge health, schedule or write runs: it reads the [`Store`], listens
//! to the [`EventBus`] and asks the [`Service`] to act.

mod cache;
mod error;
mod ids;
mod inprocess;
mod limits;
mod loaders;
mod mutation;
mod persisted;
mod query;
mod replay;
mod subscription;
mod types;
mod view;
mod ws;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_graphql::http::GraphiQLSource;
use async_graphql::{Context, Data, Schema};
use async_graphql_axum::GraphQLResponse;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::Code;
pub use inprocess::{Answer, InProcess};
pub use view::{Principal, bearer};

use crate::clock::SharedClock;
use crate::config::{ApiLimits, Introspection};
use crate::events::EventBus;
use crate::reload::Reloader;
use crate::service::Service;
use crate::store::Store;
use error::error;
use loaders::Loaders;
use view::{Index, View};

pub type ApiSchema =
    Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

/// What the API reads and acts through.
pub struct State {
    pub service: Arc<Service>,
    pub store: Store,
    pub bus: EventBus,
    pub reloader: Arc<Reloader>,
    pub clock: SharedClock,
    pub started_at: SystemTime,
    /// The index of the config in force, rebuilt when a reload swaps it.
    index: Mutex<Option<Arc<Index>>>,
    cache: Arc<cache::AnswerCache>,
    persisted: persisted::Persisted,
    /// Stored health events, read once for every replaying subscriber.
    replay: replay::Replay,
    /// Set when the daemon stops: open WebSockets close with 1001.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl State {
    pub fn new(
        service: Arc<Service>,
        store: Store,
        bus: EventBus,
        reloader: Arc<Reloader>,
        clock: SharedClock,
    ) -> Self {
        State {
            replay: replay::Replay::new(store.clone(), bus.clone()),
            stopping: tokio::sync::watch::Sender::new(false),
            started_at: clock.now(),
            service,
            store,
            bus,
            reloader,
            clock,
            index: Mutex::new(None),
            cache: Arc::default(),
            persisted: persisted::Persisted::default(),
        }
    }

    fn index(&self) -> Arc<Index> {
        let loaded = self.service.loaded();
        let mut cached = self
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*cached {
            Some(index) if Arc::ptr_eq(&index.loaded, &loaded) => index.clone(),
            _ => {
                let index = Arc::new(Index::new(loaded));
                *cached = Some(index.clone());
                index
            }
        }
    }

    /// Closes every open WebSocket with 1001 (going away), as the daemon
    /// stops, so clients know to reconnect rather than see a dropped socket.
    pub fn close_websockets(&self) {
        self.stopping.send_replace(true);
    }

    /// What a kept answer must have been built at to be reused now.
    fn version(&self) -> cache::Version {
        cache::Version {
            published: self.bus.published(),
            mutations: self.cache.mutations(),
            config: Arc::as_ptr(&self.service.loaded()) as usize,
        }
    }

    /// Whether `entity` is in the config in force and belongs to `tenant`:
    /// what a token scoped to `tenant` sees.
    pub fn within(&self, entity: &crate::health::EntityRef, tenant: &str) -> bool {
        self.index().within(entity, Some(tenant))
    }

    /// The view of the holder of `token`, if the config in force knows it.
    fn view_for(&self, token: &str) -> Option<View> {
        let index = self.index();
        let principal = view::authenticate(&index.config().api.tokens, token)?;
        Some(View { principal, index })
    }
}

fn state<'a>(ctx: &Context<'a>) -> &'a Arc<State> {
    ctx.data_unchecked::<Arc<State>>()
}

/// The request's view; UNAUTHENTICATED without a valid token.
fn view<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a View> {
    ctx.data_opt::<View>().ok_or_else(|| {
        error(
            Code::Unauthenticated,
            "send a valid API token: Authorization: Bearer <token>",
        )
    })
}

/// The schema with `limits`; `state` is absent only to print the SDL.
pub fn schema(state: Option<Arc<State>>, limits: ApiLimits) -> ApiSchema {
    let mut builder = Schema::build(
        query::QueryRoot,
        mutation::MutationRoot,
        subscription::SubscriptionRoot,
    )
    .extension(error::ErrorCodes)
    .extension(limits::Limits {
        max_aliases: limits.max_aliases,
    })
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity);
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

/// Runs `request` in-process as `principal`, through `schema` with the
/// loaders of one request: the same roles, scope and limits as over HTTP.
/// The public status pages run their fixed queries this way as a viewer
/// scoped to one tenant.
pub async fn execute_as(
    schema: &ApiSchema,
    state: &State,
    principal: Principal,
    request: async_graphql::Request,
) -> async_graphql::Response {
    let view = View {
        principal,
        index: state.index(),
    };
    schema
        .execute(request.data(Loaders::new(&state.store)).data(view))
        .await
}

/// The global id (`node(id:)`) of `entity`.
pub fn entity_id(entity: &crate::health::EntityRef) -> String {
    ids::entity_id(entity).0
}

/// The cursor of `healthEvents` that pages on after sequence number `seq`.
pub fn event_cursor(seq: i64) -> String {
    types::cursor(&format!("s:{seq}"))
}

/// The schema in SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    let mut out = String::from(
        "# The GraphQL schema of Tributary's API. Generated: do not edit.\n\
         # Regenerate with `cargo run -p tributary -- schema > schema.graphql`.\n\n",
    );
    out.push_str(&schema(None, ApiLimits::default()).sdl());
    out
}

#[derive(Clone)]
struct App {
    state: Arc<State>,
    schema: ApiSchema,
    /// `api.limits.max_answer`.
    max_answer: u64,
    /// The largest request body, to name in the refusal of a larger one.
    max_body: usize,
    /// Browser origins allowed besides the API's own (`api.cors`).
    origins: Arc<[HeaderValue]>,
}

/// The HTTP routes of the API.
pub fn router(state: Arc<State>, limits: ApiLimits) -> Router {
    let max_body = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
    // Origins are read at start, like the limits: the layers are built once.
    let origins: Arc<[HeaderValue]> = (state.service.loaded().config.api.allowed_origins.iter())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));
    let app = App {
        schema: schema(Some(state.clone()), limits),
        state,
        max_answer: limits.max_answer_bytes,
        max_body,
        origins,
    };
    Router::new()
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql_post)
                .layer(axum::middleware::from_fn(media_type)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
        // gzip, br or zstd, as the client's Accept-Encoding prefers.
        .layer(CompressionLayer::new())
        // Outermost, so a preflight is answered before anything else runs.
        .layer(cors)
        .with_state(app)
}

/// Serves `router` on `listener` until `shutdown` resolves; open WebSockets
/// are closed then.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The token of an `Authorization` header, if any.
fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(view::bearer)
}

fn request_data(app: &App, view: Option<View>) -> Data {
    request_data_for(&app.state, view)
}

/// What every request carries: fresh loaders, and the view when it has one.
fn request_data_for(state: &State, view: Option<View>) -> Data {
    let mut data = Data::default();
    data.insert(Loaders::new(&state.store));
    if let Some(view) = view {
        data.insert(view);
    }
    data
}

/// One GraphQL error with `extensions.code`, as JSON.
fn coded_error(code: Code, message: &str) -> serde_json::Value {
    serde_json::json!({"message": message, "extensions": {"code": code.as_str()}})
}

/// An answer of one coded error and no data.
fn error_body(code: Code, message: &str) -> serde_json::Value {
    serde_json::json!({"data": null, "errors": [coded_error(code, message)]})
}

/// The message of an `ANSWER_TOO_LARGE` refusal.
fn too_large(max_answer: u64) -> String {
    format!(
        "the answer is larger than {max_answer} bytes (api.limits.max_answer); \
         ask for fewer fields, fewer days or smaller pages"
    )
}

/// Why [`json_within`] wrote no JSON.
enum Unwritten {
    /// It would pass the limit.
    TooLarge,
    Failed(serde_json::Error),
}

/// `out` with `value` appended as JSON, unless that takes more than `limit`
/// bytes: writing stops at the limit, so an answer over it never takes more
/// memory than that.
fn json_within(
    out: bytes::BytesMut,
    value: &impl serde::Serialize,
    limit: u64,
) -> Result<bytes::BytesMut, Unwritten> {
    use bytes::BufMut;
    let mut writer = out
        .limit(usize::try_from(limit).unwrap_or(usize::MAX))
        .writer();
    match serde_json::to_writer(&mut writer, value) {
        Ok(()) => Ok(writer.into_inner().into_inner()),
        // The only writer error: the limit reached.
        Err(e) if e.is_io() => Err(Unwritten::TooLarge),
        Err(e) => Err(Unwritten::Failed(e)),
    }
}

fn graphql_error(status: StatusCode, code: Code, message: &str) -> Response {
    (status, axum::Json(error_body(code, message))).into_response()
}

async fn graphql_post(
    AxumState(app): AxumState<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // axum answers a body over the limit in plain text; clients read errors
    // from GraphQL JSON with a code, so the rejection is translated.
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return graphql_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::BadUserInput,
                &format!(
                    "the request body is larger than the limit of {} bytes (api.limits.max_body)",
                    app.max_body
                ),
            );
        }
        Err(rejection) => {
            return graphql_error(
                rejection.status(),
                Code::BadUserInput,
                &format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            );
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                Code::BadUserInput,
                &format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    answer(&app, &headers, request, Method::POST).await
}

/// Runs `request` (sent with `method`) for the holder of the headers' token;
/// read-only answers are kept and shared.
async fn answer(
    app: &App,
    headers: &HeaderMap,
    mut request: async_graphql::Request,
    method: Method,
) -> Response {
    let view = match token(headers) {
        Some(t) => match app.state.view_for(t) {
            Some(v) => Some(v),
            None => {
                return graphql_error(
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    "unknown API token",
                );
            }
        },
        None => None,
    };
    // Before anything reads the query: a persisted one is then the same as
    // one sent. Only token holders use the store, so outsiders can neither
    // fill it nor ask what it holds.
    if request.extensions.contains_key(persisted::EXTENSION) && view.is_none() {
        return graphql_error(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "persisted queries need a valid API token: Authorization: Bearer <token>",
        );
    }
    if let Err(refusal) = persisted_query(app, &mut request) {
        return persisted_refusal(&refusal);
    }
    // A GET must not act: links and prefetches send GETs nobody meant.
    if method == Method::GET && !cache::read_only(&request.query) {
        let mut refused = graphql_error(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::BadUserInput,
            "GET carries queries only; send mutations and subscriptions as POST or WebSocket",
        );
        refused
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return refused;
    }
    let key = view
        .as_ref()
        .filter(|_| cache::read_only(&request.query))
        .map(|v| cache::Key {
            token: v.principal.name.clone(),
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
        });
    let request = prepared(app, view, request);
    let Some(key) = key else {
        return execute(app, request).await.1;
    };
    let version = app.state.version();
    // The response of the request that builds the answer, when it is not
    // one to reuse: then it is this request's own.
    let mut own = None;
    let kept = app
        .state
        .cache
        .get_or_build(key, version, || async {
            let (body, response) = execute(app, request).await;
            if body.is_none() {
                own = Some(response);
            }
            body
        })
        .await;
    match (kept, own) {
        (Some(body), _) => json_body(body),
        (None, Some(response)) => response,
        // The request this one waited for failed inside the daemon.
        (None, None) => graphql_error(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unavailable,
            "the answer could not be built; try again",
        ),
    }
}

/// Puts the text of the persisted query `request` names in it, or stores the
/// text it sends with its hash; counted in `/metrics` by outcome. Over HTTP
/// and WebSocket alike; `Err` is why it is not run.
fn persisted_query(
    app: &App,
    request: &mut async_graphql::Request,
) -> Result<(), persisted::Refusal> {
    let setting = app.state.index().config().api.persisted_queries;
    let Some(outcome) = app.state.persisted.resolve(setting, request) else {
        return Ok(());
    };
    let metrics = app.state.service.metrics();
    match outcome {
        Ok(o) => {
            metrics.persisted_query(o.as_str());
            Ok(())
        }
        Err(refusal) => {
            metrics.persisted_query(refusal.as_str());
            Err(refusal)
        }
    }
}

/// The HTTP answer to a refused persisted query: `PERSISTED_QUERY_NOT_FOUND`
/// and `..._NOT_SUPPORTED` with HTTP 200, as Apollo Client's link reads
/// them, anything else 400.
fn persisted_refusal(refusal: &persisted::Refusal) -> Response {
    let status = match refusal {
        persisted::Refusal::NotFound | persisted::Refusal::NotSupported => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    };
    graphql_error(status, refusal.code(), &refusal.to_string())
}

/// `request` as the API runs it for `view`, over HTTP and WebSocket alike:
/// with the view and fresh loaders, and introspection as
/// `api.introspection` allows.
fn prepared(
    app: &App,
    view: Option<View>,
    request: async_graphql::Request,
) -> async_graphql::Request {
    let introspection = match app.state.index().config().api.introspection {
        Introspection::Public => true,
        Introspection::Authenticated => view.is_some(),
        Introspection::Off => false,
    };
    let mut request = if introspection {
        request
    } else {
        request.disable_introspection()
    };
    request.data = request_data(app, view);
    request
}

/// Whether `response` may be reused: anything but a failure of the daemon
/// itself (`UNAVAILABLE`, `INTERNAL`), which the next request should try
/// again.
fn keeps(response: &async_graphql::Response) -> bool {
    !response.errors.iter().any(|e| {
        let code = e.extensions.as_ref().and_then(|x| x.get("code"));
        [Code::Unavailable, Code::Internal]
            .iter()
            .any(|c| code == Some(&async_graphql::Value::from(c.as_str())))
    })
}

/// Runs `request`; the body too when the answer may be reused: anything but
/// a failure of the daemon itself (`UNAVAILABLE`, `INTERNAL`), which the next
/// request should try again. An answer over `max_answer` bytes is refused
/// with `ANSWER_TOO_LARGE` as it is written, so it never takes more memory.
async fn execute(app: &App, request: async_graphql::Request) -> (Option<Bytes>, Response) {
    let response = app.schema.execute(request).await;
    let keep = keeps(&response);
    match json_within(bytes::BytesMut::new(), &response, app.max_answer) {
        Ok(body) => {
            let body = body.freeze();
            (keep.then(|| body.clone()), json_body(body))
        }
        // The same request would meet the limit again, so the refusal is
        // kept like an answer.
        Err(Unwritten::TooLarge) => {
            let message = too_large(app.max_answer);
            let body = Bytes::from(error_body(Code::AnswerTooLarge, &message).to_string());
            (Some(body.clone()), json_body(body))
        }
        Err(Unwritten::Failed(_)) => (None, GraphQLResponse::from(response).into_response()),
    }
}

/// GraphQL over HTTP: a client that accepts `application/graphql-response+json`
/// (Apollo Client 4 and urql send it first) gets its JSON answers labelled
/// so. That media type tells the client an answer with a 4xx status (401,
/// 413, ...) is still GraphQL, so it reads the coded errors instead of
/// reporting a bare HTTP status; `application/json` clients are unchanged.
async fn media_type(request: Request, next: axum::middleware::Next) -> Response {
    const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
    let accepts = (request.headers().get(header::ACCEPT))
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains(GRAPHQL_RESPONSE));
    let mut response = next.run(request).await;
    let json =
        (response.headers().get(header::CONTENT_TYPE)).is_some_and(|t| t == "application/json");
    if accepts && json {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(GRAPHQL_RESPONSE),
        );
    }
    response
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A WebSocket when the request asks to upgrade; a query in the URL's
/// `?query=` (what urql sends short queries as); GraphiQL to a browser that
/// asks for a page without one.
async fn graphql_get(AxumState(app): AxumState<App>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if !parts.headers.contains_key(header::UPGRADE) {
        return graphql_get_http(&app, &parts.headers, parts.uri.query()).await;
    }
    if !origin_allowed(&parts.headers, &app.origins) {
        return (
            StatusCode::FORBIDDEN,
            "this Origin may not open the API's WebSocket; list it in api.cors.allowed_origins",
        )
            .into_response();
    }
    ws::upgrade(&app, parts)
}

async fn graphql_get_http(app: &App, headers: &HeaderMap, query: Option<&str>) -> Response {
    let query = query.unwrap_or_default();
    let asks = form_urlencoded::parse(query.as_bytes())
        .any(|(key, _)| key == "query" || key == "extensions");
    if !asks {
        let wants_html = headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if wants_html {
            return Html(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .subscription_endpoint("/graphql")
                    .finish(),
            )
            .into_response();
        }
        return graphql_error(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            "GET /graphql needs a query: ?query=...&variables=... (URL-encoded JSON), \
             or a persisted query's ?extensions=...",
        );
    }
    // The body limit holds for a query sent in the URL too (hyper itself
    // answers a bare 414 past 64 KiB).
    if query.len() > app.max_body {
        return graphql_error(
            StatusCode::URI_TOO_LONG,
            Code::BadUserInput,
            &format!(
                "the URL's query string is longer than the limit of {} bytes (api.limits.max_body); \
                 send long queries as POST",
                app.max_body
            ),
        );
    }
    match get_request(query) {
        Ok(request) => answer(app, headers, request, Method::GET).await,
        Err(e) => graphql_error(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            &format!("the URL's query string is not a GraphQL request: {e}"),
        ),
    }
}

/// The GraphQL request of a GET's URL query string, as clients send it:
/// `query`, `operationName`, and `variables` and `extensions` as URL-encoded
/// JSON. (async-graphql's own parser reads `operation_name`, so the
/// operation a client names would be lost.)
fn get_request(query: &str) -> Result<async_graphql::Request, String> {
    let mut request = async_graphql::Request::new("");
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "query" => request.query = value.into_owned(),
            "operationName" => request.operation_name = Some(value.into_owned()),
            "variables" => {
                request.variables = serde_json::from_str(&value)
                    .map_err(|e| format!("`variables` is not a JSON object: {e}"))?;
            }
            "extensions" => {
                request.extensions = serde_json::from_str(&value)
                    .map_err(|e| format!("`extensions` is not a JSON object: {e}"))?;
            }
            _ => {}
        }
    }
    Ok(request)
}

/// Whether a WebSocket upgrade may proceed: browsers send `Origin` and
/// attach cookies to any site's socket, so a page of another origin is let
/// through only when configured; clients without `Origin` (not browsers) and
/// pages of the API's own origin always are.
fn origin_allowed(headers: &HeaderMap, allowed: &[HeaderValue]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if allowed.contains(origin) {
        return true;
    }
    let own = |host: &HeaderValue| {
        let (origin, host) = (origin.as_bytes(), host.as_bytes());
        [&b"http://"[..], b"https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(*scheme) == Some(host))
    };
    headers.get(header::HOST).is_some_and(own)
}

/// Prometheus' scrape: open like `/healthz`, since it holds no tenant data
/// and nothing of any check's config.
async fn metrics(AxumState(app): AxumState<App>) -> Response {
    let metrics = app.state.service.metrics();
    metrics.persisted_query_bytes(app.state.persisted.bytes());
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.state.service.metrics_text(),
    )
        .into_response()
}

/// Ready when the database answers and the daemon is running.
async fn readyz(AxumState(app): AxumState<App>) -> Response {
    let held = app.state.service.held_writes();
    if held > 0 {
        let why = format!("writes held: {held} runs wait for the database to take them");
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), app.state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(_)) => (StatusCode::SERVICE_UNAVAILABLE, "database not reachable").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database: no answer in 2s").into_response(),
    }
}

#[cfg(test)]
mod tests {
    /// `schema.graphql` is what clients and reviewers read: it must be the
    /// schema the daemon serves.
    #[test]
    fn schema_graphql_at_the_repository_root_is_the_served_schema() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == super::sdl(),
            "{} differs from the served schema; regenerate it with \
             `cargo run -p tributary -- schema > schema.graphql`",
            path.display()
        );
    }
}
