//! One API session with a Looker instance: the login, the access token's
//! life, and Looker's error bodies.
//!
//! Looker's API keys are a `client_id` and a `client_secret` presented to
//! `POST /api/4.0/login` as a form body; the answer is an access token that
//! every later call carries as `Authorization: token <access_token>` (the
//! word `token` is literal). The token lasts `expires_in` seconds. A session
//! logs in once, reuses the token until a minute before it expires by the
//! host's clock, and logs in again when Looker refuses it earlier (a revoked
//! token, a restarted instance): once per call, so a second refusal is an
//! `auth` failure rather than a loop.
//!
//! Looker explains a failure in `{ "message": ..., "documentation_url": ... }`
//! (422s add `errors[]`); that text goes into the error message, and the
//! status decides the class as everywhere in the SDK (429 and 5xx are
//! `transient` with `Retry-After`).

use std::time::Duration;

use plugin_sdk::http::{Client, Response};
use plugin_sdk::log;
use plugin_sdk::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A token is renewed this long before Looker says it expires, so a call
/// never goes out with a token that dies on the way.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// How much of a body that is not Looker's error JSON goes into a message.
const SNIPPET_CHARS: usize = 200;

/// `POST /login`: the `AccessToken` schema. `token_type` says `Bearer`, but
/// the API documents the header as `token <access_token>`, so it is unused.
#[derive(Deserialize)]
struct AccessToken {
    access_token: String,
    expires_in: u64,
}

/// Looker's `Error` and `ValidationError` bodies.
#[derive(Deserialize)]
struct LookerError {
    message: Option<String>,
    documentation_url: Option<String>,
    errors: Option<Vec<ErrorDetail>>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    field: Option<String>,
    message: Option<String>,
}

struct Token {
    value: String,
    /// When to stop using it, by the host's clock.
    renew_at: Timestamp,
}

/// Where a session logs in and with what.
pub struct Credentials<'a> {
    /// The instance's API origin, without `/api/4.0`.
    pub base_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// The default timeout of every call.
    pub timeout: Duration,
}

pub struct Session {
    http: Client,
    /// `https://host/api/4.0`, for messages.
    api_url: String,
    client_id: String,
    client_secret: String,
    token: Option<Token>,
}

impl Session {
    pub fn new(credentials: Credentials<'_>) -> Self {
        let api_url = format!("{}/api/4.0", credentials.base_url);
        Session {
            http: Client::new()
                .base_url(&api_url)
                .timeout(credentials.timeout),
            api_url,
            client_id: credentials.client_id.to_string(),
            client_secret: credentials.client_secret.to_string(),
            token: None,
        }
    }

    /// `GET path` (relative to `/api/4.0`) with a valid token, whatever the
    /// answer's status but 401: a refused token is renewed once and the call
    /// retried once.
    pub async fn get(
        &mut self,
        path: &str,
        query: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<Response, ConnectorError> {
        let token = self.token().await?;
        let response = self.send(&token, path, query, timeout).await?;
        if response.status() != 401 {
            return Ok(response);
        }
        log::info(
            "Looker refused the access token before its expiry; logging in again",
            &[("path", &path)],
        );
        self.token = None;
        let token = self.token().await?;
        let response = self.send(&token, path, query, timeout).await?;
        if response.status() == 401 {
            return Err(ConnectorError::auth(format_args!(
                "GET {}{path}: Looker refused a fresh access token too ({}); \
                 the API user may have been disabled or its API key revoked",
                self.api_url,
                detail(&response)
            )));
        }
        Ok(response)
    }

    /// [`get`](Self::get) and parse a 2xx answer as `T`. Any other status is
    /// a classified error; a 404 means the API user may not see this kind of
    /// thing (Looker hides what a user lacks the permission for), which
    /// `permission` names.
    pub async fn get_json<T: DeserializeOwned>(
        &mut self,
        path: &str,
        query: &[(&str, &str)],
        timeout: Option<Duration>,
        permission: &str,
    ) -> Result<T, ConnectorError> {
        let response = self.get(path, query, timeout).await?;
        if response.status() == 404 {
            return Err(ConnectorError::auth(format_args!(
                "GET {}{path}: {}; the API user needs the {permission} permission",
                self.api_url,
                detail(&response)
            )));
        }
        self.parse(path, response)
    }

    /// A 2xx answer parsed as `T`, or the classified error of another status.
    pub fn parse<T: DeserializeOwned>(
        &self,
        path: &str,
        response: Response,
    ) -> Result<T, ConnectorError> {
        if !response.is_success() {
            return Err(self.failure(path, response));
        }
        response.json()
    }

    /// The error of a non-2xx answer: the SDK's class and `Retry-After`,
    /// Looker's own explanation.
    pub fn failure(&self, path: &str, response: Response) -> ConnectorError {
        classify(
            format!("GET {}{path}: {}", self.api_url, detail(&response)),
            response,
        )
    }

    /// Invalidate the token (`DELETE /logout`). Every run logs in afresh, so
    /// a token left alive would only linger for an hour; a failed logout is
    /// logged, never a failed run.
    pub async fn logout(self) {
        let Some(token) = self.token else { return };
        let outcome = self
            .http
            .delete("/logout")
            .header("authorization", format!("token {}", token.value))
            .send()
            .await;
        if let Err(err) = outcome {
            log::warn("logging out of Looker failed", &[("error", &err.message)]);
        }
    }

    /// The current token, logging in when there is none or it is about to
    /// expire.
    async fn token(&mut self) -> Result<String, ConnectorError> {
        // The plugin's wall clock is the host's clock (fixed in tests), and
        // unlike the run context's `now` it moves during a long run.
        if let Some(token) = &self.token
            && Timestamp::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let token = self.login().await?;
        let value = token.value.clone();
        self.token = Some(token);
        Ok(value)
    }

    async fn login(&self) -> Result<Token, ConnectorError> {
        // Looker reads the key from the form body; query parameters are
        // deprecated (and would put the secret in access logs).
        let response = self
            .http
            .post("/login")
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
            ])
            .send_any_status()
            .await?;
        let url = format!("POST {}/login", self.api_url);
        match response.status() {
            200..=299 => {}
            // Looker answers an unknown key with 404 "Not found".
            400 | 401 | 403 | 404 => {
                return Err(ConnectorError::auth(format_args!(
                    "{url}: Looker refused the API key ({}); check client_id and client_secret \
                     (Admin > Users > Edit API keys) and that base_url is the instance's API address",
                    detail(&response)
                )));
            }
            _ => return Err(classify(format!("{url}: {}", detail(&response)), response)),
        }
        let token: AccessToken = response.json()?;
        let lifetime = Duration::from_secs(token.expires_in).saturating_sub(RENEW_MARGIN);
        Ok(Token {
            value: token.access_token,
            renew_at: Timestamp::now() + lifetime,
        })
    }

    async fn send(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<Response, ConnectorError> {
        let mut request = self
            .http
            .get(path)
            .header("authorization", format!("token {token}"));
        for (key, value) in query {
            request = request.query(*key, value);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        request.send_any_status().await
    }
}

/// The SDK's class (and `Retry-After`) for a non-2xx answer, with `message`.
fn classify(message: String, response: Response) -> ConnectorError {
    match response.error_for_status() {
        Err(classified) => ConnectorError {
            message,
            ..classified
        },
        Ok(_) => ConnectorError::system(message),
    }
}

/// `HTTP 404: Not found (see https://...)` from Looker's error body, or the
/// start of whatever else the body holds.
pub fn detail(response: &Response) -> String {
    let status = response.status();
    if let Ok(LookerError {
        message: Some(message),
        documentation_url,
        errors,
    }) = response.json::<LookerError>()
    {
        let mut text = format!("HTTP {status}: {message}");
        for error in errors.unwrap_or_default() {
            match (error.field, error.message) {
                (Some(field), Some(why)) => text.push_str(&format!("; {field}: {why}")),
                (None, Some(why)) | (Some(why), None) => text.push_str(&format!("; {why}")),
                (None, None) => {}
            }
        }
        if let Some(url) = documentation_url {
            text.push_str(&format!(" (see {url})"));
        }
        return text;
    }
    let body = String::from_utf8_lossy(response.bytes());
    let snippet: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(SNIPPET_CHARS)
        .collect();
    if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    }
}
