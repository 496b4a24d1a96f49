//! Fake of a Slack incoming webhook (`shared/reference/alerting.md` (d)):
//! `POST /services/T…/B…/…` with a JSON body, answered as Slack does.
//!
//! It checks what Slack checks before posting: a JSON object with `text` or
//! `blocks`; at most 50 blocks of known types; header text plain and at
//! most 150 characters; section and context texts at most 3,000; a button's
//! text at most 75 and its URL at most 3,000. A body that fails any of them
//! is answered `400 invalid_payload` (the reason is kept for the test); a
//! wrong token `404 no_service`. A message it takes is answered `200 ok` and
//! kept as [`Posted`], with what Slack would make of its text: the mentions
//! (`<!channel>`, `<@U…>`) and links it would render, and the text a reader
//! would see with entities decoded.
//!
//! A test can make it answer `429` with `Retry-After` for the next N posts
//! ([`SlackFake::rate_limit_next`]), `500 rollup_error`
//! ([`SlackFake::fail_next`]), or `410 channel_is_archived` from now on
//! ([`SlackFake::archive`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use plugin_sdk::harness::{Recorded, Reply, TestServer};
use serde_json::Value;

/// The webhook's path; its last segments are the token.
pub const WEBHOOK_PATH: &str = "/services/T0001/B0001/fakeSlackWebhookToken";
pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3_000;
pub const MAX_HEADER_TEXT: usize = 150;
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_URL: usize = 3_000;

/// A message Slack took.
#[derive(Debug, Clone)]
pub struct Posted {
    pub body: Value,
    /// Every text a reader sees (the fallback, then each block's), with
    /// `&amp;`, `&lt;`, `&gt;` decoded.
    pub shown: Vec<String>,
    /// What Slack would turn into notifications: `!channel`, `!here`,
    /// `!everyone`, `@U…`, `!subteam^…`.
    pub mentions: Vec<String>,
    /// What Slack would turn into links, besides buttons: `<url|label>` and,
    /// in text that is not `verbatim`, bare URLs and `#channel`s.
    pub links: Vec<String>,
}

impl Posted {
    pub fn blocks(&self) -> &[Value] {
        self.body["blocks"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The blocks' texts, as shown, joined by newlines.
    pub fn shown_text(&self) -> String {
        self.shown.join("\n")
    }
}

/// An answer the test asked for, instead of the usual one.
#[derive(Debug, Clone)]
enum Forced {
    RateLimited { retry_after: u64 },
    ServerError,
}

#[derive(Debug, Default)]
struct State {
    forced: VecDeque<Forced>,
    archived: bool,
    posted: Vec<Posted>,
    refused: Vec<String>,
}

/// The fake; clones share its state.
#[derive(Clone, Default)]
pub struct SlackFake {
    state: Arc<Mutex<State>>,
}

impl SlackFake {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn start(self) -> TestServer {
        TestServer::start(move |req| self.handle(req)).await
    }

    /// The next `n` posts get `429` with `Retry-After: retry_after`.
    pub fn rate_limit_next(&self, n: usize, retry_after: u64) {
        let mut state = self.lock();
        state
            .forced
            .extend(std::iter::repeat_n(Forced::RateLimited { retry_after }, n));
    }

    /// The next `n` posts get `500 rollup_error`.
    pub fn fail_next(&self, n: usize) {
        let mut state = self.lock();
        state
            .forced
            .extend(std::iter::repeat_n(Forced::ServerError, n));
    }

    /// From now on every post gets `410 channel_is_archived`.
    pub fn archive(&self) {
        self.lock().archived = true;
    }

    /// The messages taken, in order.
    pub fn posted(&self) -> Vec<Posted> {
        self.lock().posted.clone()
    }

    /// Why each refused body was refused (`invalid_payload`), in order.
    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("slack fake lock")
    }

    pub fn handle(&self, req: &Recorded) -> Reply {
        if req.method != "POST" {
            return Reply::status(405).body("invalid_method");
        }
        if req.path != WEBHOOK_PATH {
            return Reply::status(404).body("no_service");
        }
        let mut state = self.lock();
        if state.archived {
            return Reply::status(410).body("channel_is_archived");
        }
        match state.forced.pop_front() {
            Some(Forced::RateLimited { retry_after }) => {
                return Reply::status(429)
                    .header("retry-after", &retry_after.to_string())
                    .body("rate_limited");
            }
            Some(Forced::ServerError) => return Reply::status(500).body("rollup_error"),
            None => {}
        }
        let json = req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        let body = if json {
            serde_json::from_slice::<Value>(&req.body).map_err(|e| format!("not JSON: {e}"))
        } else {
            Err("content-type is not application/json".to_owned())
        };
        match body.and_then(validate) {
            Ok(posted) => {
                state.posted.push(posted);
                Reply::status(200).body("ok")
            }
            Err(why) => {
                state.refused.push(why);
                Reply::status(400).body("invalid_payload")
            }
        }
    }
}

/// What Slack makes of `body`, or why it refuses it.
pub fn validate(body: Value) -> Result<Posted, String> {
    let object = body.as_object().ok_or("the body is not a JSON object")?;
    let text = match object.get("text") {
        None => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(_) => return Err("text is not a string".into()),
    };
    let blocks = match object.get("blocks") {
        None => &[][..],
        Some(Value::Array(blocks)) => blocks.as_slice(),
        Some(_) => return Err("blocks is not an array".into()),
    };
    if text.is_none_or(str::is_empty) && blocks.is_empty() {
        return Err("no text and no blocks".into());
    }
    if blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks, more than {MAX_BLOCKS}", blocks.len()));
    }
    let mut posted = Posted {
        body: body.clone(),
        shown: Vec::new(),
        mentions: Vec::new(),
        links: Vec::new(),
    };
    if let Some(text) = text {
        // The fallback is mrkdwn, never `verbatim`; with blocks it is only
        // the notification's text, where bare URLs are not links.
        read_markup(text, !blocks.is_empty(), &mut posted);
    }
    for (i, block) in blocks.iter().enumerate() {
        check_block(block, &mut posted).map_err(|why| format!("blocks[{i}]: {why}"))?;
    }
    Ok(posted)
}

fn check_block(block: &Value, posted: &mut Posted) -> Result<(), String> {
    match block["type"].as_str() {
        Some("header") => {
            let text = text_object(&block["text"], MAX_HEADER_TEXT, posted)?;
            if text != "plain_text" {
                return Err("a header's text must be plain_text".into());
            }
        }
        Some("section") => {
            if block.get("text").is_none() && block.get("fields").is_none() {
                return Err("a section needs text or fields".into());
            }
            if let Some(text) = block.get("text") {
                text_object(text, MAX_SECTION_TEXT, posted)?;
            }
            if let Some(accessory) = block.get("accessory") {
                check_button(accessory, posted)?;
            }
        }
        Some("context") => {
            let elements = block["elements"]
                .as_array()
                .ok_or("a context needs elements")?;
            if elements.is_empty() || elements.len() > 10 {
                return Err(format!("a context has {} elements", elements.len()));
            }
            for element in elements {
                text_object(element, MAX_SECTION_TEXT, posted)?;
            }
        }
        Some("divider") => {}
        other => return Err(format!("unknown block type {other:?}")),
    }
    Ok(())
}

fn check_button(button: &Value, posted: &mut Posted) -> Result<(), String> {
    if button["type"] != "button" {
        return Err("an accessory that is not a button".into());
    }
    text_object(&button["text"], MAX_BUTTON_TEXT, posted)?;
    if let Some(url) = button.get("url") {
        let url = url.as_str().ok_or("a button url is not a string")?;
        if url.chars().count() > MAX_URL {
            return Err(format!("a button url over {MAX_URL} characters"));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("a button url that is not http(s): {url:?}"));
        }
    }
    Ok(())
}

/// Checks a text object and reads it; returns its type.
fn text_object<'v>(object: &'v Value, max: usize, posted: &mut Posted) -> Result<&'v str, String> {
    let kind = object["type"]
        .as_str()
        .ok_or("a text object without type")?;
    let text = object["text"]
        .as_str()
        .ok_or("a text object without text")?;
    if text.is_empty() {
        return Err("an empty text".into());
    }
    let n = text.chars().count();
    if n > max {
        return Err(format!("a text of {n} characters, more than {max}"));
    }
    match kind {
        "plain_text" => posted.shown.push(text.to_owned()),
        "mrkdwn" => {
            let verbatim = object["verbatim"].as_bool().unwrap_or(false);
            read_markup(text, verbatim, posted);
        }
        other => return Err(format!("unknown text type {other:?}")),
    }
    Ok(kind)
}

/// Reads mrkdwn as Slack renders it: `<…>` spans are mentions or links;
/// without `verbatim`, bare URLs and `#channel`s become links too.
fn read_markup(text: &str, verbatim: bool, posted: &mut Posted) {
    let mut shown = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        shown.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            shown.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &rest[open + 1..open + close];
        let (target, label) = inner.split_once('|').unwrap_or((inner, inner));
        if target.starts_with('!') || target.starts_with('@') || target.starts_with('#') {
            posted.mentions.push(target.to_owned());
        } else {
            posted.links.push(target.to_owned());
        }
        shown.push_str(label);
        rest = &rest[open + close + 1..];
    }
    shown.push_str(rest);
    if !verbatim {
        for word in shown.split_whitespace() {
            if word.starts_with("http://") || word.starts_with("https://") || word.starts_with('#')
            {
                posted.links.push(word.to_owned());
            }
        }
    }
    posted.shown.push(
        shown
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    );
}
