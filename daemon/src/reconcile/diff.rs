//! What a downstream system lacks of what its upstream system has.

use std::cmp::Ordering;
use std::iter::Peekable;

use super::set::{IdSet, canonical_cmp};

/// The figures of a flow for one asset. Ids downstream that are not upstream
/// play no part: they are neither missing nor received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Distinct upstream ids.
    pub expected: u64,
    /// Upstream ids present downstream: `expected - missing`.
    pub received: u64,
}

/// [`Counts`] plus the missing ids themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Distinct upstream ids.
    pub expected: u64,
    /// Upstream ids present downstream: `expected - missing.len()`.
    pub received: u64,
    /// Upstream ids absent downstream, sorted by bytes so the store can page
    /// them with a plain `WHERE id > ?` cursor.
    pub missing: Vec<String>,
}

/// Computes `upstream - downstream`, holding every missing id in memory. When
/// a sync has failed outright that can be the whole upstream set: a caller
/// that only pages or counts them should use [`for_each_missing`].
pub fn difference(upstream: &IdSet, downstream: &IdSet) -> Difference {
    let mut missing = Vec::new();
    let counts = for_each_missing(upstream, downstream, |id| missing.push(id.to_owned()));
    missing.sort_unstable();
    Difference {
        expected: counts.expected,
        received: counts.received,
        missing,
    }
}

/// Hands each upstream id absent downstream to `on_missing`, in canonical
/// (hash) order, not alphabetical, and returns the counts. One linear merge of
/// the two sets that allocates nothing; comparisons look at id bytes when two
/// hashes tie, so a hash collision can never make an id "present", and even a
/// plugin that makes every id collide only turns it into a merge by bytes.
pub fn for_each_missing(
    upstream: &IdSet,
    downstream: &IdSet,
    mut on_missing: impl FnMut(&str),
) -> Counts {
    let mut downstream = downstream.keyed().peekable();
    let mut missing = 0u64;
    for (hash, id) in upstream.keyed() {
        if !advance_to(&mut downstream, hash, id) {
            missing += 1;
            on_missing(id);
        }
    }
    let expected = upstream.len() as u64;
    Counts {
        expected,
        received: expected - missing,
    }
}

/// Skips downstream ids that sort before `(hash, id)`; says whether the next
/// one is `id` itself (and consumes it). Both sides are strictly increasing,
/// so nothing skipped can match a later upstream id.
fn advance_to<'a>(
    downstream: &mut Peekable<impl Iterator<Item = (u64, &'a str)>>,
    hash: u64,
    id: &str,
) -> bool {
    while let Some(&(down_hash, down_id)) = downstream.peek() {
        match canonical_cmp(down_hash, down_id.as_bytes(), hash, id.as_bytes()) {
            Ordering::Less => {
                downstream.next();
            }
            Ordering::Equal => {
                downstream.next();
                return true;
            }
            Ordering::Greater => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::IdSetBuilder;

    /// A set with chosen hashes, to force collisions.
    fn with_hashes(ids: &[(u64, &str)]) -> IdSet {
        let mut builder = IdSetBuilder::new();
        for &(hash, id) in ids {
            builder.push_hashed(hash, id);
        }
        builder.finish()
    }

    #[test]
    fn colliding_hashes_never_make_an_id_present() {
        let all_seven =
            |ids: &[&'static str]| with_hashes(&ids.iter().map(|&id| (7, id)).collect::<Vec<_>>());
        let upstream = all_seven(&["d", "a", "c", "b"]);
        let downstream = all_seven(&["e", "b", "d"]);
        let diff = difference(&upstream, &downstream);
        assert_eq!(diff.missing, ["a", "c"]);
        assert_eq!((diff.expected, diff.received), (4, 2));
    }

    /// One id per hash on each side, the hashes equal, the ids not.
    #[test]
    fn a_lone_collision_across_sides_is_missing() {
        let upstream = with_hashes(&[(1, "same"), (2, "up-only"), (3, "x")]);
        let downstream = with_hashes(&[(1, "same"), (2, "down-only"), (3, "x")]);
        let diff = difference(&upstream, &downstream);
        assert_eq!(diff.missing, ["up-only"]);
        assert_eq!((diff.expected, diff.received), (3, 2));
    }

    /// The streaming variant reports each missing id once, in canonical
    /// order, across many partitions.
    #[test]
    fn missing_ids_stream_in_canonical_order() {
        let ids: Vec<String> = (0..100_000).map(|i| format!("id-{i}")).collect();
        let mut builder = IdSetBuilder::new();
        builder.extend(&ids).expect("within limits");
        let upstream = builder.finish();
        let mut builder = IdSetBuilder::new();
        builder
            .extend(
                ids.iter()
                    .enumerate()
                    .filter(|(i, _)| i % 7 != 0)
                    .map(|(_, id)| id),
            )
            .expect("within limits");
        let downstream = builder.finish();

        let mut streamed = Vec::new();
        let counts = for_each_missing(&upstream, &downstream, |id| streamed.push(id.to_owned()));
        let canonical: Vec<&str> = upstream
            .iter()
            .filter(|id| !downstream.contains(id))
            .collect();
        assert_eq!(streamed, canonical);
        assert_eq!(streamed.len(), 14_286);
        assert_eq!(counts.received, 100_000 - 14_286);
    }
}
