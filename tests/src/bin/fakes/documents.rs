//! The two document services of the demo's Acme flow, in the example
//! connector's wire format (see `plugins/example/src/lib.rs`): an intake
//! service and the warehouse loader downstream of it. Over the eight phases
//! of the demo's cycle: two healthy; the warehouse lagging 2% of the ids
//! (WARNING) for two, then 10% (UNHEALTHY) for one; healthy again; intake
//! updates stalling (freshness WARNING, then UNHEALTHY); intake answering 503
//! (UNKNOWN after retries).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Intake,
    Warehouse,
}

struct Fake {
    side: Side,
    token: String,
    started: Instant,
    started_wall: SystemTime,
    phase: Duration,
}

impl Fake {
    /// The phase (0..8) and the seconds since start.
    fn now(&self) -> (u64, u64) {
        let secs = self.started.elapsed().as_secs();
        ((secs / self.phase.as_secs().max(1)) % 8, secs)
    }

    /// Ids the intake has received: 500, growing by 2 every 10 s.
    fn intake_ids(secs: u64) -> usize {
        500 + 2 * (secs / 10) as usize
    }

    fn ids(&self) -> Vec<String> {
        let (phase, secs) = self.now();
        let n = Self::intake_ids(secs);
        let have = match (self.side, phase) {
            (Side::Warehouse, 2 | 3) => n - n / 50,
            (Side::Warehouse, 4) => n - n / 10,
            _ => n,
        };
        (0..have).map(|i| format!("doc-{i:06}")).collect()
    }

    fn updated_at(&self) -> String {
        let (phase, secs) = self.now();
        let at = if self.side == Side::Intake && phase == 6 {
            // Stalled since the phase began.
            secs - secs % self.phase.as_secs().max(1)
        } else {
            secs
        };
        let t = self.started_wall + Duration::from_secs(at);
        chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// Refuses a request without the token, or every request in the outage.
    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        let (phase, _) = self.now();
        if self.side == Side::Intake && phase == 7 {
            return Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "maintenance"})),
                )
                    .into_response(),
            );
        }
        let expected = format!("Bearer {}", self.token);
        let ok = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
        (!ok).then(|| {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "unauthorized"})),
            )
                .into_response()
        })
    }
}

async fn stats(
    State(fake): State<Arc<Fake>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = fake.refuse(&headers) {
        return refused;
    }
    if tenant != "acme" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "tenant not found"})),
        )
            .into_response();
    }
    let ids = fake.ids();
    let (_, secs) = fake.now();
    // A parse error now and then, with the document it concerns.
    let failed = (secs / 30) % 3;
    let errors: Vec<Value> = (0..failed)
        .map(|i| {
            json!({
                "kind": "parse",
                "message": "invalid date in field published_at",
                "document_id": format!("doc-{:06}", (secs + i * 7) % 500),
                "log_url": format!("http://127.0.0.1/logs/{secs}-{i}"),
                "at": fake.updated_at(),
            })
        })
        .collect();
    Json(json!({
        "documents": {"expected": null, "received": ids.len(), "failed": failed},
        "last_received": ids.last().map(|id| json!({"id": id, "at": fake.updated_at()})),
        "updated_at": fake.updated_at(),
        "errors": errors,
    }))
    .into_response()
}

async fn ids(
    State(fake): State<Arc<Fake>>,
    Path(_tenant): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = fake.refuse(&headers) {
        return refused;
    }
    let ids = fake.ids();
    let start: usize = query
        .get("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 10_000);
    let start = start.min(ids.len());
    let end = (start + limit).min(ids.len());
    let next = (end < ids.len()).then(|| end.to_string());
    Json(json!({"ids": ids[start..end], "next_cursor": next})).into_response()
}

async fn serve(addr: SocketAddr, fake: Fake) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/v1/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/v1/tenants/{tenant}/stats", get(stats))
        .route("/v1/tenants/{tenant}/documents/ids", get(ids))
        .with_state(Arc::new(fake));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

/// Serves the intake on `intake` and the warehouse on `warehouse`, both
/// expecting `token`, phases of `phase` counted from now.
pub async fn serve_both(
    intake: SocketAddr,
    warehouse: SocketAddr,
    token: String,
    phase: Duration,
) -> std::io::Result<()> {
    let (started, started_wall) = (Instant::now(), SystemTime::now());
    let fake = |side| Fake {
        side,
        token: token.clone(),
        started,
        started_wall,
        phase,
    };
    tokio::try_join!(
        serve(intake, fake(Side::Intake)),
        serve(warehouse, fake(Side::Warehouse)),
    )?;
    Ok(())
}
