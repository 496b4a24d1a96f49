//! Answers to read-only queries, kept while nothing they read can have
//! changed: dashboards poll the same query from many screens, and a status
//! page of 100 flows × 10 systems is a megabyte of JSON to build.
//!
//! An answer is reused only for the same token, query, operation and
//! variables, while no event or run has been published and no mutation made
//! since it was built, the config in force is the same, and for at most
//! [`MAX_AGE`] (fields that move with the clock, like a freshness age, are
//! that much behind at most). Answers with errors are never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long an answer may be reused at most.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// How many answers are kept; when full, the cache starts afresh.
const CAPACITY: usize = 256;

/// What an answer depends on besides the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// [`EventBus::published`](crate::events::EventBus::published).
    pub published: u64,
    pub mutations: u64,
    /// The address of the config in force.
    pub config: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub token: String,
    pub query: String,
    pub operation: Option<String>,
    pub variables: String,
}

struct Entry {
    version: Version,
    at: Instant,
    body: Bytes,
}

#[derive(Default)]
pub struct AnswerCache {
    entries: Mutex<HashMap<Key, Entry>>,
    mutations: AtomicU64,
}

impl AnswerCache {
    /// Marks every kept answer stale: a mutation may have changed anything.
    pub fn mutated(&self) {
        self.mutations.fetch_add(1, Ordering::AcqRel);
    }

    pub fn mutations(&self) -> u64 {
        self.mutations.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &Key, version: Version) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| e.version == version && e.at.elapsed() < MAX_AGE)
            .map(|e| e.body.clone())
    }

    pub fn put(&self, key: Key, version: Version, body: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                version,
                at: Instant::now(),
                body,
            },
        );
    }
}

/// Whether `query` holds only query operations (no mutation or
/// subscription), so its answer may be kept.
pub fn read_only(query: &str) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    match &doc.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Query,
        DocumentOperations::Multiple(ops) => {
            ops.values().all(|op| op.node.ty == OperationType::Query)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: &str) -> Key {
        Key {
            token: "t".into(),
            query: q.into(),
            operation: None,
            variables: "{}".into(),
        }
    }

    #[test]
    fn an_answer_is_reused_only_at_the_same_version() {
        let cache = AnswerCache::default();
        let v = Version {
            published: 1,
            mutations: cache.mutations(),
            config: 7,
        };
        cache.put(key("{ a }"), v, Bytes::from_static(b"1"));
        assert_eq!(cache.get(&key("{ a }"), v), Some(Bytes::from_static(b"1")));
        assert_eq!(cache.get(&key("{ b }"), v), None);
        let later = Version { published: 2, ..v };
        assert_eq!(cache.get(&key("{ a }"), later), None);
        cache.mutated();
        let after_mutation = Version {
            mutations: cache.mutations(),
            ..v
        };
        assert_eq!(cache.get(&key("{ a }"), after_mutation), None);
    }

    #[test]
    fn only_queries_are_read_only() {
        assert!(read_only("{ tenants { nodes { key } } }"));
        assert!(read_only("query A { a } query B { b }"));
        assert!(!read_only("mutation { reloadConfig { added } }"));
        assert!(!read_only("query A { a } mutation B { b }"));
        assert!(!read_only("subscription { healthChanged { seq } }"));
        assert!(!read_only("{ not valid"));
    }
}
