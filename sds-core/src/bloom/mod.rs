//! The bloom filter SDS peers exchange, laid out as @waku/sds lays it out.
//!
//! Sizing (DESIGN §1): for a capacity `n` and a target false positive rate `p`, each element
//! gets `b = ceil(-ln(p) / ln(2)^2)` bits, the filter uses `k = round(ln(2) * b)` hash
//! functions and `m = n * b` bits. The bits are stored in `1 + floor(m / 64)` 64-bit words;
//! bit `i` lives in word `i / 64` at position `i mod 64` counted from the least significant
//! bit. On the wire the words are written big-endian, one after the other. Capacity and `p`
//! are configuration shared by the peers and are not part of the bytes.
//!
//! Bit positions (DESIGN §6): with `h(x) = |murmur3_x86_32(utf8(x), 0) as i32|`,
//! `a = h(item) mod m`, `b = h(item ++ " b") mod m`, and the `k` positions of an item are
//! `(a + j * b) mod m` for `j` in `0..k` (see [`bloom_index`]).
//!
//! [`RollingBloomFilter`] adds the bounded memory nim-sds gives its filter: it remembers the
//! inserted ids in order and, once it holds more than 120% of its capacity, rebuilds itself
//! from the newest 80%, on insert as nim-sds does (not only when a timer cleans it).
//!
//! The bit array is allocated on the first insert: a filter nothing was inserted into reads
//! and serializes as all zeros without holding its `8 * (1 + floor(m / 64))` bytes (18.7 KB
//! at the defaults), so a channel that never receives or sends costs none of it.
//!
//! A received filter is evidence, not truth: [`BloomFilter::is_overfilled`] tells a filter
//! with more bits set than one at its capacity can honestly have, whose "yes" means little.

mod hash;
mod rolling;
#[cfg(test)]
mod tests;

use std::fmt;

#[cfg(test)]
use hash::item_hash;
use hash::{base_hashes, combine};
pub use hash::{bloom_index, murmur3_x86_32};
pub use rolling::RollingBloomFilter;

/// Errors from building or decoding a [`BloomFilter`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BloomError {
    /// The capacity or error rate cannot describe a bloom filter, or the filter they describe
    /// is too large to hold in memory.
    #[error("invalid bloom filter parameters: {reason}")]
    InvalidParameters {
        /// What was wrong with the parameters, with the offending values.
        reason: String,
    },
    /// Serialized bytes do not have the length the capacity and error rate call for.
    #[error(
        "serialized bloom filter has the wrong length: expected {expected} bytes, found {found}"
    )]
    WrongLength {
        /// The length in bytes the configured capacity and error rate call for.
        expected: usize,
        /// The length in bytes that was given.
        found: usize,
    },
}

/// The sizes a capacity and error rate call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// `m`, the number of addressable bits.
    bits: u64,
    /// `k`, the number of hash functions.
    hashes: u32,
    /// `1 + floor(m / 64)`, the number of 64-bit words stored.
    words: usize,
}

impl Layout {
    fn new(capacity: usize, error_rate: f64) -> Result<Self, BloomError> {
        if capacity == 0 {
            return Err(BloomError::InvalidParameters {
                reason: "capacity must be greater than zero (got 0)".to_owned(),
            });
        }
        if !(error_rate > 0.0 && error_rate < 1.0) {
            return Err(BloomError::InvalidParameters {
                reason: format!("error rate must be strictly between 0 and 1 (got {error_rate})"),
            });
        }
        let ln2 = std::f64::consts::LN_2;
        // `error_rate` is in (0, 1), so this is finite, positive and at most about 1550
        // (for the smallest subnormal); the float-to-int casts below cannot lose anything
        // that matters.
        let bits_per_element = (-error_rate.ln() / (ln2 * ln2)).ceil().max(1.0);
        let hashes = (ln2 * bits_per_element).round().max(1.0) as u32;
        let bits_per_element = bits_per_element as u64;

        let too_large = || BloomError::InvalidParameters {
            reason: format!(
                "a filter for capacity {capacity} at error rate {error_rate} is too large"
            ),
        };
        let bits = u64::try_from(capacity)
            .ok()
            .and_then(|c| c.checked_mul(bits_per_element))
            .ok_or_else(too_large)?;
        let words = usize::try_from(bits / 64 + 1).map_err(|_| too_large())?;
        // The serialized length must be representable too.
        words.checked_mul(8).ok_or_else(too_large)?;
        Ok(Self {
            bits,
            hashes,
            words,
        })
    }

    fn byte_len(&self) -> usize {
        // Checked in `Layout::new`.
        self.words.saturating_mul(8)
    }
}

/// How much worse than the configured error rate a received filter's false positive rate may
/// be before it is no longer trusted; see [`BloomFilter::is_overfilled`].
const TRUSTED_ERROR_FACTOR: f64 = 10.0;

/// A fixed-size bloom filter over string items, in the @waku/sds layout.
#[derive(Clone)]
pub struct BloomFilter {
    capacity: usize,
    error_rate: f64,
    layout: Layout,
    /// Empty until the first insert (all bits clear), then `layout.words` long.
    words: Vec<u64>,
}

impl PartialEq for BloomFilter {
    // A filter whose words are not allocated yet equals one whose words are all zero.
    fn eq(&self, other: &Self) -> bool {
        let words_equal = match (self.words.is_empty(), other.words.is_empty()) {
            (false, false) => self.words == other.words,
            (true, true) => true,
            (true, false) => other.words.iter().all(|w| *w == 0),
            (false, true) => self.words.iter().all(|w| *w == 0),
        };
        self.capacity == other.capacity
            && self.error_rate.to_bits() == other.error_rate.to_bits()
            && self.layout == other.layout
            && words_equal
    }
}

impl fmt::Debug for BloomFilter {
    // The words themselves (2,344 of them at the defaults) would drown any log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BloomFilter")
            .field("capacity", &self.capacity)
            .field("error_rate", &self.error_rate)
            .field("bit_count", &self.layout.bits)
            .field("hash_count", &self.layout.hashes)
            .field("words", &self.words.len())
            .field("bits_set", &self.bits_set())
            .finish()
    }
}

impl BloomFilter {
    /// An empty filter sized for `capacity` items at false positive rate `error_rate`. Its
    /// bits are allocated on the first insert.
    ///
    /// Fails with [`BloomError::InvalidParameters`] unless `capacity > 0` and
    /// `0 < error_rate < 1`, or if the filter would be too large to allocate.
    pub fn new(capacity: usize, error_rate: f64) -> Result<Self, BloomError> {
        let layout = Layout::new(capacity, error_rate)?;
        // Probe the allocation now, so a size that cannot be held fails here, as a
        // configuration error, rather than aborting on the first insert.
        Vec::<u64>::new()
            .try_reserve_exact(layout.words)
            .map_err(|_| BloomError::InvalidParameters {
                reason: format!(
                    "cannot allocate {} words for capacity {capacity} at error rate {error_rate}",
                    layout.words
                ),
            })?;
        Ok(Self {
            capacity,
            error_rate,
            layout,
            words: Vec::new(),
        })
    }

    /// Decodes a filter serialized by [`BloomFilter::to_bytes`] under the same capacity and
    /// error rate.
    ///
    /// Fails with [`BloomError::InvalidParameters`] as [`BloomFilter::new`] does, and with
    /// [`BloomError::WrongLength`] when `bytes` is not exactly `8 * (1 + floor(m / 64))` long.
    pub fn from_bytes(capacity: usize, error_rate: f64, bytes: &[u8]) -> Result<Self, BloomError> {
        let layout = Layout::new(capacity, error_rate)?;
        let expected = layout.byte_len();
        if bytes.len() != expected {
            return Err(BloomError::WrongLength {
                expected,
                found: bytes.len(),
            });
        }
        let mut words = Vec::with_capacity(layout.words);
        for chunk in bytes.chunks_exact(8) {
            let mut be = [0u8; 8];
            be.copy_from_slice(chunk);
            words.push(u64::from_be_bytes(be));
        }
        Ok(Self {
            capacity,
            error_rate,
            layout,
            words,
        })
    }

    /// Adds `item`: sets its `k` bits.
    pub fn insert(&mut self, item: &str) {
        if self.words.is_empty() {
            // `new` checked that this size can be allocated.
            self.words = vec![0; self.layout.words];
        }
        let m = self.layout.bits;
        let (a, b) = base_hashes(item, m);
        for n in 0..self.layout.hashes {
            let index = combine(a, b, n, m);
            if let Some((word, mask)) = self.locate(index) {
                *word |= mask;
            }
        }
    }

    /// Whether `item` may have been inserted: `false` is certain, `true` is right except for
    /// false positives at about the configured error rate while at or below capacity.
    pub fn contains(&self, item: &str) -> bool {
        let m = self.layout.bits;
        let (a, b) = base_hashes(item, m);
        (0..self.layout.hashes).all(|n| self.is_set(combine(a, b, n, m)))
    }

    /// The filter as bytes: its `1 + floor(m / 64)` words, each big-endian, in order.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.words.is_empty() {
            return vec![0; self.layout.byte_len()];
        }
        let mut bytes = Vec::with_capacity(self.layout.byte_len());
        for word in &self.words {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes
    }

    /// How many bits are set.
    pub fn bits_set(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The most bits a filter of this size may have set and still be trusted: the fill at
    /// which its false positive rate reaches ten times the configured one,
    /// `m * min(1, 10 p)^(1/k)`.
    ///
    /// Why that fill: an optimally sized filter at its capacity has about half its bits set
    /// (48.7% at the defaults) and errs at the configured rate `p`; rolling filters (ours and
    /// nim-sds's) hold up to 120% of capacity, 55.1% set and about 2.6 `p`. The bound, 63.1%
    /// at the defaults (about 150% of capacity), leaves 12 points of margin above the fullest
    /// honest rolling filter, where the spread of an honest fill is a fraction of a point, and
    /// beyond it more than one id in a hundred would match by chance (an all-ones filter
    /// matches every id).
    pub fn max_trusted_bits(&self) -> u64 {
        let bound = (TRUSTED_ERROR_FACTOR * self.error_rate).min(1.0);
        let fill = bound.powf(1.0 / f64::from(self.layout.hashes.max(1)));
        // `fill` is in (0, 1] and `bits` fits in f64's 53-bit mantissa for any filter that
        // can be allocated, so the product rounds to a value in 0..=bits.
        let bits = (fill * self.layout.bits as f64).ceil() as u64;
        bits.min(self.layout.bits)
    }

    /// Whether more bits are set than [`BloomFilter::max_trusted_bits`] allows: the filter
    /// holds far more than its capacity (or was crafted to match everything), so a hit in it
    /// is no evidence that the item was inserted.
    pub fn is_overfilled(&self) -> bool {
        self.bits_set() > self.max_trusted_bits()
    }

    /// `m`, the number of bits items are hashed into.
    pub fn bit_count(&self) -> u64 {
        self.layout.bits
    }

    /// `k`, the number of bits set per item.
    pub fn hash_count(&self) -> u32 {
        self.layout.hashes
    }

    /// The capacity the filter was sized for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The target false positive rate the filter was sized for.
    pub fn error_rate(&self) -> f64 {
        self.error_rate
    }

    /// Clears every bit, keeping the size.
    fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    fn is_set(&self, index: u64) -> bool {
        let word = usize::try_from(index / 64)
            .ok()
            .and_then(|i| self.words.get(i));
        word.is_some_and(|w| w & (1u64 << (index % 64)) != 0)
    }

    fn locate(&mut self, index: u64) -> Option<(&mut u64, u64)> {
        let i = usize::try_from(index / 64).ok()?;
        let word = self.words.get_mut(i)?;
        Some((word, 1u64 << (index % 64)))
    }
}
