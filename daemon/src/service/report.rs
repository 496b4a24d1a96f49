//! From what a plugin said (a report or an error message) to what the store
//! keeps and the health engine judges: validated, normalised and masked, so a
//! run's bad data can only fail that run.
//!
//! Everything here is pure: it owns the rules below (documented in README,
//! "What the daemon stores of a report") and must not touch the store, the
//! book or the plugin host.
//!
//! - every string is masked against the check's secrets, has NUL bytes
//!   replaced by U+FFFD (Postgres refuses them) and is cut to a size cap
//!   ([`Caps`]) on a character boundary, marked with `…`;
//! - an asset key longer than [`MAX_ASSET_KEY`] bytes, or an asset named
//!   twice, refuses the whole report: the run fails and says which;
//! - lists are capped (metadata, extras, totals, the error sample); a key
//!   repeated in metadata or extras keeps its last value, a repeated error
//!   kind in totals is summed;
//! - counts above `i64::MAX` (the database's BIGINT) are clamped to it, and
//!   sums saturate;
//! - times are clamped to [1970-01-01T00:00:00Z, 9999-12-31T23:59:59.999Z]
//!   ([`MAX_TIME`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::health::{AssetFacts, FailureClass, NativeLevel};
use crate::plugin::{
    ErrorClass, Observation, Redactor, Report, StatusLevel, Timestamp, escape_controls,
};
use crate::store::{ErrorRow, MAX_TIME_MS, NativeRow, ObservationRow};

/// The longest asset key kept, in bytes. Longer keys are refused, not cut:
/// two cut keys could name one asset.
pub const MAX_ASSET_KEY: usize = 1024;
/// The latest time kept: 9999-12-31T23:59:59.999Z.
pub const MAX_TIME: Duration = Duration::from_millis(MAX_TIME_MS as u64);
/// The longest run error message stored (in the run row, once); reasons and
/// logs carry a [`brief`] of it.
pub const MAX_STORED_MESSAGE: usize = 64 * 1024;
/// The most characters of an error message in a health reason or a log line.
pub const MAX_BRIEF: usize = 300;

/// Size caps of a report's strings (bytes) and lists (entries).
struct Caps;

impl Caps {
    const KIND: usize = 256;
    const NAME: usize = 256;
    const LABEL: usize = 256;
    const ID: usize = 1024;
    const LINK: usize = 2048;
    const MESSAGE: usize = 4096;
    const METADATA_VALUE: usize = 16 * 1024;
    const METADATA: usize = 256;
    const EXTRAS: usize = 256;
    const TOTALS: usize = 256;
    /// As the SDK's `MAX_ERROR_SAMPLE`.
    const ERRORS: usize = 100;
}

/// Why a report was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the report names asset {asset:?} twice (observations {first} and {second}); each asset may appear once"
    )]
    DuplicateAsset {
        asset: String,
        first: usize,
        second: usize,
    },
    #[error(
        "observation {index}: the asset key is {bytes} bytes, over the limit of {MAX_ASSET_KEY} (it starts {start:?})"
    )]
    AssetKeyTooLong {
        index: usize,
        bytes: usize,
        start: String,
    },
}

/// What normalisation changed, for one warning per run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub strings_cut: u64,
    pub nul_bytes: u64,
    pub entries_dropped: u64,
    pub duplicates_merged: u64,
    pub counts_clamped: u64,
    pub times_clamped: u64,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

impl std::fmt::Display for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [
            (self.strings_cut, "strings cut to their size cap"),
            (self.nul_bytes, "NUL characters replaced"),
            (self.entries_dropped, "list entries over their cap dropped"),
            (self.duplicates_merged, "repeated keys merged"),
            (self.counts_clamped, "counts clamped to 2^63-1"),
            (self.times_clamped, "times clamped to 1970..9999"),
        ];
        let said: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        f.write_str(&said.join(", "))
    }
}

/// A report made safe to store and judge.
#[derive(Debug, Default)]
pub struct Normalised {
    pub observations: Vec<ObservationRow>,
    pub changes: Changes,
}

/// Validates and normalises `report` by the rules of this module, masking
/// `redactor`'s secrets in every string. Linear in the report's size.
pub fn normalise(report: Report, redactor: &Redactor) -> Result<Normalised, ReportError> {
    let mut n = Normaliser {
        redactor,
        changes: Changes::default(),
    };
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(report.observations.len());
    let mut observations = Vec::with_capacity(report.observations.len());
    for (index, obs) in report.observations.into_iter().enumerate() {
        let row = n.observation(index, obs)?;
        match seen.entry(row.asset.clone()) {
            Entry::Occupied(first) => {
                return Err(ReportError::DuplicateAsset {
                    asset: cut_chars(&row.asset, 100),
                    first: *first.get(),
                    second: index,
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
        observations.push(row);
    }
    Ok(Normalised {
        observations,
        changes: n.changes,
    })
}

struct Normaliser<'r> {
    redactor: &'r Redactor,
    changes: Changes,
}

impl Normaliser<'_> {
    fn observation(
        &mut self,
        index: usize,
        obs: Observation,
    ) -> Result<ObservationRow, ReportError> {
        let mut asset = obs.asset;
        self.redactor.redact_in_place(&mut asset);
        if asset.len() > MAX_ASSET_KEY {
            return Err(ReportError::AssetKeyTooLong {
                index,
                bytes: asset.len(),
                start: cut_chars(&asset, 40),
            });
        }
        self.clean(&mut asset, MAX_ASSET_KEY);

        let mut error_totals: Vec<(String, u64)> = Vec::new();
        let mut totals_at: HashMap<String, usize> = HashMap::new();
        for t in obs.error_totals {
            let kind = self.text(t.kind, Caps::KIND);
            let count = self.count(t.count);
            match totals_at.get(&kind) {
                Some(&i) => {
                    self.changes.duplicates_merged += 1;
                    error_totals[i].1 =
                        error_totals[i].1.saturating_add(count).min(i64::MAX as u64);
                }
                None if error_totals.len() >= Caps::TOTALS => self.changes.entries_dropped += 1,
                None => {
                    totals_at.insert(kind.clone(), error_totals.len());
                    error_totals.push((kind, count));
                }
            }
        }
        // A report that gives error totals but no errored count is taken to
        // have errored the sum of its totals.
        let totals_sum = (!error_totals.is_empty()).then(|| {
            error_totals
                .iter()
                .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
                .min(i64::MAX as u64)
        });

        let extras = {
            let pairs = obs
                .counts
                .extras
                .into_iter()
                .map(|c| (c.name, c.value))
                .collect::<Vec<_>>();
            self.pairs(pairs, Caps::NAME, Caps::EXTRAS, |n, v| n.count(v))
        };
        let metadata = {
            let pairs = obs
                .metadata
                .into_iter()
                .map(|m| (m.key, m.value))
                .collect::<Vec<_>>();
            self.pairs(pairs, Caps::NAME, Caps::METADATA, |n, v| {
                n.text(v, Caps::METADATA_VALUE)
            })
        };

        let mut errors = Vec::with_capacity(obs.errors.len().min(Caps::ERRORS));
        let kept = obs.errors.len().min(Caps::ERRORS);
        self.changes.entries_dropped += (obs.errors.len() - kept) as u64;
        for e in obs.errors.into_iter().take(kept) {
            errors.push(ErrorRow {
                kind: self.text(e.kind, Caps::KIND),
                message: self.text(e.message, Caps::MESSAGE),
                document_id: e.document_id.map(|d| self.text(d, Caps::ID)),
                log_link: e.log_link.map(|l| self.text(l, Caps::LINK)),
                at: e.at.as_ref().map(|t| self.time(t)),
            });
        }

        let (last_received_id, last_received_at) = match obs.last_received {
            Some(l) => (
                Some(self.text(l.id, Caps::ID)),
                l.at.as_ref().map(|t| self.time(t)),
            ),
            None => (None, None),
        };
        let errored = match obs.counts.errored {
            Some(n) => Some(self.count(n)),
            None => totals_sum,
        };
        Ok(ObservationRow {
            asset,
            kind: self.text(obs.kind, Caps::KIND),
            expected: obs.counts.expected.map(|n| self.count(n)),
            received: obs.counts.received.map(|n| self.count(n)),
            errored,
            missing: None,
            freshness: obs.freshness.as_ref().map(|t| self.time(t)),
            last_received_id,
            last_received_at,
            native: obs.native_status.map(|s| NativeRow {
                level: level_name(s.level).to_owned(),
                label: self.text(s.label, Caps::LABEL),
                message: s.message.map(|m| self.text(m, Caps::MESSAGE)),
            }),
            extras,
            error_totals,
            metadata,
            errors,
        })
    }

    /// Key-value pairs: keys cleaned and capped, a repeated key keeps its
    /// last value (in its first place), at most `max` keys.
    fn pairs<V, W>(
        &mut self,
        pairs: Vec<(String, V)>,
        key_cap: usize,
        max: usize,
        mut value: impl FnMut(&mut Self, V) -> W,
    ) -> Vec<(String, W)> {
        let mut out: Vec<(String, W)> = Vec::with_capacity(pairs.len().min(max));
        let mut at: HashMap<String, usize> = HashMap::with_capacity(pairs.len().min(max));
        for (k, v) in pairs {
            let k = self.text(k, key_cap);
            match at.get(&k) {
                Some(&i) => {
                    self.changes.duplicates_merged += 1;
                    out[i].1 = value(self, v);
                }
                None if out.len() >= max => self.changes.entries_dropped += 1,
                None => {
                    at.insert(k.clone(), out.len());
                    let v = value(self, v);
                    out.push((k, v));
                }
            }
        }
        out
    }

    /// A string masked, without NUL, cut to `cap` bytes.
    fn text(&mut self, mut s: String, cap: usize) -> String {
        self.redactor.redact_in_place(&mut s);
        self.clean(&mut s, cap);
        s
    }

    fn clean(&mut self, s: &mut String, cap: usize) {
        if s.contains('\0') {
            self.changes.nul_bytes += s.matches('\0').count() as u64;
            *s = s.replace('\0', "\u{FFFD}");
        }
        if s.len() > cap {
            self.changes.strings_cut += 1;
            cut_bytes(s, cap);
        }
    }

    fn count(&mut self, n: u64) -> u64 {
        if n > i64::MAX as u64 {
            self.changes.counts_clamped += 1;
            return i64::MAX as u64;
        }
        n
    }

    fn time(&mut self, t: &Timestamp) -> SystemTime {
        let (clamped, changed) = clamp_time(t);
        if changed {
            self.changes.times_clamped += 1;
        }
        clamped
    }
}

/// A plugin timestamp as a time in the kept range, and whether it had to move
/// (nanos past a second count as 999,999,999).
fn clamp_time(t: &Timestamp) -> (SystemTime, bool) {
    if t.seconds < 0 {
        return (UNIX_EPOCH, true);
    }
    let nanos = t.nanos.min(999_999_999);
    let since = Duration::new(t.seconds as u64, nanos);
    if since > MAX_TIME {
        return (UNIX_EPOCH + MAX_TIME, true);
    }
    (UNIX_EPOCH + since, nanos != t.nanos)
}

/// Cuts `s` to at most `cap` bytes on a character boundary, ending in `…`.
fn cut_bytes(s: &mut String, cap: usize) {
    const MARK: &str = "…";
    let mut end = cap.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(MARK);
}

/// The first `n` characters of `s`, `…` after them when there were more.
fn cut_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// A short label a plugin gave outside its report (its version) as stored:
/// without NUL, at most 256 bytes.
pub fn short_text(text: &str) -> String {
    bounded(text.to_owned(), Caps::LABEL)
}

/// A run's error message as stored: masked, without NUL, at most
/// [`MAX_STORED_MESSAGE`] bytes.
pub fn stored_message(message: &str, redactor: &Redactor) -> String {
    bounded(redactor.redact(message).into_owned(), MAX_STORED_MESSAGE)
}

/// `text` without NUL, cut to `cap` bytes.
fn bounded(mut text: String, cap: usize) -> String {
    if text.contains('\0') {
        text = text.replace('\0', "\u{FFFD}");
    }
    if text.len() > cap {
        cut_bytes(&mut text, cap);
    }
    text
}

/// A stored message as health reasons and log lines carry it: control
/// characters escaped (a newline cannot forge a log line, an escape sequence
/// cannot reach a terminal), at most [`MAX_BRIEF`] characters.
pub fn brief(message: &str) -> String {
    let cut = match message.char_indices().nth(MAX_BRIEF) {
        Some((end, _)) => &message[..end],
        None => message,
    };
    let mut out = escape_controls(cut).into_owned();
    if cut.len() < message.len() {
        out.push('…');
    }
    out
}

pub fn failure_class(class: ErrorClass) -> FailureClass {
    match class {
        ErrorClass::Config => FailureClass::Config,
        ErrorClass::Auth => FailureClass::Auth,
        ErrorClass::Transient => FailureClass::Transient,
        ErrorClass::System => FailureClass::System,
    }
}

fn level_name(level: StatusLevel) -> &'static str {
    match level {
        StatusLevel::Ok => "ok",
        StatusLevel::Warn => "warn",
        StatusLevel::Error => "error",
        StatusLevel::Unknown => "unknown",
    }
}

/// The level a stored observation's native status names (`ok`, `warn`...).
fn native_level_named(name: &str) -> Option<NativeLevel> {
    Some(match name {
        "ok" => NativeLevel::Ok,
        "warn" => NativeLevel::Warn,
        "error" => NativeLevel::Error,
        "unknown" => NativeLevel::Unknown,
        _ => return None,
    })
}

/// The most of a vendor's message a reason carries.
const NATIVE_SAYS_MAX: usize = 160;

/// `label: message`, the message cut at [`NATIVE_SAYS_MAX`] characters.
fn native_says(n: &NativeRow) -> String {
    let label = brief(&n.label);
    match n
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        None => label,
        Some(m) => format!("{label}: {}", brief(&cut_chars(m, NATIVE_SAYS_MAX))),
    }
}

/// What the health engine judges of a stored observation (its history is
/// filled in by the book).
pub fn facts(row: &ObservationRow) -> AssetFacts {
    AssetFacts {
        expected: row.expected,
        received: row.received,
        errored: row.errored,
        freshness: row.freshness,
        native: row
            .native
            .as_ref()
            .and_then(|n| native_level_named(&n.level)),
        native_says: row.native.as_ref().map(native_says),
        history: Vec::new(),
        daily: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
