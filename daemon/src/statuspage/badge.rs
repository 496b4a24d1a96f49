//! Badges of one public entity: its health, or its uptime over 1, 7, 30 or
//! 90 days, as a flat SVG (for a README's `![..](..)`) or as Shields'
//! endpoint JSON (`https://img.shields.io/endpoint?url=...`).
//!
//! It owns the badge's query, words, colours and drawing; it must not
//! decide who may see an entity (the router asks [`super::public`]).

use maud::html;
use serde::Deserialize;

use super::bars::{self, percent, status_word};
use super::public::{Public, PublicError};
use crate::health::{EntityRef, Status};

/// What a badge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Health,
    Uptime(Period),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Quarter,
}

impl Period {
    /// Days of history: `1d` is today (UTC) so far.
    pub fn days(self) -> u32 {
        match self {
            Period::Day => 1,
            Period::Week => 7,
            Period::Month => 30,
            Period::Quarter => 90,
        }
    }

    fn parse(text: &str) -> Option<Period> {
        Some(match text {
            "1d" => Period::Day,
            "7d" => Period::Week,
            "30d" => Period::Month,
            "90d" => Period::Quarter,
            _ => return None,
        })
    }
}

const QUERY: &str = "query Badge($id: ID!, $days: Int!) { node(id: $id) { \
    ... on Tenant { name health { status } history(days: $days) { uptimePercent } } \
    ... on Flow { name health { status } history(days: $days) { uptimePercent } } \
    ... on System { name health { status } history(days: $days) { uptimePercent } } \
    ... on Check { key name health { status } history(days: $days) { uptimePercent } } \
    ... on Asset { key health { status } history(days: $days) { uptimePercent } } } }";

#[derive(Deserialize)]
struct Health {
    status: Status,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Day {
    uptime_percent: Option<f64>,
}

#[derive(Deserialize)]
struct Node {
    name: Option<String>,
    key: Option<String>,
    health: Option<Health>,
    history: Vec<Day>,
}

#[derive(Deserialize)]
struct Answer {
    node: Option<Node>,
}

/// The badge `kind` of `entity`, read as a viewer of public `tenant`;
/// `None` when there is no such entity (an asset no run has reported).
pub async fn render(
    public: &Public,
    tenant: &str,
    entity: &EntityRef,
    kind: Kind,
) -> Result<Option<Badge>, PublicError> {
    let days = match kind {
        Kind::Health => 1,
        Kind::Uptime(p) => p.days(),
    };
    let variables = serde_json::json!({ "id": crate::api::entity_id(entity), "days": days });
    let answer: Answer = public.query(tenant, QUERY, variables).await?;
    let Some(node) = answer.node else {
        return Ok(None);
    };
    if matches!(entity, EntityRef::Asset { .. }) && node.health.is_none() {
        return Ok(None);
    }
    let name = node.name.or(node.key).unwrap_or_default();
    Ok(Some(match kind {
        Kind::Health => Badge::health(&name, node.health.map(|h| h.status)),
        Kind::Uptime(period) => {
            let uptimes: Vec<f64> = node
                .history
                .iter()
                .filter_map(|d| d.uptime_percent)
                .collect();
            Badge::uptime(&name, period, &uptimes)
        }
    }))
}

/// How a badge is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Shields,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Svg => "image/svg+xml",
            Format::Shields => "application/json",
        }
    }
}

/// The badge a URL's last segments ask for: `health.svg`, `health.json`,
/// `uptime/30d.svg`... or why not, in words.
pub fn parse(kind: Option<&str>, file: &str) -> Result<(Kind, Format), String> {
    let (stem, format) = match file.rsplit_once('.') {
        Some((stem, "svg")) => (stem, Format::Svg),
        Some((stem, "json")) => (stem, Format::Shields),
        _ => return Err(format!("{file:?}: a badge ends in .svg or .json")),
    };
    let kind = match (kind, stem) {
        (None, "health") => Kind::Health,
        (Some("uptime"), period) => Kind::Uptime(Period::parse(period).ok_or_else(|| {
            format!("{period:?}: the uptime period is one of 1d, 7d, 30d and 90d")
        })?),
        _ => {
            return Err(format!(
                "{file:?}: a badge is health.svg, health.json, uptime/{{1d|7d|30d|90d}}.svg or .json"
            ));
        }
    };
    Ok((kind, format))
}

/// What a badge says: left label, right message and its colour (hex,
/// without `#`).
#[derive(Debug, Clone, PartialEq)]
pub struct Badge {
    pub label: String,
    pub message: String,
    pub color: &'static str,
}

/// Labels longer than this are cut (with `…`): a badge is a few words wide.
const MAX_LABEL: usize = 40;

fn label(name: &str, suffix: &str) -> String {
    super::cut(name, MAX_LABEL) + suffix
}

impl Badge {
    /// The health badge of the entity `name` (`None`: no health yet).
    pub fn health(name: &str, status: Option<Status>) -> Badge {
        let (message, color) = match status {
            Some(s @ Status::Healthy) => (status_word(s), "2e7d32"),
            Some(s @ Status::Warning) => (status_word(s), "b26a00"),
            Some(s @ Status::Unknown) => (status_word(s), "546e7a"),
            Some(s @ Status::Unhealthy) => (status_word(s), "c62828"),
            None => ("no data", "757575"),
        };
        Badge {
            label: label(name, ""),
            message: message.to_lowercase(),
            color,
        }
    }

    /// The uptime badge of the entity `name` over `period`, from the
    /// uptime of its days with data.
    pub fn uptime(name: &str, period: Period, days: &[f64]) -> Badge {
        let uptime = bars::mean(days);
        // Gatus's steps, darkened so the white text stays readable.
        let color = match uptime {
            None => "757575",
            Some(u) if u >= 97.5 => "2e7d32",
            Some(u) if u >= 95.0 => "558b2f",
            Some(u) if u >= 90.0 => "827717",
            Some(u) if u >= 80.0 => "b26a00",
            Some(u) if u >= 65.0 => "d84315",
            Some(_) => "c62828",
        };
        Badge {
            label: label(name, &format!(" uptime {}d", period.days())),
            message: uptime.map_or_else(|| "no data".to_owned(), percent),
            color,
        }
    }

    /// Shields' endpoint JSON (schema version 1).
    pub fn shields(&self) -> String {
        serde_json::json!({
            "schemaVersion": 1,
            "label": self.label,
            "message": self.message,
            "color": self.color,
            // Shields' smallest; the answer itself changes every few seconds.
            "cacheSeconds": 300,
        })
        .to_string()
    }

    /// A flat SVG badge, each side as wide as its text.
    pub fn svg(&self) -> String {
        let (left, right) = (text_width(&self.label) + 12, text_width(&self.message) + 12);
        let width = left + right;
        let title = format!("{}: {}", self.label, self.message);
        html! {
            svg xmlns="http://www.w3.org/2000/svg" width=(width) height="20" role="img" aria-label=(title) {
                title { (title) }
                clipPath id="r" { rect width=(width) height="20" rx="3" fill="#fff" {} }
                g clip-path="url(#r)" {
                    rect width=(left) height="20" fill="#555" {}
                    rect x=(left) width=(right) height="20" fill={ "#" (self.color) } {}
                }
                g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11" {
                    text x=(left / 2) y="14" { (self.label) }
                    text x=(left + right / 2) y="14" { (self.message) }
                }
            }
        }
        .into_string()
    }
}

/// About how many pixels `text` takes in 11 px Verdana: narrow letters,
/// wide ones and the rest (Shields measures exactly; close is enough for a
/// badge that sizes itself to its words).
fn text_width(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 4,
            'f' | 'r' | 't' | 'I' | '(' | ')' | '[' | ']' | '-' => 5,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 11,
            c if c.is_ascii_uppercase() => 8,
            _ => 7,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_badge_or_say_what_is_wrong() {
        assert_eq!(parse(None, "health.svg"), Ok((Kind::Health, Format::Svg)));
        assert_eq!(
            parse(Some("uptime"), "30d.json"),
            Ok((Kind::Uptime(Period::Month), Format::Shields))
        );
        assert!(
            parse(Some("uptime"), "2d.svg")
                .unwrap_err()
                .contains("1d, 7d, 30d and 90d")
        );
        assert!(
            parse(None, "health.png")
                .unwrap_err()
                .contains(".svg or .json")
        );
        assert!(parse(None, "uptime.svg").is_err());
    }

    #[test]
    fn the_svg_escapes_names_and_grows_with_its_words() {
        let short = Badge::health("a", Some(Status::Healthy)).svg();
        let hostile = Badge::health("<script>\"x\"&", Some(Status::Unhealthy)).svg();
        assert!(!hostile.contains("<script>"), "{hostile}");
        assert!(
            hostile.contains("&lt;script&gt;&quot;x&quot;&amp;"),
            "{hostile}"
        );
        let width = |svg: &str| -> u32 {
            let at = svg.find("width=\"").unwrap() + 7;
            svg[at..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(width(&hostile) > width(&short));
        let long = Badge::health(&"n".repeat(10_000), None);
        assert_eq!(long.label.chars().count(), MAX_LABEL + 1);
    }

    #[test]
    fn shields_json_has_schema_version_1() {
        let json: serde_json::Value =
            serde_json::from_str(&Badge::health("docs", Some(Status::Warning)).shields()).unwrap();
        assert_eq!(json["schemaVersion"], 1);
        assert_eq!(json["label"], "docs");
        assert_eq!(json["message"], "warning");
        assert_eq!(json["color"], "b26a00");
    }
}
