//! The email channel: a [`Message`] rendered as a mail (text and HTML
//! alternatives) and sent over SMTP with lettre: plain for a local relay,
//! STARTTLS (required, never opportunistic: no silent downgrade), or
//! implicit TLS; the SMTP answer classified into an [`Outcome`].
//!
//! The seam with the dispatcher: a [`Mailer`] is built once per channel
//! from its [`EmailSettings`] (when the config is loaded, so bad addresses
//! are config errors) and [`Mailer::send`] delivers one message. Every
//! attempt at a message is the same mail: its `Message-ID` comes from
//! [`Message::id`] and its `Date` from [`Message::at`], so a receiver (or a
//! person) sees a retry as a duplicate; `In-Reply-To` and `References` name
//! one id per [`Message::group_key`], so mail clients thread a group.
//!
//! Names and reasons come from plugins and config: the subject is built
//! from cleaned text ([`wording::clean`]: no CR or LF can start a header of
//! its own) and cut to [`MAX_SUBJECT`]; the HTML part is a maud template,
//! which escapes every interpolation, and a link becomes an anchor only when
//! it is an absolute http(s) URL. The password never appears in `Debug` or
//! in an outcome's reason. This module must not decide when or whether to
//! send.
//!
//! SMTP answers: 2xx delivered; 4xx (transient by RFC 5321) retry; 530/534/
//! 535 (authentication required or refused) disable the channel, since no
//! message will pass until someone fixes the credentials; any other 5xx
//! rejects this message. A 550 "mailbox unavailable" rejects rather than
//! disables: servers also answer 550 for one message's content (spam,
//! policy), and a wrongly disabled channel is silent for every later alert.
//! No connection, a timeout or a failed TLS handshake: retry.

use std::fmt;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use maud::{Markup, html};
use sha2::{Digest, Sha256};

use super::message::{Alert, Message, Outcome};
use super::wording;

/// The longest subject, in bytes (so also in characters).
pub const MAX_SUBJECT: usize = 200;
/// Alerts shown in full; the rest of a group is counted. With the bounds
/// below a mail stays near 200 KiB at most, whatever plugins report.
pub const MAX_ALERTS: usize = 25;
/// Reasons shown per alert.
pub const MAX_REASONS: usize = 5;
/// "Also affected" entities named per alert.
const MAX_ALSO_AFFECTED: usize = 20;
/// One reason or name, at most.
const MAX_TEXT: usize = 1_000;
/// What a subject starts with, so filters can sort alerts.
const SUBJECT_PREFIX: &str = "[Tributary] ";
const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";
/// How long one SMTP exchange may take, unless the settings say otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS: only for a relay on the same host or network (port 25).
    Plain,
    /// Plain connection upgraded with STARTTLS, which the server must offer
    /// (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        }
    }
}

/// An email channel's settings, as the config resolved them.
#[derive(Clone)]
pub struct EmailSettings {
    pub host: String,
    /// The security's usual port when `None`.
    pub port: Option<u16>,
    pub security: Security,
    /// Username and password, for servers that require AUTH.
    pub credentials: Option<(String, String)>,
    /// Extra trusted root certificates (PEM), for a relay with a private CA;
    /// the Mozilla roots are always trusted.
    pub ca_pem: Option<Vec<u8>>,
    /// `Tributary <alerts@example.com>` or a bare address.
    pub from: String,
    pub to: Vec<String>,
    /// One SMTP exchange, at most.
    pub timeout: Duration,
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The settings of a configured email channel.
pub fn settings(channel: &crate::config::EmailChannel) -> EmailSettings {
    EmailSettings {
        host: channel.host.clone(),
        port: channel.port,
        security: channel.security,
        credentials: channel
            .username
            .clone()
            .zip(channel.password.as_ref().map(|p| p.expose().to_owned())),
        ca_pem: channel.ca_pem.clone(),
        from: channel.from.clone(),
        to: channel.to.clone(),
        timeout: channel.timeout.unwrap_or(DEFAULT_TIMEOUT),
    }
}

/// Why an email channel's settings are refused, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("host is empty")]
    NoHost,
    #[error("{field}: {value:?} is not an email address ({why})")]
    Address {
        field: &'static str,
        value: String,
        why: String,
    },
    #[error("to: no recipient")]
    NoRecipient,
    #[error("ca_pem: not a PEM certificate ({0})")]
    Certificate(String),
    #[error("tls: {0}")]
    Tls(String),
}

/// Sends alert messages to one email channel's recipients.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// The right-hand side of the ids this channel makes: the sender's
    /// domain, so they are as unique as its address.
    domain: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks `settings` and prepares the transport; connects only when
    /// sending.
    pub fn new(settings: &EmailSettings) -> Result<Self, SettingsError> {
        let host = settings.host.trim();
        if host.is_empty() {
            return Err(SettingsError::NoHost);
        }
        let address = |field: &'static str, value: &str| {
            value
                .parse::<Mailbox>()
                .map_err(|err| SettingsError::Address {
                    field,
                    value: wording::truncate(value, 200).into_owned(),
                    why: err.to_string(),
                })
        };
        let from = address("from", &settings.from)?;
        let to = settings
            .to
            .iter()
            .map(|value| address("to", value))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(SettingsError::NoRecipient);
        }
        let tls = match settings.security {
            Security::Plain => Tls::None,
            Security::StartTls => Tls::Required(tls_parameters(host, settings)?),
            Security::Tls => Tls::Wrapper(tls_parameters(host, settings)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(settings.port.unwrap_or(settings.security.default_port()))
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let domain = from.email.domain().to_owned();
        Ok(Self {
            transport: builder.build(),
            from,
            to,
            domain,
        })
    }

    /// Sends `message` once and says what the server's answer means.
    pub async fn send(&self, message: &Message) -> Outcome {
        let email = match self.email(message) {
            Ok(email) => email,
            Err(err) => {
                return Outcome::Reject {
                    reason: format!("the mail could not be built: {err}"),
                };
            }
        };
        match self.transport.send(email).await {
            Ok(_) => Outcome::Delivered,
            Err(err) => classify(&err),
        }
    }

    /// The mail for `message`: the same for every attempt.
    pub fn email(&self, message: &Message) -> Result<lettre::Message, lettre::error::Error> {
        let thread = thread_id(&message.group_key, &self.domain);
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject(message))
            .message_id(Some(message_id(&message.id, &self.domain)))
            .in_reply_to(thread.clone())
            .references(thread)
            .date(message.at)
            .user_agent("Tributary".to_owned());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder.multipart(MultiPart::alternative_plain_html(
            text(message),
            html_body(message).into_string(),
        ))
    }
}

fn tls_parameters(host: &str, settings: &EmailSettings) -> Result<TlsParameters, SettingsError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = &settings.ca_pem {
        // lettre takes a PEM without any certificate as an empty set.
        if !pem
            .windows(PEM_CERTIFICATE.len())
            .any(|w| w == PEM_CERTIFICATE)
        {
            return Err(SettingsError::Certificate("no CERTIFICATE block".into()));
        }
        let cert = Certificate::from_pem(pem)
            .map_err(|err| SettingsError::Certificate(err.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|err| SettingsError::Tls(err.to_string()))
}

/// What an SMTP failure means (see the module doc).
fn classify(err: &lettre::transport::smtp::Error) -> Outcome {
    let said = wording::truncate(&wording::clean(&err.to_string()), 500).into_owned();
    let code = err.status().map(u16::from);
    match code {
        Some(530 | 534 | 535) => Outcome::Disable {
            reason: format!(
                "the SMTP server refused to authenticate ({said}); fix the channel's credentials"
            ),
        },
        Some(500..=599) => Outcome::Reject {
            reason: format!("the SMTP server refused the mail permanently: {said}"),
        },
        Some(_) => Outcome::Retry {
            after: None,
            reason: format!("the SMTP server deferred the mail: {said}"),
        },
        None => Outcome::Retry {
            after: None,
            reason: format!("no answer from the SMTP server: {said}"),
        },
    }
}

/// `[Tributary] FIRING UNHEALTHY: Acme > Orders > orders and 49 more`,
/// one line, at most [`MAX_SUBJECT`] bytes.
pub fn subject(message: &Message) -> String {
    let line = format!("{SUBJECT_PREFIX}{}", wording::headline(message));
    wording::truncate(&wording::clean(&line), MAX_SUBJECT).into_owned()
}

/// `<id@domain>`: [`Message::id`] itself when it is a valid left-hand side
/// (RFC 5322 `dot-atom-text`), else a hash of it, as stable.
pub fn message_id(id: &str, domain: &str) -> String {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !id.is_empty()
        && id.len() <= 128
        && id
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext));
    if dot_atom {
        format!("<{id}@{domain}>")
    } else {
        format!("<tributary.{}@{domain}>", short_hash(id))
    }
}

/// The id every message of a group replies to, so clients thread them.
pub fn thread_id(group_key: &str, domain: &str) -> String {
    format!("<tributary.group.{}@{domain}>", short_hash(group_key))
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

fn since(at: SystemTime) -> String {
    let at: DateTime<Utc> = at.into();
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn bounded(text: &str) -> String {
    wording::truncate(&wording::clean(text), MAX_TEXT).into_owned()
}

fn also_affected(alert: &Alert) -> Option<String> {
    if alert.also_affected.is_empty() {
        return None;
    }
    let mut names: Vec<String> = alert
        .also_affected
        .iter()
        .take(MAX_ALSO_AFFECTED)
        .map(|s| bounded(&wording::name(s)))
        .collect();
    if alert.also_affected.len() > MAX_ALSO_AFFECTED {
        names.push(format!(
            "and {} more",
            alert.also_affected.len() - MAX_ALSO_AFFECTED
        ));
    }
    Some(names.join(", "))
}

/// The entities not shown: past [`MAX_ALERTS`], and those the message
/// itself did not list.
fn not_shown(message: &Message) -> Option<usize> {
    Some(message.alerts.len().saturating_sub(MAX_ALERTS) + message.truncated).filter(|n| *n > 0)
}

/// The plain-text part.
pub fn text(message: &Message) -> String {
    let mut out = format!("{}\n", bounded(&wording::headline(message)));
    for alert in message.alerts.iter().take(MAX_ALERTS) {
        out.push_str(&format!(
            "\n{} since {}\n{}\n",
            wording::status_change(alert),
            since(alert.since),
            bounded(&wording::path(alert))
        ));
        for reason in alert.reasons.iter().take(MAX_REASONS) {
            out.push_str(&format!("  - {}\n", bounded(&wording::reason(reason))));
        }
        if alert.reasons.len() > MAX_REASONS {
            out.push_str(&format!(
                "  - and {} more\n",
                alert.reasons.len() - MAX_REASONS
            ));
        }
        if let Some(counts) = alert.counts.as_ref().and_then(wording::counts) {
            out.push_str(&format!("  Counts: {counts}\n"));
        }
        if let Some(names) = also_affected(alert) {
            out.push_str(&format!("  Also affected: {names}\n"));
        }
        if let Some(link) = alert.link.as_deref().and_then(wording::web_link) {
            out.push_str(&format!("  Open: {link}\n"));
        }
    }
    if let Some(n) = not_shown(message) {
        out.push_str(&format!("\nand {n} more not shown\n"));
    }
    out.push_str(&format!(
        "\n--\nTributary, route {}, group {}\n",
        bounded(&message.route),
        bounded(&message.group_key)
    ));
    out
}

/// The HTML part; maud escapes every value put in it.
pub fn html_body(message: &Message) -> Markup {
    html! {
        (maud::DOCTYPE)
        html {
            head { meta charset="utf-8"; title { (subject(message)) } }
            body style="font-family: sans-serif" {
                h2 { (bounded(&wording::headline(message))) }
                @for alert in message.alerts.iter().take(MAX_ALERTS) {
                    div style="margin: 1em 0; padding-left: .6em; border-left: 4px solid #999" {
                        p {
                            strong { (wording::status_change(alert)) }
                            " since " (since(alert.since))
                            br;
                            (bounded(&wording::path(alert)))
                        }
                        @if !alert.reasons.is_empty() {
                            ul {
                                @for reason in alert.reasons.iter().take(MAX_REASONS) {
                                    li { (bounded(&wording::reason(reason))) }
                                }
                                @if alert.reasons.len() > MAX_REASONS {
                                    li { "and " (alert.reasons.len() - MAX_REASONS) " more" }
                                }
                            }
                        }
                        @if let Some(counts) = alert.counts.as_ref().and_then(wording::counts) {
                            p { "Counts: " (counts) }
                        }
                        @if let Some(names) = also_affected(alert) {
                            p { em { "Also affected: " } (names) }
                        }
                        @if let Some(link) = alert.link.as_deref().and_then(wording::web_link) {
                            p { a href=(link) { "Open in Tributary" } }
                        }
                    }
                }
                @if let Some(n) = not_shown(message) {
                    p { "and " (n) " more not shown" }
                }
                p style="color: #666; font-size: smaller" {
                    "Tributary, route " (bounded(&message.route))
                    ", group " (bounded(&message.group_key))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_keeps_a_valid_id_and_hashes_any_other_stably() {
        assert_eq!(message_id("msg_2x.y", "t.example"), "<msg_2x.y@t.example>");
        for bad in ["", "a b", "a..b", ".a", "a>b", "é", "a\r\nX: y"] {
            let id = message_id(bad, "t.example");
            assert!(
                id.starts_with("<tributary.") && id.ends_with("@t.example>"),
                "{id}"
            );
            assert_eq!(id, message_id(bad, "t.example"));
        }
        assert_ne!(
            message_id("a b", "t.example"),
            message_id("a c", "t.example")
        );
    }

    #[test]
    fn settings_never_show_the_password() {
        let settings = EmailSettings {
            host: "smtp.example".into(),
            port: None,
            security: Security::StartTls,
            credentials: Some(("user".into(), "hunter2-secret".into())),
            ca_pem: None,
            from: "a@b.example".into(),
            to: vec!["c@d.example".into()],
            timeout: DEFAULT_TIMEOUT,
        };
        let shown = format!("{settings:?}");
        assert!(
            shown.contains("user") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
