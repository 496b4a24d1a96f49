//! [`IdSetBuilder`] (ids as they stream in) and [`IdSet`] (the finished,
//! deduplicated set in canonical order).
//!
//! Both keep ids in partitions by the top bits of their hash. The canonical
//! order sorts by hash first, so partition 0 holds the first stretch of it,
//! partition 1 the next, and so on: a set is the concatenation of its
//! partitions. What this buys is memory locality. A million ids arrive in an
//! order unrelated to their hashes; in one buffer, sorting them, checking
//! duplicates and comparing two sets would read the ids' bytes in random order
//! across tens of megabytes, a cache and TLB miss per id. In a partition of a
//! few thousand ids everything stays in the CPU cache, and finishing a
//! partition leaves its bytes in canonical order, so a merge reads memory
//! front to back. Measured on this project's machine for a million ids:
//! sorting 105 ms in one buffer, 48 ms partitioned; merging two sets 60-80 ms
//! with the bytes in arrival order, 20 ms in canonical order.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use thiserror::Error;

use super::hash::id_hash;

/// The most id bytes one builder or set holds: entries address their
/// partition's text with `u32` offsets, which halves their size against
/// `usize`. 4 GiB of ids for one asset is far past what the daemon should hold.
pub const MAX_TEXT_BYTES: usize = u32::MAX as usize;

/// A large set has `1 << PARTITION_BITS` partitions: a million ids make 256
/// partitions of about 4,000 ids, 60 KB of entries and 60-150 KB of text each,
/// which fits in a core's L2 cache.
const PARTITION_BITS: u32 = 8;
const PARTITIONS: usize = 1 << PARTITION_BITS;

/// Sets below this many ids stay in one partition: 256 would cost 12 KB of
/// headers and as many small buffers, for a set that fits in cache anyway.
const PARTITION_FROM: usize = 1 << 16;

/// Smallest growth of a partition's buffers (in bytes or entries).
const MIN_GROWTH: usize = 64;

/// Which of `partitions` (1 or [`PARTITIONS`]) an id with `hash` belongs to.
fn partition_of(hash: u64, partitions: usize) -> usize {
    if partitions == PARTITIONS {
        (hash >> (u64::BITS - PARTITION_BITS)) as usize
    } else {
        0
    }
}

/// How many partitions a set of `ids` ids gets.
fn partitions_for(ids: usize) -> usize {
    if ids >= PARTITION_FROM { PARTITIONS } else { 1 }
}

/// By how much to grow a full buffer of `capacity` that needs `needed` more:
/// by half, not the usual doubling, because the buffers are a builder's whole
/// cost and doubling leaves up to half of them unused.
fn growth(capacity: usize, needed: usize) -> usize {
    (capacity / 2).max(needed).max(MIN_GROWTH)
}

/// One id inside a partition's text: its hash (the first sort key) and where
/// its bytes are. 16 bytes, against 24 for a `String` header plus a heap block.
#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    start: u32,
    len: u32,
}

impl Entry {
    fn range(self) -> Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// The canonical order: by hash, then by the id's bytes when hashes tie. The
/// byte comparison is what keeps every "equal" exact whatever the hash does.
pub(crate) fn canonical_cmp(a_hash: u64, a: &[u8], b_hash: u64, b: &[u8]) -> Ordering {
    a_hash.cmp(&b_hash).then_with(|| a.cmp(b))
}

/// A stretch of the canonical order: ids appended to one text buffer, one
/// [`Entry`] each.
///
/// Invariant: every entry's range lies in `text` on `char` boundaries (ids
/// are appended as whole `&str`s and the total is capped at
/// [`MAX_TEXT_BYTES`]), so slicing `text` by an entry never panics.
#[derive(Clone, Default)]
struct Partition {
    text: String,
    entries: Vec<Entry>,
}

impl Partition {
    /// Appends `id`; the caller has checked the total stays within
    /// [`MAX_TEXT_BYTES`], so the `u32` offsets cannot truncate.
    fn push(&mut self, hash: u64, id: &str) {
        if self.text.capacity() - self.text.len() < id.len() {
            self.text
                .reserve_exact(growth(self.text.capacity(), id.len()));
        }
        if self.entries.len() == self.entries.capacity() {
            self.entries
                .reserve_exact(growth(self.entries.capacity(), 1));
        }
        let start = self.text.len() as u32;
        self.text.push_str(id);
        self.entries.push(Entry {
            hash,
            start,
            len: id.len() as u32,
        });
    }

    fn id_of(&self, entry: Entry) -> &str {
        &self.text[entry.range()]
    }

    /// Sorts into canonical order, drops duplicates, and rewrites the text in
    /// that order, trimmed to its size. The rewrite goes through `scratch`,
    /// one partition-sized buffer shared by all partitions, so finishing a
    /// set allocates nothing large: a fresh buffer per partition cost a page
    /// fault per 4 KB and, while both existed, as much memory again.
    fn finish(&mut self, scratch: &mut String) {
        let bytes = self.text.as_bytes();
        // Not `canonical_cmp`: that takes both ids' bytes, and slicing them
        // (two bounds checks) on every comparison, not only on hash ties,
        // made the sort about 15 % slower.
        self.entries.sort_unstable_by(|a, b| {
            (a.hash.cmp(&b.hash)).then_with(|| bytes[a.range()].cmp(&bytes[b.range()]))
        });
        self.entries
            .dedup_by(|a, b| a.hash == b.hash && bytes[a.range()] == bytes[b.range()]);
        self.entries.shrink_to_fit();
        scratch.clear();
        for entry in &mut self.entries {
            let id = &self.text[entry.range()];
            entry.start = scratch.len() as u32;
            scratch.push_str(id);
        }
        self.text.clear();
        self.text.push_str(scratch);
        self.text.shrink_to_fit();
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.entries.iter().map(|&e| (e.hash, self.id_of(e)))
    }
}

/// Caps on what one builder takes in, so a runaway or hostile plugin cannot
/// make the daemon hold an unbounded set. They count ids as received,
/// duplicates included, because that is what occupies memory before
/// [`IdSetBuilder::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most ids received.
    pub max_ids: usize,
    /// Most id bytes received (UTF-8 length). Never above [`MAX_TEXT_BYTES`],
    /// whatever is set here.
    pub max_bytes: usize,
}

impl Default for Limits {
    /// Only the hard cap of the representation.
    fn default() -> Self {
        Self {
            max_ids: usize::MAX,
            max_bytes: MAX_TEXT_BYTES,
        }
    }
}

/// A builder refused an id because of its [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LimitError {
    #[error("more than {limit} ids")]
    TooManyIds { limit: usize },
    #[error("more than {limit} bytes of ids")]
    TooManyBytes { limit: usize },
}

/// Collects ids as they arrive in batches: every id's bytes are appended to
/// its partition's text buffer and it gets one 16-byte entry, so a million
/// 14-byte ids take about 30 MB rather than a heap block each. Duplicates are
/// kept until [`finish`](Self::finish), which sorts once; that is cheaper
/// than a hash table probe per id and needs no table.
#[derive(Default)]
pub struct IdSetBuilder {
    /// None until the first id; then 1, and [`PARTITIONS`] from
    /// [`PARTITION_FROM`] ids on.
    partitions: Vec<Partition>,
    ids: usize,
    bytes: usize,
    limits: Limits,
}

impl IdSetBuilder {
    /// A builder with the default (representation-only) [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that refuses ids past `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Adds one id.
    pub fn push(&mut self, id: &str) -> Result<(), LimitError> {
        if self.ids >= self.limits.max_ids {
            return Err(LimitError::TooManyIds {
                limit: self.limits.max_ids,
            });
        }
        let max_bytes = self.limits.max_bytes.min(MAX_TEXT_BYTES);
        if id.len() > max_bytes - self.bytes {
            return Err(LimitError::TooManyBytes { limit: max_bytes });
        }
        self.push_hashed(id_hash(id), id);
        Ok(())
    }

    /// Adds a batch of ids. On a [`LimitError`] the ids before the refused one
    /// stay added: the set is then incomplete and should be thrown away, since
    /// reconciling a partial set reports wrong missing ids.
    pub fn extend<I>(&mut self, ids: I) -> Result<(), LimitError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        ids.into_iter().try_for_each(|id| self.push(id.as_ref()))
    }

    /// A builder already split for a set of `ids` ids and without limits:
    /// decoding knows the count and bounds what it pushes itself.
    pub(crate) fn partitioned_for(ids: usize) -> Self {
        Self {
            partitions: vec![Partition::default(); partitions_for(ids)],
            ..Self::default()
        }
    }

    /// Adds an id whose hash is known and which is within the limits.
    pub(crate) fn push_hashed(&mut self, hash: u64, id: &str) {
        if self.partitions.len() < partitions_for(self.ids + 1) {
            self.repartition(partitions_for(self.ids + 1));
        }
        // In bounds: there is at least one partition now, and `partition_of`
        // answers below the count it is given.
        let partition = partition_of(hash, self.partitions.len());
        self.partitions[partition].push(hash, id);
        self.ids += 1;
        self.bytes += id.len();
    }

    /// Moves every id into `count` partitions. Happens at most twice per
    /// builder (none to one, one to [`PARTITIONS`]), the second time over
    /// [`PARTITION_FROM`] ids: about 1 MB copied once.
    fn repartition(&mut self, count: usize) {
        let old = std::mem::replace(&mut self.partitions, vec![Partition::default(); count]);
        for partition in &old {
            for (hash, id) in partition.iter() {
                self.partitions[partition_of(hash, count)].push(hash, id);
            }
        }
    }

    /// Sorts into canonical order and drops duplicates, one partition at a
    /// time and in place, so the extra memory is one partition's worth and the
    /// growth slack of the buffers is given back. CPU-bound (about 40 ms per
    /// million ids): async callers should run it on a blocking thread.
    pub fn finish(self) -> IdSet {
        let mut partitions = self.partitions;
        let mut scratch = String::new();
        for partition in &mut partitions {
            partition.finish(&mut scratch);
        }
        let len = partitions.iter().map(|p| p.entries.len()).sum();
        IdSet { partitions, len }
    }
}

/// An immutable, deduplicated set of ids in canonical order (by a fixed 64-bit
/// hash, then by bytes), which lets two sets be compared in one linear merge.
#[derive(Clone, Default)]
pub struct IdSet {
    /// Invariants, kept by [`IdSetBuilder::finish`] (decoding goes through it
    /// too, after checking the hashes): there are 0, 1 or [`PARTITIONS`]
    /// partitions, each id is in the one [`partition_of`] its hash, each
    /// partition's entries are strictly increasing in canonical order with
    /// their text in that order, and each `hash` is [`id_hash`] of its id.
    partitions: Vec<Partition>,
    /// The partitions' entries, counted once.
    len: usize,
}

impl IdSet {
    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set has no ids.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids in canonical order (not alphabetical).
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.keyed().map(|(_, id)| id)
    }

    /// The ids with their hashes, in canonical order: what a merge walks.
    pub(crate) fn keyed(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.partitions.iter().flat_map(Partition::iter)
    }

    /// Whether `id` is in the set: a binary search, exact (bytes compared).
    pub fn contains(&self, id: &str) -> bool {
        let hash = id_hash(id);
        let Some(partition) = self
            .partitions
            .get(partition_of(hash, self.partitions.len()))
        else {
            return false;
        };
        partition
            .entries
            .binary_search_by(|&e| {
                let bytes = &partition.text.as_bytes()[e.range()];
                canonical_cmp(e.hash, bytes, hash, id.as_bytes())
            })
            .is_ok()
    }
}

impl PartialEq for IdSet {
    /// The same ids, however they are partitioned.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.keyed().eq(other.keyed())
    }
}

impl Eq for IdSet {}

impl fmt::Debug for IdSetBuilder {
    /// Sizes only: a builder may hold millions of ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdSetBuilder")
            .field("ids", &self.ids)
            .field("bytes", &self.bytes)
            .field("limits", &self.limits)
            .finish()
    }
}

impl fmt::Debug for IdSet {
    /// Size only: a set may hold millions of ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdSet").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(ids: impl IntoIterator<Item = String>) -> IdSet {
        let mut builder = IdSetBuilder::new();
        builder.extend(ids).expect("within limits");
        builder.finish()
    }

    /// Across the switch to many partitions: every id is found, the order is
    /// by hash throughout, and the text holds no duplicate's bytes.
    #[test]
    fn large_sets_are_partitioned_in_canonical_order() {
        let ids = |n: usize| (0..n).map(|i| format!("id-{i:06}"));
        let set = build(ids(PARTITION_FROM + 1_000).chain(ids(500)));
        assert_eq!(set.partitions.len(), PARTITIONS);
        assert_eq!(set.len(), PARTITION_FROM + 1_000);
        let text: usize = set.partitions.iter().map(|p| p.text.len()).sum();
        assert_eq!(text, set.len() * 9);
        assert!(ids(PARTITION_FROM + 1_000).all(|id| set.contains(&id)));
        assert!(!set.contains("id-999999"));
        let hashes: Vec<u64> = set.keyed().map(|(hash, _)| hash).collect();
        assert!(hashes.is_sorted());
        assert!(set.keyed().all(|(hash, id)| hash == id_hash(id)));
    }

    #[test]
    fn partitioning_does_not_change_equality() {
        let one = build((0..10).map(|i| format!("{i}")));
        let mut builder = IdSetBuilder::partitioned_for(PARTITION_FROM);
        for (hash, id) in one.keyed() {
            builder.push_hashed(hash, id);
        }
        let many = builder.finish();
        assert_eq!(many.partitions.len(), PARTITIONS);
        assert_eq!(one.partitions.len(), 1);
        assert_eq!(one, many);
    }

    #[test]
    fn buffers_grow_by_half() {
        assert_eq!(growth(0, 1), MIN_GROWTH);
        assert_eq!(growth(1 << 20, 10), 1 << 19);
        assert_eq!(growth(10_000, 9_000), 9_000);
    }
}
