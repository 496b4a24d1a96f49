//! Masking a check's resolved secrets in any text that came back from its
//! plugin: log lines, error messages, report strings, action outcomes.
//!
//! A plugin (or the service it talks to) rarely echoes a secret verbatim: a
//! 401 body may hold it URL-encoded, inside a JSON string, or as the base64
//! of a `user:secret` basic-auth header. The [`Redactor`] masks each secret in
//! every such form, in one linear pass over the text (Aho-Corasick). It owns
//! only the masking; where text is masked is up to the callers (the plugin
//! log sink, the service's normalisation of reports and errors), and it must
//! not log or keep what it masks.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a secret is replaced by.
pub const MASK: &str = "[REDACTED]";

/// Secrets shorter than this are not masked: masking every "ab" would make
/// text useless and hide next to nothing.
const MIN_SECRET: usize = 4;

/// The shortest base64 run that is masked as part of an encoded secret.
const MIN_BASE64: usize = 4;

/// Characters a URL encoder leaves alone (RFC 3986 unreserved).
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Masks a fixed set of secrets in text. Cheap to clone.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// `None` when there is nothing to mask.
    matcher: Option<AhoCorasick>,
}

impl Redactor {
    pub fn new(secrets: &[String]) -> Self {
        let mut forms: Vec<String> = secrets
            .iter()
            .filter(|s| s.len() >= MIN_SECRET)
            .flat_map(|s| forms_of(s))
            .collect();
        forms.sort();
        forms.dedup();
        if forms.is_empty() {
            return Self::default();
        }
        // Leftmost-longest: a secret that contains another is masked whole.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&forms)
            .expect("plain string patterns always build");
        Self {
            matcher: Some(matcher),
        }
    }

    /// Whether there is any secret to mask.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Whether `text` holds a form of a secret.
    pub fn finds(&self, text: &str) -> bool {
        self.matcher.as_ref().is_some_and(|m| m.is_match(text))
    }

    /// `text` with every form of every secret replaced by [`MASK`].
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                Cow::Owned(m.replace_all(text, &vec![MASK; m.patterns_len()]))
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Masks `text` in place (no copy when there is nothing to mask).
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(masked) = self.redact(text) {
            *text = masked;
        }
    }
}

/// The ways `secret` can appear in text a service or plugin produced.
fn forms_of(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    // Inside a JSON string: as serde writes it, and with every non-ASCII
    // character as \uXXXX (what many other encoders do).
    let json = serde_json::to_string(secret).expect("a string always serialises");
    forms.push(json[1..json.len() - 1].to_owned());
    forms.push(json_ascii(secret));
    // URL-encoded: upper and lower case hex, and the form encoding's `+`.
    let encoded = utf8_percent_encode(secret, URL_ENCODE).to_string();
    forms.push(lower_hex_escapes(&encoded));
    forms.push(encoded.replace("%20", "+"));
    forms.push(encoded);
    // Base64 (standard and URL-safe alphabets) of any text that contains the
    // secret, such as `user:secret` in a basic-auth header: whatever precedes
    // it, the secret starts at one of three offsets within a 3-byte group,
    // and at each the characters that encode only its own bits are fixed.
    for offset in 0..3 {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret.as_bytes());
        for engine in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&bytes);
            // Characters are 6 bits each; the secret's bits are
            // [8 * offset, 8 * (offset + len)).
            let start = (8 * offset).div_ceil(6);
            let end = 8 * bytes.len() / 6;
            if end >= start + MIN_BASE64 {
                forms.push(encoded[start..end].to_owned());
            }
        }
    }
    forms.retain(|f| !f.is_empty());
    forms
}

/// A JSON string body with every character outside printable ASCII escaped
/// as `\uXXXX` (surrogate pairs above the BMP).
fn json_ascii(secret: &str) -> String {
    let json = serde_json::to_string(secret).expect("a string always serialises");
    let body = &json[1..json.len() - 1];
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `%2F` -> `%2f`.
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    use super::*;

    const SECRET: &str = "s3cr/t+tök\"en=";

    fn masked(text: &str) -> String {
        Redactor::new(&[SECRET.to_owned()])
            .redact(text)
            .into_owned()
    }

    #[test]
    fn secrets_are_masked_longest_first() {
        let r = Redactor::new(&["hunter2hunter2".into(), "hunter2".into(), "ab".into()]);
        assert_eq!(
            r.redact("token=hunter2hunter2 pw=hunter2 short=ab"),
            "token=[REDACTED] pw=[REDACTED] short=ab"
        );
    }

    #[test]
    fn text_without_secrets_is_not_copied() {
        let r = Redactor::new(&["hunter2".into()]);
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
        assert!(matches!(
            Redactor::new(&[]).redact("hunter2"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_escaped_forms_are_masked() {
        let escaped = serde_json::to_string(SECRET).unwrap();
        assert_eq!(
            masked(&format!("{{\"token\":{escaped}}}")),
            "{\"token\":\"[REDACTED]\"}"
        );
        assert_eq!(
            masked(r#"{"token":"s3cr/t+t\u00f6k\"en="}"#),
            "{\"token\":\"[REDACTED]\"}"
        );
    }

    #[test]
    fn url_encoded_forms_are_masked() {
        let upper = utf8_percent_encode(SECRET, URL_ENCODE).to_string();
        assert!(upper.contains("%2F"));
        for form in [upper.clone(), lower_hex_escapes(&upper)] {
            let text = format!("GET /cb?token={form}&x=1");
            let out = masked(&text);
            assert_eq!(out, "GET /cb?token=[REDACTED]&x=1", "{form}");
        }
        let spaced = Redactor::new(&["open sesame".into()]);
        assert_eq!(spaced.redact("pw=open+sesame"), "pw=[REDACTED]");
        assert_eq!(spaced.redact("pw=open%20sesame"), "pw=[REDACTED]");
    }

    #[test]
    fn base64_of_the_secret_and_of_user_colon_secret_is_masked() {
        for prefix in ["", "u:", "us:", "user:", "a-much-longer-user-name:"] {
            for engine in [&STANDARD, &URL_SAFE] {
                let encoded = engine.encode(format!("{prefix}{SECRET}"));
                let out = masked(&format!("Authorization: Basic {encoded}"));
                assert!(out.contains(MASK), "{prefix:?}: {out}");
                // What is left around the mask is at most the few characters
                // that also carry the prefix's or the padding's bits.
                let left = out.len() - "Authorization: Basic ".len() - MASK.len();
                let prefix_chars = (prefix.len() * 8).div_ceil(6);
                assert!(left <= prefix_chars + 4, "{prefix:?}: {out}");
            }
        }
    }

    #[test]
    fn every_form_of_a_short_secret_is_masked_too() {
        let r = Redactor::new(&["abcd".into()]);
        let basic = STANDARD.encode("me:abcd");
        assert!(!r.redact(&basic).contains(&STANDARD.encode("abcd")[..4]));
        assert!(r.redact(&basic).contains(MASK));
    }
}
