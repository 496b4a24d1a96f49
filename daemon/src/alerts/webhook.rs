//! The webhook channel: a [`Message`] as a versioned JSON payload (its JSON
//! Schema is [`SCHEMA`], printed by `tributary alert-schema`), signed as
//! Standard Webhooks v1, and the receiver's answer classified into an
//! [`Outcome`].
//!
//! Signing: `webhook-id` is the message's id (the same on every attempt, the
//! receiver's idempotency key), `webhook-timestamp` the attempt's unix
//! seconds, `webhook-signature` `v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">` under each configured secret (two while one is
//! rotated, space separated). A `whsec_` secret is the base64 of the key.
//! [`verify`] is the receiver's side, for tests and as the reference.
//!
//! This module does no I/O and must not decide when or whether to send; the
//! keys never appear in `Debug`.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::message::{AlertState, Message, Outcome};
use super::{retry_after, wording};
use crate::store::entity_key;

/// The payload's version: `data.version`. A change that could break a
/// receiver makes a new version; fields are only added within one
/// (`owner` and `labels` of each alert were, in version 1).
pub const PAYLOAD_VERSION: u32 = 1;
/// The JSON Schema of the payload.
pub const SCHEMA: &str = include_str!("webhook.schema.json");
/// Standard Webhooks' secret prefix.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a receiver lets a timestamp be from its clock (the reference
/// libraries' tolerance).
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// One signing key, decoded from its `whsec_` secret.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

/// Why a signing secret is refused. Never shows the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a signing secret is whsec_ followed by base64")]
    Prefix,
    #[error("the part after whsec_ is not base64")]
    Base64,
    #[error("the key must be 24 to 64 bytes, got {0}")]
    Length(usize),
}

impl SigningKey {
    pub fn new(secret: &str) -> Result<Self, KeyError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(KeyError::Prefix)?;
        let key = BASE64.decode(encoded).map_err(|_| KeyError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(KeyError::Length(key.len()));
        }
        Ok(Self(key))
    }

    /// `v1,<base64 signature>` of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = hmac_sha256(
            &self.0,
            &[
                id.as_bytes(),
                b".",
                timestamp.to_string().as_bytes(),
                b".",
                body,
            ],
        );
        format!("v1,{}", BASE64.encode(mac))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// HMAC (RFC 2104) over SHA-256 of the concatenated `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The signed POST that delivers `message` to `url`, timestamped `now`.
pub fn request(
    url: &Uri,
    keys: &[SigningKey],
    message: &Message,
    now: SystemTime,
) -> http::Request<Vec<u8>> {
    let body = payload(message).to_string().into_bytes();
    let timestamp = unix_seconds(now);
    let signatures: Vec<String> = keys
        .iter()
        .map(|key| key.sign(&message.id, timestamp, &body))
        .collect();
    let mut request = http::Request::new(body);
    *request.method_mut() = Method::POST;
    *request.uri_mut() = url.clone();
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Ids are made by the outbox from safe characters; a stored id that is
    // not a header value would be corruption, and sends no id rather than
    // a wrong one.
    if let Ok(id) = HeaderValue::from_str(&message.id) {
        headers.insert("webhook-id", id);
    }
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    if let Ok(signature) = HeaderValue::from_str(&signatures.join(" ")) {
        headers.insert("webhook-signature", signature);
    }
    request
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn iso(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reasons listed per alert, the worst first; each cut to [`MAX_REASON`]
/// bytes. With the message's own cap on alerts (`grouping::MAX_LISTED`)
/// and entity keys' (1 KiB), a body stays well under a megabyte however
/// large the group or long a plugin's messages.
const MAX_REASONS: usize = 5;
const MAX_REASON: usize = 500;

/// The JSON body: Standard Webhooks' `{type, timestamp, data}`.
pub fn payload(message: &Message) -> Value {
    let state = match message.state {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    };
    let alerts: Vec<Value> = message
        .alerts
        .iter()
        .map(|alert| {
            json!({
                "entity": {"kind": alert.entity.kind(), "key": entity_key(&alert.entity)},
                "path": alert.path.iter().map(|s| json!({
                    "kind": s.kind, "key": s.key, "name": wording::name(s),
                })).collect::<Vec<_>>(),
                "status": alert.status.as_str(),
                "previous": alert.previous.map(|s| s.as_str()),
                "reasons": alert.reasons.iter().take(MAX_REASONS).map(|r| json!({
                    "status": r.status.as_str(),
                    "message": wording::truncate(&wording::reason(r), MAX_REASON),
                })).collect::<Vec<_>>(),
                "counts": alert.counts.map(|c| json!({
                    "expected": c.expected, "received": c.received,
                    "missing": c.missing, "errored": c.errored,
                })),
                "since": iso(alert.since),
                "seq": alert.seq,
                "link": alert.link.as_deref().and_then(wording::web_link),
                "dedup_key": alert.dedup_key,
                "also_affected": alert.also_affected.iter().map(|s| json!({
                    "kind": s.kind, "key": s.key, "name": wording::name(s),
                })).collect::<Vec<_>>(),
                "owner": alert.owner,
                "labels": alert.labels,
            })
        })
        .collect();
    json!({
        "type": format!("health.alert.{state}"),
        "timestamp": iso(message.at),
        "data": {
            "version": PAYLOAD_VERSION,
            "id": message.id,
            "state": state,
            "group_key": message.group_key,
            "route": message.route,
            "summary": wording::headline(message),
            "alerts": alerts,
            "truncated_alerts": message.truncated,
        },
    })
}

/// What the receiver's answer means (Standard Webhooks: only 2xx is
/// success; a redirect is not followed; 410 disables the endpoint; 429,
/// 502, 503 and 504 throttle, honouring `Retry-After`).
pub fn classify(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Outcome {
    let code = status.as_u16();
    let said = |what: &str| format!("the receiver answered {code}: {what}");
    match code {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Disable {
            reason: said("gone; the channel is disabled until its definition changes"),
        },
        300..=399 => Outcome::Reject {
            reason: said("a redirect, not followed: point url at the receiver itself"),
        },
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after::from_headers(headers, now),
            reason: said("try again later"),
        },
        _ => Outcome::Reject {
            reason: said("the message was refused and will not be sent again"),
        },
    }
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or malformed webhook-id, webhook-timestamp or webhook-signature")]
    Headers,
    #[error("the timestamp is more than five minutes away from now")]
    Stale,
    #[error("no signature matches")]
    Signature,
}

/// The receiver's check: a `v1` signature under one of `keys` matches, and
/// the timestamp is within [`TOLERANCE`] of `now`.
pub fn verify(
    keys: &[SigningKey],
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err(VerifyError::Headers);
    };
    let timestamp: i64 = timestamp.parse().map_err(|_| VerifyError::Headers)?;
    let skew = unix_seconds(now).abs_diff(timestamp);
    if skew > TOLERANCE.as_secs() {
        return Err(VerifyError::Stale);
    }
    let ok = keys.iter().any(|key| {
        let expected = key.sign(id, timestamp, body);
        signatures
            .split(' ')
            .any(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()))
    });
    ok.then_some(()).ok_or(VerifyError::Signature)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;
    const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn the_spec_test_vector_signs_as_the_reference_library() {
        let key = SigningKey::new(SECRET).unwrap();
        assert_eq!(
            key.sign(ID, TS, BODY.as_bytes()),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn verification_takes_any_listed_signature_and_refuses_stale_or_forged() {
        let key = SigningKey::new(SECRET).unwrap();
        let other = SigningKey::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let at = |ts: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(ts as u64);
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", ID.parse().unwrap());
        headers.insert("webhook-timestamp", TS.to_string().parse().unwrap());
        let both = format!(
            "{} {}",
            other.sign(ID, TS, BODY.as_bytes()),
            key.sign(ID, TS, BODY.as_bytes())
        );
        headers.insert("webhook-signature", both.parse().unwrap());
        assert_eq!(
            verify(
                std::slice::from_ref(&key),
                &headers,
                BODY.as_bytes(),
                at(TS + 10)
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                std::slice::from_ref(&key),
                &headers,
                BODY.as_bytes(),
                at(TS + 301)
            ),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(&[key], &headers, b"{}", at(TS)),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn secrets_must_be_whsec_base64_of_a_key_long_enough() {
        assert!(SigningKey::new(SECRET).is_ok());
        assert_eq!(
            SigningKey::new("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap_err(),
            KeyError::Prefix
        );
        assert_eq!(SigningKey::new("whsec_!!").unwrap_err(), KeyError::Base64);
        assert_eq!(
            SigningKey::new("whsec_AAAA").unwrap_err(),
            KeyError::Length(3)
        );
    }

    #[test]
    fn answers_mean_what_the_standard_says() {
        let now = SystemTime::UNIX_EPOCH;
        let h = HeaderMap::new();
        assert_eq!(
            classify(StatusCode::NO_CONTENT, &h, now),
            Outcome::Delivered
        );
        assert!(matches!(
            classify(StatusCode::GONE, &h, now),
            Outcome::Disable { .. }
        ));
        assert!(matches!(
            classify(StatusCode::FOUND, &h, now),
            Outcome::Reject { .. }
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, &h, now),
            Outcome::Retry { after: None, .. }
        ));
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, now),
            Outcome::Retry {
                after: Some(Duration::from_secs(7)),
                reason: "the receiver answered 429: try again later".into()
            }
        );
    }
}
