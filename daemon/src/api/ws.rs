//! The API's WebSocket transport: the upgrade of `GET /graphql`, the
//! [graphql-transport-ws] protocol and the legacy subscriptions-transport-ws
//! one (subprotocol `graphql-ws`) in one state machine, the server's pings,
//! the timeouts that close a connection, and the caps on what one connection
//! may send, hold and be sent.
//!
//! It owns the socket and its protocol. Operations run through the schema
//! with the data an HTTP request gets ([`super::prepared`]), so limits,
//! validation and tenant scope are the HTTP API's; it must not resolve
//! fields or decide what a principal may see beyond authenticating its
//! token. It must not buffer for a slow reader either: each message is
//! written out before the next result is taken from the operations, so a
//! client that does not read holds up its own operations, whose event-bus
//! receivers then lag and catch up from the store ([`crate::events`]).
//!
//! [graphql-transport-ws]: https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::Variables;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, AbortHandle, Abortable, BoxStream, SelectAll};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::error::Code;
use super::{App, Unwritten, coded_error, json_within, persisted_query, prepared, too_large, view};
use crate::config::ApiWebSocket;

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A close frame holds 125 bytes: the 2-byte code, then the reason.
const MAX_REASON: usize = 123;

/// How long a closed connection is kept to let the client read the close
/// frame: closing a socket that still has unread bytes resets it, and the
/// client may lose the frame (and the reason) with it.
const LINGER: Duration = Duration::from_secs(5);

/// The two GraphQL-over-WebSocket protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `graphql-transport-ws`, the graphql-ws library's.
    TransportWs,
    /// `graphql-ws`, Apollo's legacy subscriptions-transport-ws: other
    /// message names (`start`, `stop`, `data`, `ka`), no pong, no close codes
    /// of its own.
    Legacy,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::Legacy => "graphql-ws",
        }
    }

    /// The protocol the upgrade request asks for; the current one when it
    /// offers both.
    fn requested(headers: &HeaderMap) -> Option<Protocol> {
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        [Protocol::TransportWs, Protocol::Legacy]
            .into_iter()
            .find(|p| offered.contains(&p.name()))
    }
}

/// Why the server closes a connection: graphql-transport-ws's codes (44xx)
/// and RFC 6455's (1xxx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
enum CloseCode {
    /// The legacy client ended the session (`connection_terminate`).
    Normal = 1000,
    /// Going away: nothing came from the client for
    /// `api.websocket.idle_timeout`, or the daemon is stopping.
    GoingAway = 1001,
    /// A frame that breaks RFC 6455.
    ProtocolError = 1002,
    /// A text frame that is not UTF-8.
    InvalidData = 1007,
    /// A frame or message over `api.limits.max_body`.
    TooBig = 1009,
    /// A message that is not JSON, of an unknown type or with a bad payload.
    BadRequest = 4400,
    /// An operation before `connection_ack`.
    Unauthorized = 4401,
    /// `connection_init` without a valid token.
    Forbidden = 4403,
    /// No `connection_init` within `api.websocket.init_timeout`.
    InitTimeout = 4408,
    /// A `subscribe` with the id of an operation still running.
    SubscriberExists = 4409,
    /// A second `connection_init`.
    TooManyInits = 4429,
    /// An answer the server could not write.
    Internal = 4500,
}

/// A close the server sends.
#[derive(Debug)]
struct Closing {
    code: CloseCode,
    /// At most [`MAX_REASON`] bytes.
    reason: String,
}

/// A [`Closing`] whose reason is cut to [`MAX_REASON`] bytes, on a character
/// boundary.
fn closing(code: CloseCode, reason: impl Into<String>) -> Closing {
    let mut reason = reason.into();
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    Closing { code, reason }
}

/// How a connection ends.
#[derive(Debug)]
enum Ended {
    /// The client closed; its close frame is answered.
    ByClient,
    /// The server closes, saying why.
    Closing(Closing),
    /// The socket failed, or the client read nothing for as long as it may
    /// stay silent: nothing more can be sent.
    Gone,
}

impl From<Closing> for Ended {
    fn from(c: Closing) -> Self {
        Ended::Closing(c)
    }
}

/// Accepts a WebSocket upgrade of `GET /graphql` and serves the connection
/// in a task of its own; a request that is not a valid upgrade asking for a
/// GraphQL subprotocol gets 400 saying what is missing.
pub(super) fn upgrade(app: &App, mut parts: Parts) -> Response {
    let accept = match handshake(&parts.headers, parts.version) {
        Ok(accept) => accept,
        Err(refused) => return refused.into_response(),
    };
    let Some(protocol) = Protocol::requested(&parts.headers) else {
        return Refused(
            StatusCode::BAD_REQUEST,
            "ask for a GraphQL subprotocol: Sec-WebSocket-Protocol: graphql-transport-ws \
             (or the legacy graphql-ws)",
        )
        .into_response();
    };
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Refused(
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded to a WebSocket (use HTTP/1.1)",
        )
        .into_response();
    };
    // A token in the upgrade request's header is accepted too; browsers
    // cannot set one, so the connection_init payload is the usual place.
    let header_token = super::token(&parts.headers).map(str::to_owned);
    let connection = Connection::new(app.clone(), protocol, header_token);
    // Frames and messages are capped like request bodies, before they are
    // buffered: tungstenite refuses a frame by its header.
    let config = WebSocketConfig::default()
        .max_message_size(Some(app.max_body))
        .max_frame_size(Some(app.max_body));
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                connection.serve(socket).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
            (
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol.name()),
            ),
        ],
    )
        .into_response()
}

/// Why an upgrade request is refused: its status and what to fix.
struct Refused(StatusCode, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = (self.0, self.1).into_response();
        if self.0 == StatusCode::UPGRADE_REQUIRED {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// Checks an upgrade request as RFC 6455 (4.2.1) says, and gives the
/// `Sec-WebSocket-Accept` answering its key.
fn handshake(headers: &HeaderMap, version: Version) -> Result<HeaderValue, Refused> {
    let refuse = |why| Err(Refused(StatusCode::BAD_REQUEST, why));
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if version != Version::HTTP_11 {
        return refuse("a WebSocket upgrade needs HTTP/1.1");
    }
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return refuse("a WebSocket upgrade needs Upgrade: websocket and Connection: upgrade");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(Refused(
            StatusCode::UPGRADE_REQUIRED,
            "this server speaks WebSocket version 13",
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse("a WebSocket upgrade needs Sec-WebSocket-Key");
    };
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .or_else(|_| refuse("Sec-WebSocket-Key could not be answered"))
}

/// A client message, checked as the graphql-ws library checks it.
enum Inbound {
    Init(Option<Map<String, Value>>),
    Ping(Option<Map<String, Value>>),
    Pong,
    Subscribe {
        id: String,
        request: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
    /// The legacy `connection_terminate`.
    Terminate,
}

/// Reads a client message of `protocol`; the error says why it is invalid.
fn parse(protocol: Protocol, bytes: &[u8]) -> Result<Inbound, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(mut message) = value else {
        return Err("not a JSON object".into());
    };
    let kind = match message.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err("\"type\" is not a string".into()),
        None => return Err("no \"type\"".into()),
    };
    let (subscribe, complete) = match protocol {
        Protocol::TransportWs => ("subscribe", "complete"),
        Protocol::Legacy => ("start", "stop"),
    };
    let current = protocol == Protocol::TransportWs;
    match kind.as_str() {
        "connection_init" => Ok(Inbound::Init(optional_object(&mut message, "payload")?)),
        "ping" if current => Ok(Inbound::Ping(optional_object(&mut message, "payload")?)),
        "pong" if current => optional_object(&mut message, "payload").map(|_| Inbound::Pong),
        "connection_terminate" if !current => Ok(Inbound::Terminate),
        t if t == subscribe => {
            let id = id(&mut message, t)?;
            let Some(Value::Object(payload)) = message.remove("payload") else {
                return Err(format!("{t} needs a payload object"));
            };
            Ok(Inbound::Subscribe {
                id,
                request: Box::new(request(payload)?),
            })
        }
        t if t == complete => Ok(Inbound::Complete {
            id: id(&mut message, t)?,
        }),
        other => Err(format!("unknown type {other:?} in {}", protocol.name())),
    }
}

/// The object at `key`, which may be absent or null.
fn optional_object(
    message: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match message.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(format!("\"{key}\" is not an object")),
    }
}

fn id(message: &mut Map<String, Value>, kind: &str) -> Result<String, String> {
    match message.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(format!("{kind} needs a non-empty string \"id\"")),
    }
}

/// The GraphQL request of a `subscribe` (`start`) payload. Its `extensions`
/// are kept: a persisted query names its text by hash there, and may then
/// send no `query`.
fn request(mut payload: Map<String, Value>) -> Result<async_graphql::Request, String> {
    let extensions = optional_object(&mut payload, "extensions")?.unwrap_or_default();
    let query = match payload.remove("query") {
        Some(Value::String(query)) => query,
        None | Some(Value::Null) if extensions.contains_key(super::persisted::EXTENSION) => {
            String::new()
        }
        _ => return Err("the payload needs a \"query\" string".into()),
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(variables) = optional_object(&mut payload, "variables")? {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    match payload.remove("operationName") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("\"operationName\" is not a string".into()),
    }
    for (name, value) in extensions {
        let value = async_graphql::Value::from_json(value)
            .map_err(|e| format!("extensions.{name}: {e}"))?;
        request.extensions.insert(name, value);
    }
    Ok(request)
}

/// The token of a `connection_init` payload: `{"Authorization": "Bearer t"}`
/// (any case) or `{"token": "t"}`; empty when `Authorization` is not a
/// bearer value, so it is refused rather than replaced by another.
fn init_token(payload: &Map<String, Value>) -> Option<String> {
    for (key, value) in payload {
        let Some(value) = value.as_str() else {
            continue;
        };
        if key.eq_ignore_ascii_case("authorization") {
            return Some(view::bearer(value).unwrap_or_default().to_owned());
        }
        if key == "token" {
            return Some(value.to_owned());
        }
    }
    None
}

/// One result of an operation, or its end (`None`).
struct Outcome {
    serial: u64,
    id: String,
    response: Option<async_graphql::Response>,
}

/// An operation the connection holds, by the id the client gave it.
struct Operation {
    /// Tells its results from those of an earlier operation of the same id.
    serial: u64,
    abort: AbortHandle,
    /// Whether a result came.
    answered: bool,
}

/// One WebSocket: where it is in the protocol, the operations it holds and
/// when the client was last heard.
struct Connection {
    app: App,
    protocol: Protocol,
    /// Read from the config in force when the connection opened.
    settings: ApiWebSocket,
    /// The token of the upgrade request's `Authorization`, for a
    /// `connection_init` without one.
    header_token: Option<String>,
    /// Whether `connection_init` came (accepted or not).
    initialised: bool,
    /// The token the connection was acknowledged with; each operation is
    /// authenticated with it against the config in force when it starts.
    token: Option<String>,
    operations: HashMap<String, Operation>,
    results: SelectAll<BoxStream<'static, Outcome>>,
    serials: u64,
    /// When the client last sent anything, pongs and control frames
    /// included.
    last_heard: Instant,
    /// Turns true when the daemon stops: the connection is then closed with
    /// 1001 rather than dropped.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    fn new(app: App, protocol: Protocol, header_token: Option<String>) -> Self {
        let settings = app.state.service.loaded().config.api.websocket;
        let stopping = app.state.stopping.subscribe();
        Connection {
            stopping,
            app,
            protocol,
            settings,
            header_token,
            initialised: false,
            token: None,
            operations: HashMap::new(),
            results: SelectAll::new(),
            serials: 0,
            last_heard: Instant::now(),
        }
    }

    async fn serve(mut self, mut socket: Socket) {
        let ended = self.run(&mut socket).await;
        // The operations end with the connection, whatever is sent now.
        drop(self.results);
        match ended {
            Ended::ByClient => {
                let _ = timeout(LINGER, socket.close(None)).await;
            }
            Ended::Closing(Closing { code, reason }) => {
                tracing::debug!(
                    code = code as u16,
                    %reason,
                    protocol = self.protocol.name(),
                    "closing a WebSocket"
                );
                // The legacy protocol has no close codes: its clients read
                // the reason from a connection_error first.
                if self.protocol == Protocol::Legacy && code != CloseCode::Normal {
                    let error = json!({"type": "connection_error", "payload": {"message": reason}});
                    let text = Message::Text(error.to_string().into());
                    let _ = timeout(LINGER, socket.send(text)).await;
                }
                let frame = CloseFrame {
                    code: (code as u16).into(),
                    reason: reason.into(),
                };
                if let Ok(Ok(())) = timeout(LINGER, socket.send(Message::Close(Some(frame)))).await
                {
                    linger(socket).await;
                }
            }
            Ended::Gone => {}
        }
    }

    async fn run(&mut self, socket: &mut Socket) -> Ended {
        let init_deadline = Instant::now() + self.settings.init_timeout;
        let every = self.settings.ping_interval;
        let mut pings = tokio::time::interval_at(Instant::now() + every, every);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stopping = self.stopping.clone();
        loop {
            let acknowledged = self.token.is_some();
            let idle_at = self.last_heard + self.settings.idle_timeout;
            let step = tokio::select! {
                // What the client sent first: a pong waiting to be read
                // must count before the idle deadline is judged.
                biased;
                frame = socket.next() => self.on_frame(frame, socket).await,
                Some(outcome) = self.results.next(), if !self.results.is_empty() => {
                    self.on_outcome(outcome, socket).await
                }
                () = sleep_until(init_deadline), if !self.initialised => Err(closing(
                    CloseCode::InitTimeout,
                    format!(
                        "Connection initialisation timeout: no connection_init within {:?} \
                         (api.websocket.init_timeout)",
                        self.settings.init_timeout
                    ),
                )
                .into()),
                _ = pings.tick(), if acknowledged => self.ping(socket).await,
                _ = stopping.changed() => Err(closing(
                    CloseCode::GoingAway,
                    "the server is shutting down",
                )
                .into()),
                () = sleep_until(idle_at), if acknowledged => Err(closing(
                    CloseCode::GoingAway,
                    format!(
                        "nothing from the client in {:?} (api.websocket.idle_timeout); \
                         answer the server's pings",
                        self.settings.idle_timeout
                    ),
                )
                .into()),
            };
            if let Err(ended) = step {
                return ended;
            }
        }
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, WsError>>,
        socket: &mut Socket,
    ) -> Result<(), Ended> {
        let message = match frame {
            None => return Err(Ended::Gone),
            Some(Err(e)) => return Err(self.unreadable(e)),
            Some(Ok(m)) => m,
        };
        self.last_heard = Instant::now();
        let inbound = match message {
            Message::Text(text) => parse(self.protocol, text.as_bytes()),
            Message::Binary(bytes) => parse(self.protocol, &bytes),
            // tungstenite answers pings itself; a pong is an answer like any
            // message, and what legacy clients give to the server's pings.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(()),
            Message::Close(_) => return Err(Ended::ByClient),
        };
        match inbound {
            Ok(m) => self.on_message(m, socket).await,
            Err(why) => {
                Err(closing(CloseCode::BadRequest, format!("Invalid message: {why}")).into())
            }
        }
    }

    /// How a read that failed ends the connection.
    fn unreadable(&self, e: WsError) -> Ended {
        match e {
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => closing(
                CloseCode::TooBig,
                format!(
                    "a message larger than {} bytes (api.limits.max_body)",
                    self.app.max_body
                ),
            )
            .into(),
            WsError::Utf8(_) => {
                closing(CloseCode::InvalidData, "a text message not in UTF-8").into()
            }
            WsError::Protocol(e) => closing(CloseCode::ProtocolError, e.to_string()).into(),
            _ => Ended::Gone,
        }
    }

    async fn on_message(&mut self, message: Inbound, socket: &mut Socket) -> Result<(), Ended> {
        match message {
            Inbound::Init(payload) => self.init(payload, socket).await,
            Inbound::Ping(payload) => {
                self.send(socket, "pong", None, payload.map(Value::Object))
                    .await
            }
            Inbound::Pong => Ok(()),
            Inbound::Subscribe { id, request } => self.subscribe(id, *request, socket).await,
            Inbound::Complete { id } => {
                // An id the server does not hold (it ended already) is no
                // error: both sides may complete at once.
                let stopped = self.end(&id);
                if stopped && self.protocol == Protocol::Legacy {
                    self.send(socket, "complete", Some(&id), None).await?;
                }
                Ok(())
            }
            Inbound::Terminate => Err(closing(CloseCode::Normal, "connection_terminate").into()),
        }
    }

    async fn init(
        &mut self,
        payload: Option<Map<String, Value>>,
        socket: &mut Socket,
    ) -> Result<(), Ended> {
        if self.initialised {
            return Err(
                closing(CloseCode::TooManyInits, "Too many initialisation requests").into(),
            );
        }
        self.initialised = true;
        let token = payload
            .as_ref()
            .and_then(init_token)
            .or_else(|| self.header_token.take());
        let Some(token) = token else {
            return Err(closing(
                CloseCode::Forbidden,
                "Forbidden: no API token; send {\"Authorization\": \"Bearer <token>\"} \
                 in the connection_init payload",
            )
            .into());
        };
        if token.is_empty() || self.app.state.view_for(&token).is_none() {
            return Err(closing(CloseCode::Forbidden, "Forbidden: unknown API token").into());
        }
        self.token = Some(token);
        self.send(socket, "connection_ack", None, None).await?;
        if self.protocol == Protocol::Legacy {
            // Its clients start watching for keep-alives at the first.
            self.send(socket, "ka", None, None).await?;
        }
        Ok(())
    }

    async fn subscribe(
        &mut self,
        id: String,
        request: async_graphql::Request,
        socket: &mut Socket,
    ) -> Result<(), Ended> {
        if self.token.is_none() {
            return Err(closing(
                CloseCode::Unauthorized,
                "Unauthorized: an operation before connection_ack",
            )
            .into());
        }
        if self.operations.contains_key(&id) {
            return Err(closing(
                CloseCode::SubscriberExists,
                format!("Subscriber for {id} already exists"),
            )
            .into());
        }
        let most = self.settings.max_subscriptions;
        if self.operations.len() >= most {
            let message = format!(
                "this connection holds {most} operations, the most \
                 api.websocket.max_subscriptions allows; complete one first"
            );
            return self
                .refuse(&id, Code::TooManySubscriptions, &message, socket)
                .await;
        }
        // A reload may have removed the token since the connection began.
        let view = (self.token.as_deref()).and_then(|t| self.app.state.view_for(t));
        let Some(view) = view else {
            let message = "this connection's API token is no longer valid; connect again";
            return self
                .refuse(&id, Code::Unauthenticated, message, socket)
                .await;
        };
        // A persisted query as over HTTP: its text filled in before the
        // schema sees it, or refused with the same codes.
        let mut request = request;
        if let Err(refusal) = persisted_query(&self.app, &mut request) {
            return (self.refuse(&id, refusal.code(), &refusal.to_string(), socket)).await;
        }
        let results = self
            .app
            .schema
            .execute_stream(prepared(&self.app, Some(view), request));
        self.start(id, results);
        Ok(())
    }

    /// Holds `results` as operation `id` until they end or it is completed.
    fn start(&mut self, id: String, results: BoxStream<'static, async_graphql::Response>) {
        self.serials += 1;
        let serial = self.serials;
        let (abort, registration) = AbortHandle::new_pair();
        let end = Outcome {
            serial,
            id: id.clone(),
            response: None,
        };
        let tagged = {
            let id = id.clone();
            results
                .map(move |r| Outcome {
                    serial,
                    id: id.clone(),
                    response: Some(r),
                })
                .chain(stream::once(async move { end }))
        };
        self.results
            .push(Abortable::new(tagged, registration).boxed());
        self.operations.insert(
            id,
            Operation {
                serial,
                abort,
                answered: false,
            },
        );
    }

    /// Stops operation `id`; whether it was running.
    fn end(&mut self, id: &str) -> bool {
        match self.operations.remove(id) {
            Some(op) => {
                op.abort.abort();
                true
            }
            None => false,
        }
    }

    async fn on_outcome(&mut self, outcome: Outcome, socket: &mut Socket) -> Result<(), Ended> {
        let Outcome {
            serial,
            id,
            response,
        } = outcome;
        let Some(op) = (self.operations.get_mut(&id)).filter(|op| op.serial == serial) else {
            return Ok(());
        };
        let Some(response) = response else {
            self.operations.remove(&id);
            return self.send(socket, "complete", Some(&id), None).await;
        };
        let first = !std::mem::replace(&mut op.answered, true);
        let failed =
            first && response.data == async_graphql::Value::Null && !response.errors.is_empty();
        if failed && self.protocol == Protocol::TransportWs {
            // It could not start (validation, a limit, auth, a bad
            // argument): graphql-transport-ws says so with `error`, which
            // ends the operation, rather than `next` and `complete`.
            self.end(&id);
            let errors = serde_json::to_value(&response.errors).map_err(internal)?;
            return self.send(socket, "error", Some(&id), Some(errors)).await;
        }
        match self.next_message(&id, &response) {
            Ok(text) => self.write(socket, Message::Text(text)).await,
            Err(Unwritten::TooLarge) => {
                self.end(&id);
                let message = too_large(self.app.max_answer);
                self.refuse(&id, Code::AnswerTooLarge, &message, socket)
                    .await
            }
            Err(Unwritten::Failed(e)) => Err(internal(e)),
        }
    }

    /// The `next` (legacy: `data`) message of `response`, unless its payload
    /// is over `api.limits.max_answer`, found as it is written.
    fn next_message(
        &self,
        id: &str,
        response: &async_graphql::Response,
    ) -> Result<Utf8Bytes, Unwritten> {
        let kind = match self.protocol {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        };
        let id = serde_json::to_string(id).map_err(Unwritten::Failed)?;
        let mut out = BytesMut::new();
        out.extend_from_slice(format!("{{\"type\":\"{kind}\",\"id\":{id},\"payload\":").as_bytes());
        let mut out = json_within(out, response, self.app.max_answer)?;
        out.extend_from_slice(b"}");
        let text = Utf8Bytes::try_from(out.freeze());
        // serde_json writes UTF-8 only.
        text.map_err(|e| Unwritten::Failed(serde::de::Error::custom(e)))
    }

    /// Ends operation `id` with an `error` of `code`, the connection kept.
    async fn refuse(
        &mut self,
        id: &str,
        code: Code,
        message: &str,
        socket: &mut Socket,
    ) -> Result<(), Ended> {
        let error = coded_error(code, message);
        let payload = match self.protocol {
            Protocol::TransportWs => json!([error]),
            // The legacy protocol's error payload is one error.
            Protocol::Legacy => error,
        };
        self.send(socket, "error", Some(id), Some(payload)).await
    }

    async fn ping(&mut self, socket: &mut Socket) -> Result<(), Ended> {
        // A reload may have removed the token: what it opened ends within a
        // ping interval.
        let valid = (self.token.as_deref()).is_some_and(|t| self.app.state.view_for(t).is_some());
        if !valid {
            return Err(closing(
                CloseCode::Forbidden,
                "Forbidden: the connection's API token is no longer valid",
            )
            .into());
        }
        match self.protocol {
            Protocol::TransportWs => self.send(socket, "ping", None, None).await,
            Protocol::Legacy => {
                // `ka` needs no answer; the ping frame gets one from any
                // WebSocket stack, so a live legacy client is heard.
                self.send(socket, "ka", None, None).await?;
                self.write(socket, Message::Ping(Bytes::new())).await
            }
        }
    }

    async fn send(
        &mut self,
        socket: &mut Socket,
        kind: &str,
        id: Option<&str>,
        payload: Option<Value>,
    ) -> Result<(), Ended> {
        let mut message = Map::new();
        message.insert("type".into(), kind.into());
        if let Some(id) = id {
            message.insert("id".into(), id.into());
        }
        if let Some(payload) = payload {
            message.insert("payload".into(), payload);
        }
        let text = Value::Object(message).to_string();
        self.write(socket, Message::Text(text.into())).await
    }

    /// Writes `message` out. A client that has not read it after as long
    /// as it may stay silent is gone: the connection is dropped rather than
    /// the message kept.
    async fn write(&mut self, socket: &mut Socket, message: Message) -> Result<(), Ended> {
        match timeout(self.settings.idle_timeout, socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Ended::Gone),
        }
    }
}

fn internal(e: serde_json::Error) -> Ended {
    tracing::error!(error = %e, "a WebSocket answer could not be written");
    closing(CloseCode::Internal, "Internal server error").into()
}

/// After a close frame: stops writing, and discards what the client still
/// sends until it hangs up, for at most [`LINGER`].
async fn linger(mut socket: Socket) {
    let io = socket.get_mut();
    let _ = timeout(LINGER, async {
        io.shutdown().await?;
        let mut discard = [0u8; 8192];
        while io.read(&mut discard).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_close_frame_on_a_character_boundary() {
        let long = format!("Subscriber for {} already exists", "é".repeat(100));
        let c = closing(CloseCode::SubscriberExists, long);
        assert!(c.reason.len() <= MAX_REASON);
        assert!(
            c.reason.len() >= MAX_REASON - 1,
            "cut no shorter than needed"
        );
        assert_eq!(
            closing(CloseCode::Forbidden, "short").reason,
            "short",
            "a short reason is kept whole"
        );
    }

    #[test]
    fn messages_are_checked_as_graphql_ws_checks_them() {
        let ok = |p, m: &str| {
            parse(p, m.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let t = Protocol::TransportWs;
        assert_eq!(ok(t, r#"{"type":"connection_init"}"#), Ok(()));
        assert_eq!(ok(t, r#"{"type":"ping","payload":null}"#), Ok(()));
        assert!(
            ok(t, r#"{"type":"ping","payload":3}"#)
                .unwrap_err()
                .contains("payload")
        );
        assert!(
            ok(
                t,
                r#"{"type":"subscribe","id":"","payload":{"query":"{a}"}}"#
            )
            .is_err()
        );
        assert!(ok(t, r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#).is_err());
        assert!(
            ok(
                t,
                r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":[]}}"#
            )
            .is_err()
        );
        assert!(ok(t, r#"{"type":"start","id":"1","payload":{"query":"{a}"}}"#).is_err());
        assert!(ok(t, "[1]").unwrap_err().contains("object"));
        assert!(ok(t, "{").unwrap_err().contains("JSON"));
        let l = Protocol::Legacy;
        assert_eq!(
            ok(l, r#"{"type":"start","id":"1","payload":{"query":"{a}"}}"#),
            Ok(())
        );
        assert_eq!(ok(l, r#"{"type":"stop","id":"1"}"#), Ok(()));
        assert!(ok(l, r#"{"type":"ping"}"#).is_err());
    }
}
