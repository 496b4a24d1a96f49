//! Fake of a Standard Webhooks receiver (`shared/reference/alerting.md`
//! (c)): it checks what a receiver must before taking a delivery, with the
//! spec's algorithm (`webhook-signature` is a `v1` HMAC-SHA256 of
//! `id.timestamp.body` under the `whsec_` secret; the timestamp within five
//! minutes of its clock) and refuses the rest with 401. It keeps every
//! attempt's id (to prove retries reuse it) and every body it took.
//!
//! A test tells it how to answer from now on ([`Answer`]): taken (204), an
//! error status (503, 410), 429 with `Retry-After`, a redirect, or a hang
//! longer than the daemon's timeout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use plugin_sdk::harness::{Recorded, Reply, TestServer};
use serde_json::Value;
use tributary::alerts::webhook::{SigningKey, verify};

/// A signing secret for tests (24 random bytes).
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Take,
    Status(u16),
    RetryAfter(u64),
    Redirect(String),
    Hang(Duration),
    /// Takes the delivery but answers only after this long: a sender
    /// stopped meanwhile never learns it was taken.
    TakeSlowly(Duration),
}

/// A delivery taken.
#[derive(Debug, Clone)]
pub struct Taken {
    pub id: String,
    pub body: Value,
}

impl Taken {
    pub fn state(&self) -> &str {
        self.body["data"]["state"].as_str().unwrap_or_default()
    }

    /// The keys of the entities the message lists.
    pub fn entities(&self) -> Vec<String> {
        self.body["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a["entity"]["key"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[derive(Debug)]
struct State {
    answer: Answer,
    /// The id of every signed attempt, in order.
    attempts: Vec<(String, SystemTime)>,
    taken: Vec<Taken>,
    /// Why each unsigned, forged or stale request was refused.
    refused: Vec<String>,
}

/// The fake; clones share its state.
#[derive(Clone)]
pub struct WebhookFake {
    keys: Arc<Vec<SigningKey>>,
    state: Arc<Mutex<State>>,
}

impl WebhookFake {
    /// A receiver that knows `secrets`.
    pub fn new(secrets: &[&str]) -> Self {
        Self {
            keys: Arc::new(
                secrets
                    .iter()
                    .map(|s| SigningKey::new(s).expect("a whsec_ secret"))
                    .collect(),
            ),
            state: Arc::new(Mutex::new(State {
                answer: Answer::Take,
                attempts: Vec::new(),
                taken: Vec::new(),
                refused: Vec::new(),
            })),
        }
    }

    pub async fn start(self) -> TestServer {
        TestServer::start(move |req| self.handle(req)).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("webhook fake lock")
    }

    /// How every request is answered from now on.
    pub fn answer(&self, answer: Answer) {
        self.lock().answer = answer;
    }

    pub fn taken(&self) -> Vec<Taken> {
        self.lock().taken.clone()
    }

    /// How many deliveries were taken: for a wait that looks often, without
    /// copying every body each time.
    pub fn taken_count(&self) -> usize {
        self.lock().taken.len()
    }

    /// Every signed attempt's id and when it came.
    pub fn attempts(&self) -> Vec<(String, SystemTime)> {
        self.lock().attempts.clone()
    }

    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.clone()
    }

    pub fn handle(&self, req: &Recorded) -> Reply {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &req.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let now = SystemTime::now();
        if let Err(err) = verify(&self.keys, &headers, &req.body, now) {
            self.lock().refused.push(err.to_string());
            return Reply::status(401);
        }
        let id = req.header("webhook-id").unwrap_or_default().to_owned();
        let mut state = self.lock();
        state.attempts.push((id.clone(), now));
        match state.answer.clone() {
            answer @ (Answer::Take | Answer::TakeSlowly(_)) => {
                let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                state.taken.push(Taken { id, body });
                let mut reply = Reply::status(204);
                if let Answer::TakeSlowly(after) = answer {
                    reply.delay = Some(after);
                }
                reply
            }
            Answer::Status(code) => Reply::status(code),
            Answer::RetryAfter(secs) => Reply::status(429).header("retry-after", &secs.to_string()),
            Answer::Redirect(to) => Reply::status(307).header("location", &to),
            Answer::Hang(how_long) => {
                let mut reply = Reply::status(204);
                reply.delay = Some(how_long);
                reply
            }
        }
    }
}
