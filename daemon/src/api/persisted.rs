//! Automatic Persisted Queries: Apollo's `persistedQuery` request extension,
//! `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}`,
//! over POST and over GET (`?extensions=...`, as Apollo Client's link sends
//! hashed queries with `useGETForHashedQueries`), and in a WebSocket
//! `subscribe` payload ([`super::ws`]). A client sends the hash
//! alone; on `PERSISTED_QUERY_NOT_FOUND` it sends the text with the hash once,
//! and the text is kept for the next request.
//!
//! It owns the store of query texts by hash and turns a request that names a
//! hash into the same request with its text, before anything else reads the
//! request: the answer cache's key, the rule that GET only reads, parsing and
//! every limit then see a persisted query exactly as a sent one. It must not
//! run queries or decide who may ask (the caller lets only token holders use
//! the store).
//!
//! **Shared by every token and tenant.** It keeps query text only: never
//! variables, answers or tokens. A text is stored under its own SHA-256,
//! verified here, so nobody can bind a hash others use to another text, and a
//! stored text is run with the rights of whoever names it. All a hit tells is
//! that someone sent that exact text, which the asker must already know to
//! have its hash.
//!
//! **Bounded in bytes** by `api.persisted_queries.max_bytes` (moka, weighed
//! by text length plus [`ENTRY_OVERHEAD`], so a flood of tiny queries is
//! bounded too). A text is at most `api.limits.max_body` long: it arrives in a
//! request body or URL held to that limit. moka's TinyLFU admits a new text
//! into a full store only when it is asked for more often than the text it
//! would push out, so a flood of one-off queries does not evict the ones
//! dashboards send all day; their clients fall back to sending the text.
//!
//! async-graphql's own `apollo_persisted_queries` extension is not used,
//! although it verifies the hash: it runs inside execution, after the HTTP
//! layer has keyed the answer cache and applied the GET rule to the (empty)
//! text of a hash-only request; its miss carries no `extensions.code`; and
//! its store is an LRU counted in entries of parsed documents, whose size in
//! memory nobody bounds.

use std::sync::{Arc, Mutex};

use async_graphql::Request;
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::error::Code;
use crate::config::PersistedQueries;

/// The extension's key in a request's `extensions`.
pub const EXTENSION: &str = "persistedQuery";

/// What one stored text is counted to cost besides its bytes: its 32-byte
/// key, moka's entry and the `Arc` (an estimate on the high side, not a
/// measure). Counted so that a store of 16 MiB holds at most some 60,000
/// one-line queries, not millions of entries whose overhead nobody counts.
const ENTRY_OVERHEAD: u64 = 256;

/// Query texts by their SHA-256.
type Texts = Cache<[u8; 32], Arc<str>>;

/// The store for the setting in force, made again (empty) when a reload
/// changes the setting.
#[derive(Default)]
pub struct Persisted {
    store: Mutex<Option<(u64, Texts)>>,
}

/// What a request with the extension came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The hash named a stored text, which is now the request's query.
    Hit,
    /// The text sent matched its hash and was offered to the store (a full
    /// store keeps it only if it is asked for more than what it would evict).
    Registered,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Registered => "registered",
        }
    }
}

/// Why a request with the extension is not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The message and code Apollo Client's link look for to send the text.
    #[error("PersistedQueryNotFound")]
    NotFound,
    /// `api.persisted_queries = "off"`: the link then stops sending hashes.
    #[error("PersistedQueryNotSupported")]
    NotSupported,
    #[error(
        "extensions.persistedQuery must be {{\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}}: {0}"
    )]
    Malformed(String),
    #[error("extensions.persistedQuery.version {0} is not supported; send version 1")]
    Version(i64),
    /// Someone tried to store a text under a hash that is not its own.
    #[error(
        "extensions.persistedQuery.sha256Hash is {given}, but the SHA-256 of the query sent is \
         {actual}; nothing was stored or run"
    )]
    HashMismatch { given: String, actual: String },
}

impl Refusal {
    pub fn code(&self) -> Code {
        match self {
            Refusal::NotFound => Code::PersistedQueryNotFound,
            Refusal::NotSupported => Code::PersistedQueryNotSupported,
            Refusal::Malformed(_) | Refusal::Version(_) | Refusal::HashMismatch { .. } => {
                Code::BadUserInput
            }
        }
    }

    /// The outcome as `/metrics` counts it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::NotFound => "miss",
            Refusal::NotSupported => "unsupported",
            _ => "refused",
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Extension {
    version: i64,
    sha256_hash: String,
}

/// `hash` as 32 bytes, if it is 64 hex digits (any case).
fn digest(hash: &str) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    hex::decode_to_slice(hash, &mut out).ok()?;
    Some(out)
}

impl Persisted {
    /// Fills in the query text of a request that names a hash (`None`: it
    /// does not), and stores the text of one that sends both.
    pub fn resolve(
        &self,
        setting: PersistedQueries,
        request: &mut Request,
    ) -> Option<Result<Outcome, Refusal>> {
        let value = request.extensions.remove(EXTENSION)?;
        let PersistedQueries::On { max_bytes } = setting else {
            return Some(Err(Refusal::NotSupported));
        };
        Some(self.apply(max_bytes, value, request))
    }

    fn apply(
        &self,
        max_bytes: u64,
        value: async_graphql::Value,
        request: &mut Request,
    ) -> Result<Outcome, Refusal> {
        let ext: Extension =
            async_graphql::from_value(value).map_err(|e| Refusal::Malformed(e.to_string()))?;
        if ext.version != 1 {
            return Err(Refusal::Version(ext.version));
        }
        let key = digest(&ext.sha256_hash).ok_or_else(|| {
            Refusal::Malformed(format!(
                "sha256Hash {:?} is not 64 hex digits",
                ext.sha256_hash
            ))
        })?;
        let store = self.store(max_bytes);
        if request.query.is_empty() {
            let text = store.get(&key).ok_or(Refusal::NotFound)?;
            request.query = text.to_string();
            return Ok(Outcome::Hit);
        }
        let actual: [u8; 32] = Sha256::digest(request.query.as_bytes()).into();
        if actual != key {
            return Err(Refusal::HashMismatch {
                given: ext.sha256_hash,
                actual: hex::encode(actual),
            });
        }
        store.insert(key, Arc::from(request.query.as_str()));
        // Registrations are rare (once per text per client): settling the
        // store now keeps it within its bound at every moment.
        store.run_pending_tasks();
        Ok(Outcome::Registered)
    }

    /// The store for `max_bytes`, a new one if the setting changed.
    fn store(&self, max_bytes: u64) -> Texts {
        let mut held = self.store.lock().unwrap_or_else(|e| e.into_inner());
        match &*held {
            Some((bytes, store)) if *bytes == max_bytes => store.clone(),
            _ => {
                let store = Cache::builder()
                    .max_capacity(max_bytes)
                    .weigher(|_, text: &Arc<str>| {
                        let weight = text.len() as u64 + ENTRY_OVERHEAD;
                        u32::try_from(weight).unwrap_or(u32::MAX)
                    })
                    .build();
                *held = Some((max_bytes, store.clone()));
                store
            }
        }
    }

    /// Bytes held now, as the store weighs them; 0 before any use.
    pub fn bytes(&self) -> u64 {
        let held = self.store.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref().map_or(0, |(_, store)| store.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: PersistedQueries = PersistedQueries::On { max_bytes: 1 << 20 };

    fn hash(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    fn request(query: &str, ext: serde_json::Value) -> Request {
        let mut r = Request::new(query);
        r.extensions.insert(
            EXTENSION.to_owned(),
            async_graphql::Value::from_json(ext).unwrap(),
        );
        r
    }

    fn named(text: &str) -> Request {
        request(
            "",
            serde_json::json!({"version": 1, "sha256Hash": hash(text)}),
        )
    }

    #[test]
    fn a_text_is_stored_under_its_own_hash_and_found_by_it() {
        let p = Persisted::default();
        let q = "{ lastEventSeq }";
        assert_eq!(p.resolve(ON, &mut named(q)), Some(Err(Refusal::NotFound)));
        let mut sent = request(q, serde_json::json!({"version": 1, "sha256Hash": hash(q)}));
        assert_eq!(p.resolve(ON, &mut sent), Some(Ok(Outcome::Registered)));
        let mut r = named(q);
        assert_eq!(p.resolve(ON, &mut r), Some(Ok(Outcome::Hit)));
        assert_eq!(r.query, q);
        assert!(!r.extensions.contains_key(EXTENSION));
        // Upper-case hex names the same text.
        let mut upper = request(
            "",
            serde_json::json!({"version": 1, "sha256Hash": hash(q).to_uppercase()}),
        );
        assert_eq!(p.resolve(ON, &mut upper), Some(Ok(Outcome::Hit)));
        assert_eq!(p.resolve(ON, &mut Request::new(q)), None);
    }

    #[test]
    fn a_text_is_never_stored_under_another_texts_hash() {
        let p = Persisted::default();
        let popular = "{ lastEventSeq }";
        let evil = "{ auditLog { actor } }";
        let mut r = request(
            evil,
            serde_json::json!({"version": 1, "sha256Hash": hash(popular)}),
        );
        assert!(matches!(
            p.resolve(ON, &mut r),
            Some(Err(Refusal::HashMismatch { .. }))
        ));
        assert_eq!(
            p.resolve(ON, &mut named(popular)),
            Some(Err(Refusal::NotFound))
        );
    }

    #[test]
    fn bad_extensions_are_refused_with_what_is_wrong() {
        let p = Persisted::default();
        let q = "{ lastEventSeq }";
        for (ext, want) in [
            (
                serde_json::json!({"version": 2, "sha256Hash": hash(q)}),
                "version 2",
            ),
            (
                serde_json::json!({"version": 1, "sha256Hash": "abc"}),
                "\"abc\"",
            ),
            (serde_json::json!({"sha256Hash": hash(q)}), "version"),
            (serde_json::json!("yes"), "must be"),
        ] {
            let refusal = p.resolve(ON, &mut request(q, ext)).unwrap().unwrap_err();
            assert_eq!(refusal.code(), Code::BadUserInput);
            assert!(refusal.to_string().contains(want), "{refusal}");
        }
        assert_eq!(
            p.resolve(PersistedQueries::Off, &mut named(q)),
            Some(Err(Refusal::NotSupported))
        );
    }

    /// 10,000 distinct queries into a 64 KiB store: it never holds more.
    #[test]
    fn the_store_stays_within_its_bytes() {
        let p = Persisted::default();
        let max_bytes = 64 << 10;
        let setting = PersistedQueries::On { max_bytes };
        for i in 0..10_000 {
            let q = format!("{{ lastEventSeq }} # {i:0>200}");
            let mut r = request(
                &q,
                serde_json::json!({"version": 1, "sha256Hash": hash(&q)}),
            );
            assert_eq!(p.resolve(setting, &mut r), Some(Ok(Outcome::Registered)));
            assert!(p.bytes() <= max_bytes, "{} bytes after {i}", p.bytes());
        }
        assert!(p.bytes() > max_bytes / 2, "{}", p.bytes());
    }
}
