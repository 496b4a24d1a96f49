//! The 64-bit hash that puts an [`IdSet`](super::IdSet) in canonical order and
//! checksums its stored form.
//!
//! It is written here rather than taken from a crate because it is part of the
//! stored format: an encoded set is only valid if its ids are in the order this
//! function gives, so it must never change with a dependency upgrade, the
//! platform or the process (`std`'s `DefaultHasher` and `ahash` promise none
//! of that). Changing a single constant here means a new format version.
//!
//! It needs to spread ids evenly (sorting and merging by a `u64` is what makes
//! the module fast) but it is not collision-proof and need not be: every
//! comparison falls back to the id's bytes when hashes tie, so a collision,
//! even a deliberate one by a hostile plugin, only costs speed.

/// Seed for the hash of an id (the sort key).
pub(crate) const ID_SEED: u64 = 0x243F_6A88_85A3_08D3;
/// Seed for the checksum of an encoded set, so that it is not the same
/// function as the sort key.
pub(crate) const CHECKSUM_SEED: u64 = 0x1319_8A2E_0370_7344;

const MUL_WORD: u64 = 0x9E37_79B9_7F4A_7C15;
const MUL_TAIL: u64 = 0xBF58_476D_1CE4_E5B9;
const MUL_FINAL: u64 = 0x94D0_49BB_1331_11EB;

/// Multiplies into 128 bits and folds the halves together, so high input bits
/// reach low output bits and the other way round in one multiplication.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    // Truncation is the point: the low and high halves are folded together.
    (full as u64) ^ ((full >> 64) as u64)
}

/// Hashes `bytes` with `seed`: eight bytes at a time (little-endian, so the
/// result is the same on every platform), the length mixed in first, and a
/// final avalanche so the high bits (the partition, and what the sort looks
/// at first) depend on every input bit.
///
/// The last word is read as the input's last eight bytes, overlapping the word
/// before it, and inputs under eight bytes are read with two overlapping
/// loads: copying a short tail into a zeroed buffer instead compiles to a
/// `memcpy` call and a stalled load that took two thirds of the time of
/// adding an id.
pub(crate) fn hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut state = seed ^ (bytes.len() as u64).wrapping_mul(MUL_WORD);
    let last = match bytes.last_chunk::<8>() {
        Some(last) => {
            // Whole words before the last one; together with the last eight
            // bytes they cover the input.
            let (words, _) = bytes[..(bytes.len() - 1) / 8 * 8].as_chunks::<8>();
            for word in words {
                state = folded_multiply(state ^ u64::from_le_bytes(*word), MUL_WORD);
            }
            u64::from_le_bytes(*last)
        }
        None => short_word(bytes),
    };
    state = folded_multiply(state ^ last, MUL_TAIL);
    // The finaliser of splitmix64: full avalanche over 64 bits.
    state = (state ^ (state >> 30)).wrapping_mul(MUL_TAIL);
    state = (state ^ (state >> 27)).wrapping_mul(MUL_FINAL);
    state ^ (state >> 31)
}

/// Packs an input of under eight bytes into a word, every byte included, so
/// inputs of the same length give different words.
fn short_word(bytes: &[u8]) -> u64 {
    if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*first)) | (u64::from(u32::from_le_bytes(*last)) << 32)
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        u64::from(first) | (u64::from(bytes[bytes.len() / 2]) << 8) | (u64::from(last) << 16)
    } else {
        0
    }
}

/// The sort key hash of one id.
pub(crate) fn id_hash(id: &str) -> u64 {
    hash(ID_SEED, id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the function: an encoded set written by one build must decode in
    /// every later one. If this test fails, the format version must change.
    #[test]
    fn hash_values_are_fixed_forever() {
        let pinned: [(&str, u64); 4] = [
            ("", 0xbb2e_2cbd_6e64_bb8a),
            ("doc-0000123456", 0x7e20_0bdf_28ce_5f2e),
            ("é", 0x1460_3347_ba4c_cd89),
            ("0123456789abcdef-long-id", 0x5708_b8f5_5dc2_001e),
        ];
        for (id, want) in pinned {
            assert_eq!(id_hash(id), want, "hash of {id:?} changed");
        }
    }

    #[test]
    fn length_and_trailing_zeros_matter() {
        assert_ne!(hash(ID_SEED, b"a"), hash(ID_SEED, b"a\0"));
        assert_ne!(hash(ID_SEED, b""), hash(ID_SEED, b"\0"));
        assert_ne!(hash(ID_SEED, b"abcdefgh"), hash(ID_SEED, b"abcdefgh\0"));
    }

    /// Every input of up to three bytes over a small alphabet, and a sample
    /// of longer ones around the word boundaries, hash apart.
    #[test]
    fn short_and_boundary_inputs_do_not_collide() {
        let alphabet = [0u8, 1, b'a', b'z', 0xff];
        let mut seen = std::collections::HashSet::new();
        let mut inputs = vec![Vec::new()];
        for len in 1..=3 {
            let mut next = Vec::new();
            for prefix in inputs.iter().filter(|p| p.len() == len - 1) {
                for &b in &alphabet {
                    let mut input = prefix.clone();
                    input.push(b);
                    next.push(input);
                }
            }
            inputs.extend(next);
        }
        for len in 4..=24 {
            for fill in [0u8, b'x'] {
                for position in 0..len {
                    let mut input = vec![fill; len];
                    input[position] ^= 1;
                    inputs.push(input);
                }
            }
        }
        inputs.sort();
        inputs.dedup();
        for input in &inputs {
            assert!(seen.insert(hash(ID_SEED, input)), "collision on {input:?}");
        }
    }

    #[test]
    fn seeds_give_different_functions() {
        assert_ne!(hash(ID_SEED, b"x"), hash(CHECKSUM_SEED, b"x"));
    }
}
