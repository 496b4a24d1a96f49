//! The plain words every alert channel shows for a [`Message`]: the status
//! label, the path `tenant > flow > system > check > asset`, the headline,
//! the counts; and the bounds put on text that comes from plugins and config
//! (names, reasons) before it reaches a receiver: control and invisible
//! formatting characters removed, lengths cut at a character boundary.
//!
//! Channels (Slack, PagerDuty, email) build on these words and add their own
//! escaping; this module must not escape for any one format, and must not
//! decide what a message contains (that is routing and grouping's).

use std::borrow::Cow;

use super::message::{Alert, AlertState, Counts, Message, Step};

/// What a cut string ends with, so a reader sees it was cut.
pub const ELLIPSIS: char = '…';

/// `text` without characters that could change how a receiver lays it out
/// or reads it: control characters (CR and LF would end an email header),
/// line and paragraph separators, and the invisible Unicode formatting
/// characters (zero-width, bidirectional overrides) that could make one
/// name look like another. Each becomes a space; runs of spaces stay as
/// they are, so names keep their own spacing.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_unsafe(c) { ' ' } else { c })
            .collect(),
    )
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{FEFF}' // zero-width no-break space
        )
}

/// `text` cut to at most `max` bytes at a character boundary, ending with
/// [`ELLIPSIS`] when cut. Bytes bound every receiver's count: a limit in
/// characters or UTF-16 units is never exceeded by the same number of bytes.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let room = max.saturating_sub(ELLIPSIS.len_utf8());
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = String::with_capacity(end + ELLIPSIS.len_utf8());
    cut.push_str(&text[..end]);
    if max >= ELLIPSIS.len_utf8() {
        cut.push(ELLIPSIS);
    }
    Cow::Owned(cut)
}

/// A step's display name (its key when it has no name), cleaned.
pub fn name(step: &Step) -> Cow<'_, str> {
    if step.name.trim().is_empty() {
        clean(&step.key)
    } else {
        clean(&step.name)
    }
}

/// The entity's display name: the last step of its path.
pub fn entity_name(alert: &Alert) -> Cow<'_, str> {
    alert.path.last().map_or(Cow::Borrowed("?"), name)
}

/// `Acme > Orders > Snowflake > orders_check > orders`.
pub fn path(alert: &Alert) -> String {
    let names: Vec<Cow<'_, str>> = alert.path.iter().map(name).collect();
    names.join(" > ")
}

/// `FIRING` or `RESOLVED`.
pub fn state(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "FIRING",
        AlertState::Resolved => "RESOLVED",
    }
}

/// `UNHEALTHY` for one entity, `UNHEALTHY (was HEALTHY)` after a change.
pub fn status_change(alert: &Alert) -> String {
    match alert.previous {
        Some(previous) if previous != alert.status => {
            format!("{} (was {})", alert.status.as_str(), previous.as_str())
        }
        _ => alert.status.as_str().to_owned(),
    }
}

/// One line for the whole message: `FIRING UNHEALTHY: Acme > Orders >
/// orders` or, for a group, `... and 49 more`. Alerts are worst first, so
/// the first one names the message.
pub fn headline(message: &Message) -> String {
    let Some(first) = message.alerts.first() else {
        return format!("{}: no entities", state(message.state));
    };
    let more = match message.alerts.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "{} {}: {}{more}",
        state(message.state),
        first.status.as_str(),
        path(first)
    )
}

/// `expected 100, received 90, missing 10, errored 0`, the counts known;
/// `None` when none is.
pub fn counts(counts: &Counts) -> Option<String> {
    let parts: Vec<String> = [
        ("expected", counts.expected),
        ("received", counts.received),
        ("missing", counts.missing),
        ("errored", counts.errored),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|v| format!("{label} {v}")))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A reason's message, cleaned, prefixed by the child it comes from when
/// it is a roll-up's.
pub fn reason(reason: &crate::health::Reason) -> String {
    let message = clean(&reason.message);
    match &reason.child {
        Some(child) => format!("{}: {message}", clean(&child.to_string())),
        None => message.into_owned(),
    }
}

/// `link` when it is an absolute `http(s)` URL with nothing a receiver
/// could misread (no whitespace or control characters), else `None`: a
/// `javascript:` or relative link must never become a button or an anchor.
pub fn web_link(link: &str) -> Option<&str> {
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))?;
    let clean = !link.chars().any(|c| c.is_whitespace() || is_unsafe(c));
    (clean && !rest.is_empty() && !rest.starts_with('/')).then_some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_invisible_characters_become_spaces() {
        assert_eq!(clean("a\r\nb\tc\u{202E}d\u{200B}e"), "a  b c d e");
        assert!(matches!(clean("plain name"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncation_keeps_a_char_boundary_and_shows_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééééé", 7);
        assert!(cut.len() <= 7, "{cut}");
        assert_eq!(cut, "éé…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn only_absolute_web_links_are_links() {
        assert_eq!(
            web_link("https://t.example/a?b=1"),
            Some("https://t.example/a?b=1")
        );
        assert_eq!(
            web_link("http://127.0.0.1:8080/x"),
            Some("http://127.0.0.1:8080/x")
        );
        for bad in [
            "javascript:alert(1)",
            "/relative",
            "https://",
            "https:///x",
            "https://a b",
            "https://a\nb",
        ] {
            assert_eq!(web_link(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_list_only_what_is_known() {
        let c = Counts {
            expected: Some(100),
            received: Some(90),
            missing: None,
            errored: Some(0),
        };
        assert_eq!(
            counts(&c).as_deref(),
            Some("expected 100, received 90, errored 0")
        );
        assert_eq!(counts(&Counts::default()), None);
    }
}
