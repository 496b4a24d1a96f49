//! An HTTP client over `wasi:http` (through `wstd`), made for calling JSON
//! APIs from a connector.
//!
//! Why not a general-purpose client? A connector's failures must be
//! *classified* so the daemon knows whether to retry, and the sandbox adds
//! failure modes of its own. [`RequestBuilder::send`] therefore returns a
//! [`ConnectorError`] whose class follows one rule set:
//!
//! | what happened | class |
//! | --- | --- |
//! | 401, 403 | `auth` |
//! | 408, 429, 5xx | `transient`, with `Retry-After` as `retry_after_ms` |
//! | other 4xx | `config` (wrong tenant, path, parameter...) |
//! | the check does not grant the host (`http-request-denied`) | `config` |
//! | timeout, refused or reset connection, DNS failure | `transient` |
//! | body not JSON / not what was expected, too large, TLS failure | `system` |
//!
//! The sandbox only lets a plugin reach the hosts its check grants
//! (`allowed_hosts`); a denied request fails fast with a `config` error that
//! says which origin was denied (the daemon's log says which grant to add).
//!
//! Every request has a timeout ([`DEFAULT_TIMEOUT`]) and a cap on the
//! response body ([`DEFAULT_MAX_RESPONSE_BYTES`]); redirects are followed (at
//! most [`MAX_REDIRECTS`], dropping credentials when the origin changes).
//!
//! ```ignore
//! use plugin_sdk::http::Client;
//!
//! #[derive(serde::Deserialize)]
//! struct Stats { received: u64 }
//!
//! let client = Client::new()
//!     .base_url("https://api.example.com")
//!     .bearer_auth(&cfg.token)
//!     .timeout(std::time::Duration::from_secs(10));
//! let stats: Stats = client
//!     .get("/v1/stats")
//!     .query("tenant", &cfg.tenant)
//!     .send()
//!     .await?
//!     .json()?;
//! let accepted: serde_json::Value = client
//!     .post("/v1/resync")
//!     .json(&serde_json::json!({ "ids": ["a", "b"] }))
//!     .send()
//!     .await?
//!     .json()?;
//! ```

use std::fmt::{self, Display};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler as wasi_handler;
use wasip2::http::types::{self as wasi_http, ErrorCode};
use wasip2::io::streams::StreamError;
use wstd::future::FutureExt as _;
use wstd::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use wstd::io::AsyncOutputStream;
use wstd::runtime::AsyncPollable;

use crate::ConnectorError;

pub use wstd::http::Method;

/// How long a request may take, from sending it to the last byte of the
/// response, unless set with [`Client::timeout`] or [`RequestBuilder::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body read unless set with
/// [`Client::max_response_bytes`]: 16 MiB. The host has its own limit too.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How many redirects a request follows before failing.
pub const MAX_REDIRECTS: usize = 5;

/// How much of an error response's body goes into the error message.
const ERROR_BODY_SNIPPET: usize = 300;

/// A reusable client: base URL, default headers (auth), timeout and response
/// cap shared by its requests. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base_url: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be credentials: list only the names.
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with no base URL, no auth, [`DEFAULT_TIMEOUT`] and
    /// [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub fn new() -> Self {
        Client {
            base_url: None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Resolve relative request URLs (`/v1/stats`) against this one
    /// (`https://api.example.com`, trailing slashes ignored).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.base_url = Some(url.trim_end_matches('/').to_string());
        self
    }

    /// A header sent with every request (a request's own header of the same
    /// name wins).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        set_header(&mut self.headers, name.into(), value.into());
        self
    }

    /// `Authorization: Bearer <token>` on every request.
    pub fn bearer_auth(self, token: impl Display) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// `Authorization: Basic <base64(user:password)>` on every request.
    pub fn basic_auth(self, user: impl Display, password: impl Display) -> Self {
        self.header("authorization", basic_auth_value(user, password))
    }

    /// The timeout of every request, from sending it to the last byte of the
    /// response. A timeout is a `transient` error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted; a larger one is a `system` error.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Start a request. `url` is absolute (`https://...`) or relative to the
    /// [`base_url`](Self::base_url).
    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        let (url, error) = match self.resolve(url.as_ref()) {
            Ok(url) => (url, None),
            Err(err) => (url.as_ref().to_string(), Some(err)),
        };
        RequestBuilder {
            method,
            url,
            headers: self.headers.clone(),
            query: Vec::new(),
            body: None,
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            error,
        }
    }

    /// Start a `GET`.
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Start a `POST`.
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Start a `PUT`.
    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Start a `PATCH`.
    pub fn patch(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// Start a `DELETE`.
    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// Start a `HEAD`.
    pub fn head(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    fn resolve(&self, url: &str) -> Result<String, ConnectorError> {
        if is_absolute(url) {
            return Ok(url.to_string());
        }
        match &self.base_url {
            Some(base) if url.starts_with('/') => Ok(format!("{base}{url}")),
            Some(base) if url.is_empty() => Ok(base.clone()),
            Some(base) => Ok(format!("{base}/{url}")),
            None => Err(ConnectorError::config(format_args!(
                "relative URL {url:?} but the HTTP client has no base URL"
            ))),
        }
    }
}

/// One request being prepared. Finish it with [`send`](Self::send).
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    max_response_bytes: usize,
    /// The first mistake made while building, reported by `send`.
    error: Option<ConnectorError>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &strip_query(&self.url))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    /// Set a header (replacing one of the same name).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        set_header(&mut self.headers, name.into(), value.into());
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: impl Display) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// `Authorization: Basic <base64(user:password)>`.
    pub fn basic_auth(self, user: impl Display, password: impl Display) -> Self {
        self.header("authorization", basic_auth_value(user, password))
    }

    /// Append `key=value` to the query string, percent-encoded.
    pub fn query(mut self, key: impl Into<String>, value: impl Display) -> Self {
        self.query.push((key.into(), value.to_string()));
        self
    }

    /// Send `value` as a JSON body (`Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.body = Some(body);
                self = self.header("content-type", "application/json");
            }
            Err(err) => {
                self.error
                    .get_or_insert(ConnectorError::system(format_args!(
                        "cannot encode the request body as JSON: {err}"
                    )));
            }
        }
        self
    }

    /// Send `pairs` as an `application/x-www-form-urlencoded` body (OAuth
    /// token endpoints and the like).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k.as_ref()), encode(v.as_ref())))
            .collect::<Vec<_>>()
            .join("&");
        self.body = Some(body.into_bytes());
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Send raw bytes as the body; set a `content-type` header yourself.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// This request's timeout (see [`Client::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This request's response cap (see [`Client::max_response_bytes`]).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Send the request and read the whole response; an error status (not
    /// 2xx) becomes a classified error (see the [module docs](self)).
    pub async fn send(self) -> Result<Response, ConnectorError> {
        self.send_any_status().await?.error_for_status()
    }

    /// Send the request and read the whole response, whatever its status.
    /// Transport failures are still errors.
    pub async fn send_any_status(self) -> Result<Response, ConnectorError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let mut url = self.url.clone();
        if !self.query.is_empty() {
            let query = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query);
        }
        let what = format!("{} {}", self.method, strip_query(&url));
        let timeout = self.timeout;
        let exchange = Exchange {
            method: self.method,
            url,
            headers: self.headers,
            body: self.body,
            timeout,
            max_response_bytes: self.max_response_bytes,
        };
        match exchange
            .run()
            .timeout(wstd::time::Duration::from(timeout))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::transient(format_args!(
                "{what}: timed out after {}",
                human_duration(timeout)
            ))),
        }
    }
}

/// A response read in full.
pub struct Response {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    /// `GET https://host/path` (no query: it may hold secrets), for messages.
    what: String,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("request", &self.what)
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header's value, when present and valid text (names are
    /// case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.body
    }

    /// The body as UTF-8 text; anything else is a `system` error.
    pub fn text(&self) -> Result<&str, ConnectorError> {
        std::str::from_utf8(&self.body).map_err(|err| {
            ConnectorError::system(format_args!(
                "{}: the response body is not UTF-8 text: {err}",
                self.what
            ))
        })
    }

    /// Parse the body as JSON into `T`; a body that does not parse (or does
    /// not have the expected shape) is a `system` error naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        crate::json::decode(&self.body).map_err(|err| {
            ConnectorError::system(format_args!(
                "{}: unexpected response body{}: {}",
                self.what,
                err.at(),
                err.reason
            ))
        })
    }

    /// `Ok(self)` for a 2xx status, else the classified error (see the
    /// [module docs](self)).
    pub fn error_for_status(self) -> Result<Self, ConnectorError> {
        if self.is_success() {
            return Ok(self);
        }
        Err(status_error(
            &self.what,
            self.status,
            &self.headers,
            &self.body,
        ))
    }
}

/// Classify an HTTP error status.
fn status_error(what: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> ConnectorError {
    let reason = wstd::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let snippet = body_snippet(body);
    let message = match (reason.is_empty(), snippet.is_empty()) {
        (true, true) => format!("{what}: HTTP {status}"),
        (false, true) => format!("{what}: HTTP {status} {reason}"),
        (true, false) => format!("{what}: HTTP {status}: {snippet}"),
        (false, false) => format!("{what}: HTTP {status} {reason}: {snippet}"),
    };
    match status {
        401 | 403 => ConnectorError::auth(message),
        408 | 429 | 500..=599 => {
            let err = ConnectorError::transient(message);
            match headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
            {
                Some(wait) => err.retry_after(wait),
                None => err,
            }
        }
        400..=499 => ConnectorError::config(message),
        _ => ConnectorError::system(message),
    }
}

/// `Retry-After`: delta-seconds or an HTTP-date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = crate::Timestamp::from(at);
    Some(
        at.duration_since(crate::Timestamp::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The start of a body, as one line of text, for error messages.
fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_SNIPPET * 4)]);
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > ERROR_BODY_SNIPPET {
        out = out.chars().take(ERROR_BODY_SNIPPET).collect();
        out.push('…');
    }
    out
}

/// One request and the redirects it leads to.
struct Exchange {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    max_response_bytes: usize,
}

/// A response head and body, read in full.
struct RawResponse {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Exchange {
    async fn run(mut self) -> Result<Response, ConnectorError> {
        let mut redirects = 0;
        loop {
            let what = format!("{} {}", self.method, strip_query(&self.url));
            let location = |raw: &RawResponse| {
                raw.headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let raw = self.send_once(&what).await?;
            if is_redirect(raw.status)
                && let Some(location) = location(&raw)
            {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(ConnectorError::system(format_args!(
                        "{what}: more than {MAX_REDIRECTS} redirects"
                    )));
                }
                let next = resolve_location(&self.url, &location);
                if origin(&next) != origin(&self.url) {
                    // Never hand credentials to another origin.
                    self.headers
                        .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
                }
                if raw.status == 303
                    || ((raw.status == 301 || raw.status == 302) && self.method == Method::POST)
                {
                    self.method = Method::GET;
                    self.body = None;
                    self.headers
                        .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
                }
                self.url = next;
                continue;
            }
            return Ok(Response {
                status: raw.status,
                headers: raw.headers,
                body: raw.body,
                what,
            });
        }
    }

    /// One request/response over `wasi:http`, written against the raw WASI
    /// API rather than `wstd::http::Client`: when the host refuses a request
    /// it may drop the request body at once, and a client that reports the
    /// first error it meets (the body write's "connection reset") hides the
    /// reason. Here the body is written first, and a write failure only
    /// counts when the response does not say what went wrong.
    async fn send_once(&self, what: &str) -> Result<RawResponse, ConnectorError> {
        let origin = origin(&self.url);
        let request = self.build(what)?;
        let outgoing_body = request.body().map_err(|()| {
            ConnectorError::system(format_args!("{what}: request body unavailable"))
        })?;

        // Ask the host to stop its own I/O at our deadline too. A host that
        // does not support an option just ignores it.
        let options = wasi_http::RequestOptions::new();
        let nanos = Some(u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX));
        let _ = options.set_connect_timeout(nanos);
        let _ = options.set_first_byte_timeout(nanos);
        let _ = options.set_between_bytes_timeout(nanos);

        let pending = wasi_handler::handle(request, Some(options))
            .map_err(|code| classify_error_code(what, &origin, &code))?;

        let body_result = write_body(outgoing_body, self.body.as_deref().unwrap_or_default()).await;

        let response = {
            let ready = AsyncPollable::new(pending.subscribe());
            ready.wait_for().await;
            drop(ready);
            match pending.get() {
                Some(Ok(Ok(response))) => response,
                Some(Ok(Err(code))) => return Err(classify_error_code(what, &origin, &code)),
                Some(Err(())) | None => {
                    return Err(ConnectorError::system(format_args!(
                        "{what}: the host lost the response"
                    )));
                }
            }
        };
        if let Err(err) = body_result {
            // The host took the response without the whole body: report
            // the response if it is an error, else the write failure.
            if (200..400).contains(&response.status()) {
                return Err(ConnectorError::transient(format_args!(
                    "{what}: sending the request body failed: {err}"
                )));
            }
        }
        drop(pending);

        let status = response.status();
        let headers = {
            let fields = response.headers();
            let mut headers = HeaderMap::new();
            for (name, value) in fields.entries() {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) {
                    headers.append(name, value);
                }
            }
            headers
        };
        let body = read_body(what, &origin, &response, &headers, self.max_response_bytes).await?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    fn build(&self, what: &str) -> Result<wasi_http::OutgoingRequest, ConnectorError> {
        let invalid_url = |reason: &dyn Display| {
            ConnectorError::config(format_args!("{what}: invalid URL: {reason}"))
        };
        let uri: Uri = self.url.parse().map_err(|err| invalid_url(&err))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => wasi_http::Scheme::Http,
            Some(s) if s.eq_ignore_ascii_case("https") => wasi_http::Scheme::Https,
            _ => return Err(invalid_url(&"the scheme must be http or https")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| invalid_url(&"no host"))?
            .as_str();
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");

        // Defaults first; the request's own headers replace them.
        let mut headers: Vec<(String, String)> = vec![
            ("accept".to_string(), "application/json".to_string()),
            (
                "user-agent".to_string(),
                concat!("tributary-plugin-sdk/", env!("CARGO_PKG_VERSION")).to_string(),
            ),
        ];
        for (name, value) in &self.headers {
            set_header(&mut headers, name.clone(), value.clone());
        }
        if let Some(body) = &self.body {
            set_header(
                &mut headers,
                "content-length".into(),
                body.len().to_string(),
            );
        }
        let mut entries = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConnectorError::config(format_args!("{what}: invalid header name {name:?}"))
            })?;
            // The value may be a credential: never echo it.
            let value = HeaderValue::from_str(&value).map_err(|_| {
                ConnectorError::config(format_args!(
                    "{what}: invalid value for header {name} (control characters or non-ASCII text)"
                ))
            })?;
            entries.push((name.as_str().to_string(), value.as_bytes().to_vec()));
        }
        let fields = wasi_http::Fields::from_list(&entries).map_err(|err| {
            ConnectorError::config(format_args!("{what}: the host refused a header: {err:?}"))
        })?;

        let request = wasi_http::OutgoingRequest::new(fields);
        let method = wasi_method(&self.method);
        request
            .set_method(&method)
            .map_err(|()| invalid_url(&format_args!("method {} refused", self.method)))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid_url(&"scheme refused"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| invalid_url(&"host refused"))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| invalid_url(&"path refused"))?;
        Ok(request)
    }
}

fn wasi_method(method: &Method) -> wasi_http::Method {
    match *method {
        Method::GET => wasi_http::Method::Get,
        Method::HEAD => wasi_http::Method::Head,
        Method::POST => wasi_http::Method::Post,
        Method::PUT => wasi_http::Method::Put,
        Method::DELETE => wasi_http::Method::Delete,
        Method::CONNECT => wasi_http::Method::Connect,
        Method::OPTIONS => wasi_http::Method::Options,
        Method::TRACE => wasi_http::Method::Trace,
        Method::PATCH => wasi_http::Method::Patch,
        ref other => wasi_http::Method::Other(other.as_str().to_string()),
    }
}

/// Write the whole request body, then finish it.
async fn write_body(body: wasi_http::OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    if !bytes.is_empty() {
        let stream = body
            .write()
            .map_err(|()| "request body stream unavailable".to_string())?;
        // The stream is a child of the body: it must be gone before `finish`.
        // No flush: with a Content-Length the host may close the stream as
        // soon as the last byte arrives, and a flush would then fail.
        let stream = AsyncOutputStream::new(stream);
        let written = stream.write_all(bytes).await;
        drop(stream);
        if let Err(err) = written {
            drop(body);
            return Err(err.to_string());
        }
    }
    wasi_http::OutgoingBody::finish(body, None).map_err(|code| format!("{code:?}"))
}

/// Read a response body in full, up to `max` bytes.
async fn read_body(
    what: &str,
    origin: &str,
    response: &wasi_http::IncomingResponse,
    headers: &HeaderMap,
    max: usize,
) -> Result<Vec<u8>, ConnectorError> {
    let too_large = |len: u64| {
        ConnectorError::system(format_args!(
            "{what}: the response body is larger than the limit of {max} bytes ({len}+ bytes); \
             raise the client's max_response_bytes if this is expected"
        ))
    };
    let content_length = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = content_length
        && len > max as u64
    {
        return Err(too_large(len));
    }
    let body = response
        .consume()
        .map_err(|()| ConnectorError::system(format_args!("{what}: response body unavailable")))?;
    let stream = body
        .stream()
        .map_err(|()| ConnectorError::system(format_args!("{what}: response body unavailable")))?;
    let mut out = Vec::with_capacity(content_length.unwrap_or(0).min(max as u64) as usize);
    let result = {
        // Children before parents: `ready` (of `stream`) drops first.
        let ready = AsyncPollable::new(stream.subscribe());
        loop {
            match stream.read(64 * 1024) {
                Ok(chunk) if chunk.is_empty() => ready.wait_for().await,
                Ok(chunk) => {
                    if out.len() + chunk.len() > max {
                        break Err(too_large((out.len() + chunk.len()) as u64));
                    }
                    out.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break Ok(()),
                Err(StreamError::LastOperationFailed(err)) => {
                    break Err(match wasi_http::http_error_code(&err) {
                        Some(code) => classify_error_code(what, origin, &code),
                        None => ConnectorError::transient(format_args!(
                            "{what}: the connection failed while reading the response: {}",
                            err.to_debug_string()
                        )),
                    });
                }
            }
        }
    };
    drop(stream);
    drop(body);
    result.map(|()| out)
}

fn classify_error_code(what: &str, origin: &str, code: &ErrorCode) -> ConnectorError {
    use ErrorCode as E;
    match code {
        E::HttpRequestDenied => ConnectorError::config(format_args!(
            "{what}: the sandbox denied the request: host {origin} is not granted to this check \
             (add it to the check's allowed_hosts; the daemon's log names the grant)"
        )),
        E::DestinationIpProhibited => ConnectorError::config(format_args!(
            "{what}: the sandbox denied the request: the address of {origin} is prohibited"
        )),
        E::HttpRequestUriInvalid | E::HttpRequestMethodInvalid | E::HttpRequestUriTooLong => {
            ConnectorError::config(format_args!("{what}: invalid request: {code:?}"))
        }
        E::DnsTimeout
        | E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => {
            ConnectorError::transient(format_args!("{what}: timed out ({})", code_name(code)))
        }
        E::DnsError(payload) => ConnectorError::transient(format_args!(
            "{what}: cannot resolve the host of {origin}: {}",
            payload.rcode.as_deref().unwrap_or("DNS error")
        )),
        E::DestinationNotFound
        | E::DestinationUnavailable
        | E::DestinationIpUnroutable
        | E::ConnectionRefused
        | E::ConnectionTerminated
        | E::ConnectionLimitReached
        | E::HttpResponseIncomplete => ConnectorError::transient(format_args!(
            "{what}: connection failed ({})",
            code_name(code)
        )),
        E::TlsProtocolError | E::TlsCertificateError | E::TlsAlertReceived(_) => {
            ConnectorError::system(format_args!("{what}: TLS failed ({code:?})"))
        }
        E::HttpResponseBodySize(limit) => ConnectorError::system(format_args!(
            "{what}: the response body exceeds the host's limit{}",
            limit.map(|l| format!(" of {l} bytes")).unwrap_or_default()
        )),
        E::InternalError(Some(message)) => {
            ConnectorError::system(format_args!("{what}: {message}"))
        }
        other => ConnectorError::system(format_args!("{what}: {other:?}")),
    }
}

/// `ErrorCode::ConnectionRefused` -> `ConnectionRefused`.
fn code_name(code: &ErrorCode) -> String {
    let debug = format!("{code:?}");
    debug
        .strip_prefix("ErrorCode::")
        .unwrap_or(&debug)
        .to_string()
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

fn is_absolute(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `https://host:port` of an absolute URL.
fn origin(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            // Drop any `user:password@`.
            let authority = &rest[..end];
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            format!("{}://{}", &url[..i], authority)
        }
        None => url.to_string(),
    }
}

fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

fn resolve_location(current: &str, location: &str) -> String {
    if is_absolute(location) {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = current.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(current))
    } else {
        let path = strip_query(current);
        let base = match path.rfind('/') {
            Some(i) if i > origin(current).len() => &path[..=i],
            _ => return format!("{}/{location}", origin(current)),
        };
        format!("{base}{location}")
    }
}

fn set_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
    headers.push((name, value));
}

fn basic_auth_value(user: impl Display, password: impl Display) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Percent-encode `text` for a URL path segment or query component: every
/// byte but the unreserved `A-Z a-z 0-9 - . _ ~` is escaped.
///
/// ```ignore
/// let url = format!("/v1/tenants/{}/stats", plugin_sdk::http::encode("acme corp"));
/// assert_eq!(url, "/v1/tenants/acme%20corp/stats");
/// ```
pub fn encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
    out
}

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(TABLE[(n >> 18) as usize & 63] as char);
        out.push(TABLE[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            TABLE[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            TABLE[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
