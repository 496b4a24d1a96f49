//! The outgoing-request hook: the only way a plugin reaches the network.
//!
//! A request leaves only when a grant of the check allows its scheme, host and
//! port. A granted *name* must also resolve to public addresses only: a name
//! that resolves to a loopback, private or link-local address is refused unless
//! the grant spells out that address, so DNS cannot be used to reach internal
//! services. Plain-HTTP requests are then sent to the address that was checked
//! (no second lookup to rebind); HTTPS relies on certificate validation for the
//! name. Timeouts are clamped to what is left of the run's deadline; the run's
//! request count, request and response body bytes and open connections are
//! capped, and so are the host's open connections over all runs (each is a
//! file descriptor: a plugin must not starve the API of them).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::logs::PluginLog;
use super::run::{Incidents, Violation};
use super::sandbox::{Destination, Grants, Limits, internal_address_kind};

/// How much of a denied request's body is read (and thrown away) so the guest
/// sees the denial rather than a reset connection.
const DENIED_BODY_DRAIN: usize = 1 << 20;
/// Largest write into an outgoing body (see `p2_outgoing_body_chunk_size`).
const OUTGOING_BODY_CHUNK: usize = 64 << 10;

/// Why a request was refused; its `Display` tells the operator what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    NotGranted,
    InternalAddress { address: String, kind: &'static str },
    UnsupportedUri,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// Per-run state of the hook.
pub(crate) struct HttpGuard {
    grants: Arc<Grants>,
    deadline: Instant,
    max_requests: u32,
    max_response_bytes: u64,
    max_request_bytes: u64,
    max_connections: u32,
    requests: AtomicU32,
    response_bytes: Arc<AtomicU64>,
    request_bytes: Arc<AtomicU64>,
    /// This run's open connections.
    connections: Arc<Semaphore>,
    /// The host's open connections, shared by every run.
    host_connections: Arc<Semaphore>,
    incidents: Arc<Incidents>,
    denier: Denier,
}

impl HttpGuard {
    pub(crate) fn new(
        grants: Arc<Grants>,
        limits: &Limits,
        deadline: Instant,
        host_connections: Arc<Semaphore>,
        incidents: Arc<Incidents>,
        log: Arc<PluginLog>,
    ) -> Self {
        Self {
            grants,
            deadline,
            max_requests: limits.http_requests,
            max_response_bytes: limits.http_response_bytes,
            max_request_bytes: limits.http_request_bytes,
            max_connections: limits.http_connections,
            requests: AtomicU32::new(0),
            response_bytes: Arc::new(AtomicU64::new(0)),
            request_bytes: Arc::new(AtomicU64::new(0)),
            connections: Arc::new(Semaphore::new(limits.http_connections as usize)),
            host_connections,
            denier: Denier {
                incidents: incidents.clone(),
                log,
            },
            incidents,
        }
    }

    /// Decides, before any I/O, whether the request may leave; returns the
    /// destination, whether its name must be resolved and checked, and the
    /// run's connection permit it holds until the connection closes.
    fn admit(
        &self,
        uri: &http::Uri,
    ) -> Result<(Destination, bool, OwnedSemaphorePermit), HttpError> {
        let Some(dest) = Destination::from_uri(uri) else {
            return Err(self.denier.deny(
                uri.to_string(),
                String::new(),
                DenyReason::UnsupportedUri,
            ));
        };
        let Some(grant) = self.grants.grant_for(&dest) else {
            return Err(self.denier.deny(
                dest.to_string(),
                dest.as_grant(),
                DenyReason::NotGranted,
            ));
        };
        let sent = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if sent > self.max_requests {
            self.incidents.record(Violation::HttpRequests {
                limit: self.max_requests,
            });
            return Err(HttpError::ConnectionLimitReached);
        }
        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
            self.incidents.record(Violation::HttpConnections {
                limit: self.max_connections,
            });
            return Err(HttpError::ConnectionLimitReached);
        };
        let check_name = !grant.names_address() && dest.ip().is_none();
        Ok((dest, check_name, permit))
    }
}

impl WasiHttpHooks for HttpGuard {
    /// What one outgoing body may buffer in the host is two chunks: 64 KiB
    /// chunks (wasmtime's default is 1 MiB) keep that at 128 KiB a body.
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_BODY_CHUNK
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let admitted = self.admit(request.uri());
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let options = clamp(options, remaining);
        let counter = ByteBudget {
            used: self.response_bytes.clone(),
            limit: self.max_response_bytes,
            incidents: self.incidents.clone(),
            violation: Violation::HttpResponseBytes {
                limit: self.max_response_bytes,
            },
            error: HttpError::HttpResponseBodySize,
        };
        let (dest, check_name, run_permit) = match admitted {
            Ok(admitted) => admitted,
            Err(err) => {
                return Box::new(async move {
                    // Read the body so a streaming guest sees the error, not a reset.
                    let body = std::mem::replace(request.body_mut(), empty_body());
                    let _ = http_body_util::Limited::new(body, DENIED_BODY_DRAIN)
                        .collect()
                        .await;
                    Err(err)
                });
            }
        };
        let sent = ByteBudget {
            used: self.request_bytes.clone(),
            limit: self.max_request_bytes,
            incidents: self.incidents.clone(),
            violation: Violation::HttpRequestBytes {
                limit: self.max_request_bytes,
            },
            error: HttpError::HttpRequestBodySize,
        };
        let request = request.map(|body| {
            LimitedBody {
                inner: body,
                budget: sent,
            }
            .boxed_unsync()
        });
        let host_connections = self.host_connections.clone();
        let incidents = self.incidents.clone();
        let resolved = check_name.then(|| resolve(dest.clone(), remaining));
        let denier = self.denier.clone();
        Box::new(async move {
            let mut request = request;
            // Other runs' connections: wait for one to close, within the
            // run's time (running out of it is the run's deadline).
            let Ok(Ok(host_permit)) =
                tokio::time::timeout(remaining, host_connections.acquire_owned()).await
            else {
                incidents.record(Violation::Deadline);
                return Err(HttpError::ConnectionLimitReached);
            };
            if let Some(resolved) = resolved {
                let addr = match resolved.await {
                    Ok(addr) => addr,
                    Err(Resolve::Internal { address, kind }) => {
                        let grant = Destination {
                            host: address.clone(),
                            ..dest.clone()
                        }
                        .as_grant();
                        let reason = DenyReason::InternalAddress { address, kind };
                        return Err(denier.deny(dest.to_string(), grant, reason));
                    }
                    Err(Resolve::Failed(err)) => return Err(err),
                };
                if dest.scheme == super::sandbox::Scheme::Http {
                    pin_to_address(&mut request, addr);
                }
            }
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            // The connection lives as long as its I/O task: the permits too.
            let io = async move {
                let _permits = (run_permit, host_permit);
                io.await
            };
            let response = response.map(|body| {
                LimitedBody {
                    inner: body.boxed_unsync(),
                    budget: counter,
                }
                .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// Refuses a request: records why for the run's result and tells the log.
#[derive(Clone)]
struct Denier {
    incidents: Arc<Incidents>,
    log: Arc<PluginLog>,
}

impl Denier {
    fn deny(&self, dest: String, grant: String, reason: DenyReason) -> HttpError {
        let violation = Violation::HostDenied {
            dest,
            grant,
            reason,
        };
        let message = format!("HTTP request denied: {violation}");
        self.log.line(super::LogLevel::Warn, "host", &message, &[]);
        self.incidents.record(violation);
        HttpError::HttpRequestDenied
    }
}

enum Resolve {
    Internal { address: String, kind: &'static str },
    Failed(HttpError),
}

/// Resolves a granted name and insists every address it has is public.
async fn resolve(dest: Destination, within: Duration) -> Result<SocketAddr, Resolve> {
    let lookup = tokio::net::lookup_host((dest.host.as_str(), dest.port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(within, lookup).await {
        Err(_) => return Err(Resolve::Failed(HttpError::DnsTimeout)),
        Ok(Err(_)) => {
            return Err(Resolve::Failed(HttpError::DnsError {
                rcode: Some("address not found".into()),
                info_code: None,
            }));
        }
        Ok(Ok(addrs)) => addrs.collect(),
    };
    if let Some((addr, kind)) = addrs
        .iter()
        .find_map(|a| internal_address_kind(a.ip()).map(|kind| (a, kind)))
    {
        return Err(Resolve::Internal {
            address: addr.ip().to_string(),
            kind,
        });
    }
    addrs
        .first()
        .copied()
        .ok_or(Resolve::Failed(HttpError::DestinationNotFound))
}

/// Sends the request to the address that was checked; the `Host` header still
/// carries the name.
fn pin_to_address(request: &mut http::Request<WasiBody>, addr: SocketAddr) {
    let mut parts = request.uri().clone().into_parts();
    if let Ok(authority) = addr.to_string().parse() {
        parts.authority = Some(authority);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
}

fn clamp(options: Option<RequestOptions>, remaining: Duration) -> RequestOptions {
    let options = options.unwrap_or_default();
    let cap = |t: Option<Duration>| Some(t.map_or(remaining, |t| t.min(remaining)));
    RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    }
}

fn empty_body() -> WasiBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The run's allowance of body bytes one way, shared by all its requests.
struct ByteBudget {
    used: Arc<AtomicU64>,
    limit: u64,
    incidents: Arc<Incidents>,
    /// What is recorded, and what the body fails with, once it is spent.
    violation: Violation,
    error: fn(Option<u64>) -> HttpError,
}

/// A body that stops once the run's byte allowance is spent.
struct LimitedBody {
    inner: WasiBody,
    budget: ByteBudget,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            let budget = &self.budget;
            let used =
                budget.used.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
            if used > budget.limit {
                budget.incidents.record(budget.violation.clone());
                return Poll::Ready(Some(Err((budget.error)(Some(budget.limit)))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_clamped_to_the_deadline() {
        let remaining = Duration::from_secs(5);
        let clamped = clamp(None, remaining);
        assert_eq!(clamped.connect_timeout, Some(remaining));
        assert_eq!(clamped.between_bytes_timeout, Some(remaining));
        let shorter = RequestOptions {
            connect_timeout: Some(Duration::from_secs(1)),
            first_byte_timeout: Some(Duration::from_secs(60)),
            between_bytes_timeout: None,
        };
        let clamped = clamp(Some(shorter), remaining);
        assert_eq!(clamped.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(clamped.first_byte_timeout, Some(remaining));
    }
}
