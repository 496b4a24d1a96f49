//! A real SMTP server for the email channel's tests: Python's aiosmtpd
//! (`tests/py/smtp_server.py`, pinned in `tests/py/requirements.txt`),
//! started on a free loopback port and stopped when dropped.
//!
//! Every mail it accepts comes back as a [`Received`]: the envelope, whether
//! the session was TLS and authenticated, every header as received, and the
//! text and HTML parts as Python's `email` package reads them. Recipients
//! `gone@…` get 550 and `busy@…` get 451; the rest are taken.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// How the server is started.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Offer and require STARTTLS, with a fresh self-signed certificate for
    /// 127.0.0.1 ([`SmtpServer::ca_pem`]).
    pub starttls: bool,
    /// Require AUTH with these credentials (over TLS only).
    pub auth: Option<(String, String)>,
}

/// One mail the server accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub tls: bool,
    pub authenticated: bool,
    /// Every header, in order, as (name, value).
    pub headers: Vec<(String, String)>,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: String,
    pub references: String,
    pub content_type: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// What Python's parser found wrong with the mail.
    pub defects: Vec<String>,
}

impl Received {
    /// The values of every header named `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Deserialize)]
struct Listening {
    listening: u16,
    ca_pem: Option<String>,
}

/// The running server.
pub struct SmtpServer {
    port: u16,
    ca_pem: Option<String>,
    received: Arc<Mutex<Vec<Received>>>,
    count: watch::Receiver<usize>,
    _child: Child,
}

impl SmtpServer {
    /// Starts the server and waits until it listens.
    ///
    /// # Panics
    /// When Python or aiosmtpd is missing (the message says how to install
    /// it) or the server does not come up within 30 seconds.
    pub async fn start(options: SmtpOptions) -> Self {
        let script = crate::repo_root().join("tests/py/smtp_server.py");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if options.starttls {
            command.arg("--starttls");
        }
        if let Some((user, password)) = &options.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        let mut child = command
            .spawn()
            .expect("start python3 (tests/py/smtp_server.py)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP server listens within 30 s")
            .expect("read the SMTP server's output")
            .unwrap_or_else(|| {
                panic!(
                    "the SMTP server exited: is aiosmtpd installed? \
                     pip install -r tests/py/requirements.txt"
                )
            });
        let listening: Listening =
            serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0);
        let record = received.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mail: Received = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("a mail record {line:?}: {e}"));
                let mut all = record.lock().expect("smtp record lock");
                all.push(mail);
                count_tx.send_replace(all.len());
            }
        });
        Self {
            port: listening.listening,
            ca_pem: listening.ca_pem,
            received,
            count,
            _child: child,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's certificate (PEM), when it offers STARTTLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Every mail accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("smtp record lock").clone()
    }

    /// Waits until at least `n` mails were accepted, then returns them all.
    ///
    /// # Panics
    /// When fewer than `n` arrive within `deadline`.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(deadline, count.wait_for(|c| *c >= n)).await;
        assert!(
            matches!(arrived, Ok(Ok(_))),
            "{n} mails within {deadline:?}; got {}",
            self.received().len()
        );
        self.received()
    }
}
