//! The stored form of an [`IdSet`]: what the store keeps as a BLOB so the
//! next run can reconcile against it without asking the system again.
//!
//! Format version 1, all integers unsigned LEB128 varints except the checksum:
//!
//! ```text
//! magic     4 bytes   "TIDS"
//! version   1 byte    1
//! count     varint    number of ids
//! ids       count x ( varint byte length, then that many UTF-8 bytes )
//!                     in canonical order: by the fixed 64-bit hash of
//!                     `hash.rs`, then by bytes; strictly increasing, so no
//!                     duplicates
//! checksum  8 bytes   little-endian; the `hash.rs` hash (checksum seed) of
//!                     every byte before it
//! ```
//!
//! Hashes are not stored: decoding recomputes them, which it must do anyway to
//! check the order, and it keeps a million 14-byte ids at about 15 MB. Decoding
//! trusts nothing in the blob: a corrupt or hostile one gives a
//! [`DecodeError`], never a panic, and never an allocation sized by a count it
//! has not seen the bytes for.

use thiserror::Error;

use super::hash::{CHECKSUM_SEED, hash, id_hash};
use super::set::{IdSet, IdSetBuilder, MAX_TEXT_BYTES, canonical_cmp};

const MAGIC: [u8; 4] = *b"TIDS";
const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1;
const CHECKSUM_LEN: usize = 8;
/// A `u64` needs at most ten 7-bit groups.
const MAX_VARINT_LEN: usize = 10;

/// Why a BLOB is not a valid encoded [`IdSet`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("not an encoded id set (bad magic bytes)")]
    NotAnIdSet,
    #[error("id set format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("encoded id set is truncated")]
    Truncated,
    #[error("encoded id set fails its checksum")]
    ChecksumMismatch,
    #[error("malformed length at byte {offset}")]
    BadVarint { offset: usize },
    #[error("id {index} is not valid UTF-8")]
    InvalidUtf8 { index: u64 },
    #[error("id {index} is out of canonical order or a duplicate")]
    NotCanonical { index: u64 },
    #[error("{count} unexpected bytes after the last id")]
    TrailingBytes { count: usize },
    #[error("ids exceed the {MAX_TEXT_BYTES}-byte limit of one set")]
    TooLarge,
}

impl IdSet {
    /// The stored form (format version 1, see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        put_varint(&mut out, self.len() as u64);
        for id in self.iter() {
            put_varint(&mut out, id.len() as u64);
            out.extend_from_slice(id.as_bytes());
        }
        let checksum = hash(CHECKSUM_SEED, &out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Exactly `self.encode().len()`, without encoding.
    pub fn encoded_len(&self) -> usize {
        let ids: usize = self
            .iter()
            .map(|id| varint_len(id.len() as u64) + id.len())
            .sum();
        HEADER_LEN + varint_len(self.len() as u64) + ids + CHECKSUM_LEN
    }

    /// Reads a stored form back, checking everything [`IdSet`] relies on:
    /// header, checksum, lengths, UTF-8 and strictly canonical order.
    pub fn decode(bytes: &[u8]) -> Result<IdSet, DecodeError> {
        let header = bytes.get(..HEADER_LEN).ok_or(DecodeError::Truncated)?;
        if header[..MAGIC.len()] != MAGIC {
            return Err(DecodeError::NotAnIdSet);
        }
        if header[MAGIC.len()] != VERSION {
            return Err(DecodeError::UnsupportedVersion(header[MAGIC.len()]));
        }
        let body_end = bytes
            .len()
            .checked_sub(CHECKSUM_LEN)
            .filter(|&end| end >= HEADER_LEN)
            .ok_or(DecodeError::Truncated)?;
        let (body, stored) = bytes.split_at(body_end);
        if hash(CHECKSUM_SEED, body).to_le_bytes() != stored {
            return Err(DecodeError::ChecksumMismatch);
        }

        let mut reader = Reader {
            bytes: body,
            pos: HEADER_LEN,
        };
        let count = reader.varint()?;
        // Every id takes at least its one-byte length, so a count larger than
        // the bytes left is a lie; checking it first bounds the reservation.
        if count > (body.len() - reader.pos) as u64 {
            return Err(DecodeError::Truncated);
        }
        let mut builder = IdSetBuilder::partitioned_for(count as usize);
        let mut previous: Option<(u64, &[u8])> = None;
        let mut total_bytes = 0usize;
        for index in 0..count {
            let len = reader.varint()?;
            let raw = reader.take(len)?;
            let id = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { index })?;
            let hash = id_hash(id);
            if let Some((prev_hash, prev)) = previous
                && canonical_cmp(prev_hash, prev, hash, raw).is_ge()
            {
                return Err(DecodeError::NotCanonical { index });
            }
            total_bytes += id.len();
            if total_bytes > MAX_TEXT_BYTES {
                return Err(DecodeError::TooLarge);
            }
            builder.push_hashed(hash, id);
            previous = Some((hash, raw));
        }
        if reader.pos != body.len() {
            return Err(DecodeError::TrailingBytes {
                count: body.len() - reader.pos,
            });
        }
        Ok(builder.finish())
    }
}

/// A cursor over the body that turns every overrun into
/// [`DecodeError::Truncated`] instead of a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for (i, &byte) in self.bytes[start..].iter().take(MAX_VARINT_LEN).enumerate() {
            let group = u64::from(byte & 0x7f);
            // The tenth group may only carry the top bit of a u64.
            if i == MAX_VARINT_LEN - 1 && group > 1 {
                return Err(DecodeError::BadVarint { offset: start });
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                self.pos = start + i + 1;
                return Ok(value);
            }
        }
        if self.bytes.len() - start < MAX_VARINT_LEN {
            Err(DecodeError::Truncated)
        } else {
            Err(DecodeError::BadVarint { offset: start })
        }
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let left = self.bytes.len() - self.pos;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= left)
            .ok_or(DecodeError::Truncated)?;
        let taken = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(taken)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation keeps the low seven bits, which is the encoding.
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> IdSet {
        let mut builder = IdSetBuilder::new();
        builder.extend(ids).expect("within limits");
        builder.finish()
    }

    /// Re-seals a hand-edited body so the structural checks behind the
    /// checksum get exercised.
    fn reseal(mut body: Vec<u8>) -> Vec<u8> {
        let checksum = hash(CHECKSUM_SEED, &body);
        body.extend_from_slice(&checksum.to_le_bytes());
        body
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            let mut reader = Reader {
                bytes: &out,
                pos: 0,
            };
            assert_eq!(reader.varint(), Ok(value));
            assert_eq!(reader.pos, out.len());
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let encoded = set(&["ab"]).encode();
        assert_eq!(&encoded[..4], b"TIDS");
        assert_eq!(encoded[4], 1);
        assert_eq!(&encoded[5..9], &[1, 2, b'a', b'b']);
        assert_eq!(encoded.len(), 9 + CHECKSUM_LEN);
    }

    #[test]
    fn encoded_len_matches_encode() {
        let long = "x".repeat(300);
        for ids in [vec![], vec![""], vec!["a", "bé", long.as_str()]] {
            let s = set(&ids);
            assert_eq!(s.encoded_len(), s.encode().len());
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let encoded = set(&["doc-1", "doc-2", "é", ""]).encode();
        for cut in 0..encoded.len() {
            assert!(IdSet::decode(&encoded[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_an_error() {
        let encoded = set(&["doc-1", "doc-2", "doc-3"]).encode();
        for byte in 0..encoded.len() {
            for bit in 0..8 {
                let mut corrupt = encoded.clone();
                corrupt[byte] ^= 1 << bit;
                assert!(IdSet::decode(&corrupt).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn header_errors_say_what_is_wrong() {
        assert_eq!(IdSet::decode(b""), Err(DecodeError::Truncated));
        assert_eq!(
            IdSet::decode(b"PK\x03\x04\x14\0"),
            Err(DecodeError::NotAnIdSet)
        );
        assert_eq!(
            IdSet::decode(b"TIDS\x02rest-of-it"),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert_eq!(IdSet::decode(b"TIDS\x01\0"), Err(DecodeError::Truncated));
    }

    #[test]
    fn structure_is_checked_behind_a_valid_checksum() {
        let mut dup = b"TIDS\x01\x02".to_vec();
        dup.extend_from_slice(b"\x01a\x01a");
        assert_eq!(
            IdSet::decode(&reseal(dup)),
            Err(DecodeError::NotCanonical { index: 1 })
        );

        let canonical = set(&["a", "b"]);
        let mut reversed = b"TIDS\x01\x02".to_vec();
        for id in canonical.iter().collect::<Vec<_>>().into_iter().rev() {
            reversed.push(1);
            reversed.extend_from_slice(id.as_bytes());
        }
        assert_eq!(
            IdSet::decode(&reseal(reversed)),
            Err(DecodeError::NotCanonical { index: 1 })
        );

        let bad_utf8 = b"TIDS\x01\x01\x02\xc3\x28".to_vec();
        assert_eq!(
            IdSet::decode(&reseal(bad_utf8)),
            Err(DecodeError::InvalidUtf8 { index: 0 })
        );

        let trailing = b"TIDS\x01\x01\x01a\xff".to_vec();
        assert_eq!(
            IdSet::decode(&reseal(trailing)),
            Err(DecodeError::TrailingBytes { count: 1 })
        );

        let huge_count = b"TIDS\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec();
        assert_eq!(
            IdSet::decode(&reseal(huge_count)),
            Err(DecodeError::Truncated)
        );

        let overlong = b"TIDS\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f".to_vec();
        assert_eq!(
            IdSet::decode(&reseal(overlong)),
            Err(DecodeError::BadVarint { offset: 5 })
        );

        let long_len = b"TIDS\x01\x01\x05ab".to_vec();
        assert_eq!(
            IdSet::decode(&reseal(long_len)),
            Err(DecodeError::Truncated)
        );
    }

    /// Garbage of every length from a fixed generator: decode must return,
    /// not panic, and essentially never accept.
    #[test]
    fn random_garbage_never_panics() {
        let mut state = 7u64;
        for len in 0..2_000usize {
            let mut junk: Vec<u8> = (0..len)
                .map(|_| (crate::reconcile::tests::splitmix64(&mut state) >> 56) as u8)
                .collect();
            assert!(IdSet::decode(&junk).is_err());
            if len >= HEADER_LEN {
                junk[..HEADER_LEN].copy_from_slice(b"TIDS\x01");
                let _ = IdSet::decode(&junk);
                let resealed = reseal(junk);
                let _ = IdSet::decode(&resealed);
            }
        }
    }
}
