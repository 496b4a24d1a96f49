//! Why a push was refused, as the HTTP answer a client reads: a status and a
//! JSON body whose `error.code` names the reason (the same word labels the
//! `tributary_push_refused` metric) and, for a bad body, every bad field.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::wire::FieldError;

#[derive(Debug)]
pub enum Refusal {
    /// 400: the body or query is wrong; every bad field by its pointer.
    Invalid(Vec<FieldError>),
    /// 401: no token, or one no push check knows.
    Unauthenticated(&'static str),
    /// 403: a token of another check, or a page of an origin not allowed.
    Forbidden { code: &'static str, message: String },
    /// 404: no push check of that id.
    UnknownCheck(String),
    /// 409: a request with the same `Idempotency-Key` is being stored.
    InProgress,
    /// 413: the body (or what it decompresses to) is over the check's limit.
    TooLarge { limit: u64, decompressed: bool },
    /// 413: an id set grew past the check's id limits (`limits.ids`,
    /// `limits.id_bytes`; it is dropped), or the token holds too many
    /// unfinished sets.
    TooManyIds(String),
    /// 413: an OpenLineage event would take its unfinished run over the
    /// check's `max_run_held`; nothing of it is held.
    RunTooLarge(String),
    /// 415: a media type or content encoding the API does not read.
    Unsupported(String),
    /// 429: the token's rate is spent; try again after this long.
    RateLimited { retry_after: Duration },
    /// 503: the daemon is stopping.
    Unavailable(String),
    /// 503: the unfinished OpenLineage runs of the check (or of all
    /// checks) hold all they may; try again after this long. 503 because
    /// the OpenLineage clients' HTTP transports retry it (honouring
    /// `Retry-After`) and not 429 (not retried by default).
    Full {
        message: String,
        retry_after: Duration,
    },
}

impl Refusal {
    /// The reason's code: the answer's `error.code` and the metric's label.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid",
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::Forbidden { code, .. } => code,
            Refusal::UnknownCheck(_) => "unknown_check",
            Refusal::InProgress => "in_progress",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::TooManyIds(_) => "too_many_ids",
            Refusal::RunTooLarge(_) => "run_too_large",
            Refusal::Unsupported(_) => "unsupported_media_type",
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::Unavailable(_) => "unavailable",
            Refusal::Full { .. } => "openlineage_full",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
            Refusal::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden { .. } => StatusCode::FORBIDDEN,
            Refusal::UnknownCheck(_) => StatusCode::NOT_FOUND,
            Refusal::InProgress => StatusCode::CONFLICT,
            Refusal::TooLarge { .. } | Refusal::TooManyIds(_) | Refusal::RunTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Refusal::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Unavailable(_) | Refusal::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Invalid(fields) => match fields.as_slice() {
                [one] => format!("{}: {}", pointer_name(&one.pointer), one.message),
                many => format!("{} fields are invalid (see fields)", many.len()),
            },
            Refusal::Unauthenticated(why) => (*why).to_owned(),
            Refusal::Forbidden { message, .. } => message.clone(),
            Refusal::UnknownCheck(check) => format!("no push check {check:?} is configured"),
            Refusal::InProgress => {
                "a request with this Idempotency-Key is being stored; retry it in a moment"
                    .to_owned()
            }
            Refusal::TooLarge {
                limit,
                decompressed: false,
            } => format!("the body is over the check's limit of {limit} bytes (push.max_body)"),
            Refusal::TooLarge {
                limit,
                decompressed: true,
            } => format!(
                "the body decompresses to more than the check's limit of {limit} bytes (push.max_body)"
            ),
            Refusal::Unsupported(message)
            | Refusal::Unavailable(message)
            | Refusal::TooManyIds(message)
            | Refusal::RunTooLarge(message)
            | Refusal::Full { message, .. } => message.clone(),
            Refusal::RateLimited { retry_after } => format!(
                "this token's rate (push.rate) is spent; retry after {}s",
                retry_seconds(*retry_after)
            ),
        }
    }
}

fn pointer_name(pointer: &str) -> &str {
    if pointer.is_empty() { "body" } else { pointer }
}

/// Whole seconds, at least 1, as `Retry-After` takes them.
fn retry_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({
            "code": self.code(),
            "message": self.message(),
        });
        if let Refusal::Invalid(fields) = &self {
            error["fields"] = serde_json::json!(fields);
        }
        let body = serde_json::json!({ "error": error });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Refusal::RateLimited { retry_after } | Refusal::Full { retry_after, .. } = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_seconds(*retry_after)),
            );
        }
        response
    }
}
