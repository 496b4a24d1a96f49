//! A GraphQL client for tests and benchmarks: POST over HTTP/1.1 and
//! subscriptions over WebSocket in either subprotocol, against a daemon on
//! loopback.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// An HTTP client for one API base URL (`http://127.0.0.1:PORT`).
#[derive(Clone)]
pub struct Client {
    base: String,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

/// An HTTP answer: status (0 when the server did not answer) and JSON body
/// (`Value::Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// `data`, failing the test when the answer carries errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The `extensions.code` of each error.
    pub fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["extensions"]["code"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Client {
    pub fn new(base: impl Into<String>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client {
            base: base.into(),
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `body` to `path` with `method`, with the bearer `token` if any.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        match self.send_raw(method, path, token, body).await {
            Ok((status, bytes)) => Answer {
                status,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                text: String::from_utf8_lossy(&bytes).into_owned(),
            },
            // Status 0: no answer (nothing listening yet, connection reset).
            Err(e) => Answer {
                status: 0,
                body: Value::Null,
                text: e,
            },
        }
    }

    /// The status and body bytes, unparsed (for load tests).
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), String> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self
            .http
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes))
    }

    /// Runs a GraphQL query or mutation.
    pub async fn query(&self, token: Option<&str>, query: &str, variables: Value) -> Answer {
        self.send("POST", "/graphql", token, request_body(query, variables))
            .await
    }

    /// Runs a query and returns only the status and the answer's size, without
    /// parsing it: a load generator's view.
    pub async fn query_size(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, usize) {
        match self
            .send_raw("POST", "/graphql", token, request_body(query, variables))
            .await
        {
            Ok((status, body)) => (status, body.len()),
            Err(_) => (0, 0),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, Vec::new()).await
    }
}

fn request_body(query: &str, variables: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"query": query, "variables": variables})).unwrap()
}

/// The WebSocket subprotocols of GraphQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (graphql-ws library).
    TransportWs,
    /// `graphql-ws` (the legacy subscriptions-transport-ws).
    LegacyWs,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// A status page's query: a tenant's flows with the health of every system,
/// check and asset, counts, freshness and history bars.
pub const DASHBOARD: &str = r#"
query Dashboard($search: String) {
  tenants(search: $search, first: 10) {
    edges { cursor node {
      id key name health { status since }
      flows(first: 100) { nodes {
        id key name health { status reasons { rule status message childId } }
        links { runbook }
        upstream { key name health { status } }
        downstream {
          key name kind health { status }
          checks {
            key connector schedule lastSuccess health { status }
            assets(first: 10) { nodes {
              id key kind
              counts { expected received missing errored }
              freshness { updatedAt ageSeconds }
              health { status reasons { rule message } }
              history(days: 3) { day status uptimePercent runs }
            } }
          }
        }
        history(days: 90) { day status uptimePercent }
      } }
    } }
    pageInfo { hasNextPage }
  }
}"#;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One subscription on its own WebSocket.
pub struct Subscription {
    socket: Socket,
    protocol: Protocol,
}

/// Why a subscription could not start.
#[derive(Debug)]
pub enum Refused {
    /// The server closed the connection (e.g. 4403 on a bad token).
    Closed(String),
    /// The server answered the subscribe with errors.
    Errors(Value),
}

impl Subscription {
    /// Connects to `base` (http://...), sends `connection_init` with the
    /// token, and subscribes with `query`.
    pub async fn start(
        base: &str,
        protocol: Protocol,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Subscription, Refused> {
        let url = format!("{}/graphql", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.name().parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connect");
        let payload = match token {
            Some(t) => json!({"Authorization": format!("Bearer {t}")}),
            None => json!({}),
        };
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        loop {
            match next_json(&mut socket).await {
                Ok(m) if m["type"] == "connection_ack" => break,
                Ok(m) if m["type"] == "ka" => continue,
                Ok(m) => return Err(Refused::Errors(m)),
                Err(closed) => return Err(Refused::Closed(closed)),
            }
        }
        let start = match protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::LegacyWs => "start",
        };
        send(
            &mut socket,
            json!({"id": "1", "type": start, "payload": {"query": query, "variables": variables}}),
        )
        .await;
        Ok(Subscription { socket, protocol })
    }

    /// The next payload's `data`, or the errors, within `timeout`; `None`
    /// when nothing came.
    pub async fn next(&mut self, timeout: Duration) -> Option<Result<Value, Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = tokio::time::timeout_at(deadline, next_json(&mut self.socket))
                .await
                .ok()?
                .ok()?;
            let data_type = match self.protocol {
                Protocol::TransportWs => "next",
                Protocol::LegacyWs => "data",
            };
            match m["type"].as_str() {
                Some(t) if t == data_type => {
                    let payload = &m["payload"];
                    return Some(match payload.get("errors") {
                        Some(errors) => Err(errors.clone()),
                        None => Ok(payload["data"].clone()),
                    });
                }
                Some("error") => return Some(Err(m["payload"].clone())),
                Some("complete") => return None,
                _ => continue,
            }
        }
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("WebSocket send");
}

/// The next JSON text message; `Err` with the close reason when closed.
async fn next_json(socket: &mut Socket) -> Result<Value, String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) => {
                return Ok(serde_json::from_str(&t).unwrap_or(Value::Null));
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(frame
                    .map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default());
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed".into()),
        }
    }
}
