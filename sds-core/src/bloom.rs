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
//! inserted ids in order and, when cleaned, rebuilds itself from the newest ones.

use std::collections::VecDeque;
use std::fmt;

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

/// A fixed-size bloom filter over string items, in the @waku/sds layout.
#[derive(Clone, PartialEq)]
pub struct BloomFilter {
    capacity: usize,
    error_rate: f64,
    layout: Layout,
    words: Vec<u64>,
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
    /// An empty filter sized for `capacity` items at false positive rate `error_rate`.
    ///
    /// Fails with [`BloomError::InvalidParameters`] unless `capacity > 0` and
    /// `0 < error_rate < 1`, or if the filter would be too large to allocate.
    pub fn new(capacity: usize, error_rate: f64) -> Result<Self, BloomError> {
        let layout = Layout::new(capacity, error_rate)?;
        let words = zeroed_words(layout.words).ok_or_else(|| BloomError::InvalidParameters {
            reason: format!(
                "cannot allocate {} words for capacity {capacity} at error rate {error_rate}",
                layout.words
            ),
        })?;
        Ok(Self {
            capacity,
            error_rate,
            layout,
            words,
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
        let mut filter = Self::new(capacity, error_rate)?;
        for (word, chunk) in filter.words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut be = [0u8; 8];
            be.copy_from_slice(chunk);
            *word = u64::from_be_bytes(be);
        }
        Ok(filter)
    }

    /// Adds `item`: sets its `k` bits.
    pub fn insert(&mut self, item: &str) {
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
        let mut bytes = Vec::with_capacity(self.layout.byte_len());
        for word in &self.words {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes
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

    /// How many bits are set.
    fn bits_set(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
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

/// A vector of `len` zero words, or `None` if it cannot be allocated.
fn zeroed_words(len: usize) -> Option<Vec<u64>> {
    let mut words = Vec::new();
    words.try_reserve_exact(len).ok()?;
    words.resize(len, 0);
    Some(words)
}

/// MurmurHash3, the x86 32-bit variant, of `data` with `seed`.
///
/// This is Austin Appleby's `MurmurHash3_x86_32`: 4-byte blocks read little-endian, the tail
/// mixed in, the length (mod 2^32) folded in, then the final avalanche. For example
/// `murmur3_x86_32(b"", 0) == 0` and `murmur3_x86_32(b"hello", 0) == 0x248b_fa47`.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    fn scramble(k: u32) -> u32 {
        k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }

    let mut h = seed;
    let blocks = data.chunks_exact(4);
    let tail = blocks.remainder();
    for block in blocks {
        if let [b0, b1, b2, b3] = *block {
            h ^= scramble(u32::from_le_bytes([b0, b1, b2, b3]));
            h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        }
    }
    if !tail.is_empty() {
        let k = tail
            .iter()
            .enumerate()
            .fold(0u32, |k, (i, &byte)| k | (u32::from(byte) << (8 * i)));
        h ^= scramble(k);
    }
    // The reference takes the length as a 32-bit integer.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// `h(x)`: the absolute value of the murmur3 hash read as a signed 32-bit integer.
///
/// `i32::MIN` maps to 2^31 rather than overflowing.
fn item_hash(bytes: &[u8]) -> u64 {
    // Reinterpreting the bits as i32 is the point.
    let signed = murmur3_x86_32(bytes, 0) as i32;
    u64::from(signed.unsigned_abs())
}

/// `(h(item) mod m, h(item ++ " b") mod m)`; `(0, 0)` when `m` is 0.
fn base_hashes(item: &str, m: u64) -> (u64, u64) {
    if m == 0 {
        return (0, 0);
    }
    let mut second = String::with_capacity(item.len() + 2);
    second.push_str(item);
    second.push_str(" b");
    (
        item_hash(item.as_bytes()) % m,
        item_hash(second.as_bytes()) % m,
    )
}

/// `(a + n * b) mod m` without overflow; 0 when `m` is 0.
fn combine(a: u64, b: u64, n: u32, m: u64) -> u64 {
    if m == 0 {
        return 0;
    }
    let index = (u128::from(a) + u128::from(n) * u128::from(b)) % u128::from(m);
    // Less than `m`, so it fits.
    index as u64
}

/// The bit index of `item` for hash function `n` in a filter of `m` bits (DESIGN §6).
///
/// With `h(x) = |murmur3_x86_32(utf8(x), 0) as i32|`, `a = h(item) mod m` and
/// `b = h(item ++ " b") mod m`, the index is `(a + n * b) mod m`, computed without overflow.
/// Returns 0 when `m` is 0 (no filter has zero bits).
pub fn bloom_index(item: &str, n: u32, m: u64) -> u64 {
    let (a, b) = base_hashes(item, m);
    combine(a, b, n, m)
}

/// A bloom filter of message ids with bounded memory, as nim-sds keeps one.
///
/// It remembers the inserted ids in insertion order. [`RollingBloomFilter::clean`] lets the
/// list grow to 120% of the capacity, then keeps only the newest 80% and rebuilds the filter
/// from them, so old ids eventually stop matching. Ids are not deduplicated: inserting the
/// same id twice remembers it twice.
#[derive(Clone)]
pub struct RollingBloomFilter {
    filter: BloomFilter,
    ids: VecDeque<String>,
    min_capacity: usize,
    max_capacity: usize,
}

impl fmt::Debug for RollingBloomFilter {
    // The ids (up to 12,000 at the defaults) would drown any log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollingBloomFilter")
            .field("filter", &self.filter)
            .field("ids", &self.ids.len())
            .field("min_capacity", &self.min_capacity)
            .field("max_capacity", &self.max_capacity)
            .finish()
    }
}

impl RollingBloomFilter {
    /// An empty rolling filter whose bloom filter is sized for `capacity` ids at
    /// `error_rate`; cleaning keeps between 80% and 120% of `capacity` ids.
    ///
    /// Fails with [`BloomError::InvalidParameters`] as [`BloomFilter::new`] does.
    pub fn new(capacity: usize, error_rate: f64) -> Result<Self, BloomError> {
        let filter = BloomFilter::new(capacity, error_rate)?;
        Ok(Self {
            filter,
            ids: VecDeque::new(),
            min_capacity: percent_of(capacity, 80),
            max_capacity: percent_of(capacity, 120),
        })
    }

    /// Adds `message_id` to the filter and remembers it as the newest id.
    pub fn insert(&mut self, message_id: &str) {
        self.filter.insert(message_id);
        self.ids.push_back(message_id.to_owned());
    }

    /// Whether `message_id` may have been inserted (and not rolled out since); see
    /// [`BloomFilter::contains`].
    pub fn contains(&self, message_id: &str) -> bool {
        self.filter.contains(message_id)
    }

    /// If more than the maximum (120% of capacity) ids are remembered, forgets all but the
    /// newest minimum (80% of capacity) and rebuilds the filter from those. Returns whether
    /// it rebuilt.
    pub fn clean(&mut self) -> bool {
        if self.ids.len() <= self.max_capacity {
            return false;
        }
        let excess = self.ids.len().saturating_sub(self.min_capacity);
        self.ids.drain(..excess);
        self.filter.clear();
        for id in &self.ids {
            self.filter.insert(id);
        }
        true
    }

    /// The filter's bytes; see [`BloomFilter::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        self.filter.to_bytes()
    }

    /// The underlying bloom filter.
    pub fn filter(&self) -> &BloomFilter {
        &self.filter
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// How many ids [`RollingBloomFilter::clean`] keeps (80% of capacity).
    pub fn min_capacity(&self) -> usize {
        self.min_capacity
    }

    /// How many ids may be remembered before [`RollingBloomFilter::clean`] rebuilds (120% of
    /// capacity).
    pub fn max_capacity(&self) -> usize {
        self.max_capacity
    }
}

/// `floor(value * percent / 100)`, saturating at `usize::MAX`.
fn percent_of(value: usize, percent: u32) -> usize {
    let scaled = value as u128 * u128::from(percent) / 100;
    usize::try_from(scaled).unwrap_or(usize::MAX)
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    const CAPACITY: usize = 10_000;
    const ERROR_RATE: f64 = 0.001;

    fn default_filter() -> BloomFilter {
        BloomFilter::new(CAPACITY, ERROR_RATE).expect("default parameters are valid")
    }

    #[test]
    fn murmur3_matches_published_values() {
        // Checked against the `mmh3` Python package (a binding of the reference C code).
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_x86_32(b"a", 0), 0x3c25_69b2);
        assert_eq!(murmur3_x86_32(b"abcd", 0x9747_b28c), 0xf047_8627);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn item_hash_takes_absolute_value_of_signed_hash() {
        // Values from the `mmh3` Python package (signed output).
        // "hello" hashes to a positive i32: h is the hash itself.
        assert_eq!(item_hash(b"hello"), 613_153_351);
        // "αβγδε" hashes to -1093865366 and "test123" to -1311906227: h is the negation.
        assert_eq!(murmur3_x86_32("αβγδε".as_bytes(), 0) as i32, -1_093_865_366);
        assert_eq!(item_hash("αβγδε".as_bytes()), 1_093_865_366);
        assert_eq!(item_hash(b"test123"), 1_311_906_227);
        // i32::MIN has no i32 absolute value; the u32 one is 2^31.
        assert_eq!(u64::from(i32::MIN.unsigned_abs()), 1u64 << 31);
    }

    #[test]
    fn default_sizing_matches_waku_sds() {
        let filter = default_filter();
        assert_eq!(filter.bit_count(), 150_000);
        assert_eq!(filter.hash_count(), 10);
        assert_eq!(filter.to_bytes().len(), 18_752);
        assert_eq!(filter.capacity(), CAPACITY);
        assert_eq!(filter.error_rate(), ERROR_RATE);
    }

    #[test]
    fn no_false_negatives() {
        let mut filter = default_filter();
        let ids: Vec<String> = (0..CAPACITY).map(|i| format!("msg-{i}")).collect();
        for id in &ids {
            filter.insert(id);
        }
        let missing = ids.iter().filter(|id| !filter.contains(id)).count();
        assert_eq!(missing, 0);
    }

    #[test]
    fn false_positive_rate_near_target_at_capacity() {
        let mut filter = default_filter();
        for i in 0..CAPACITY {
            filter.insert(&format!("inserted-{i}"));
        }
        let probes = 10_000;
        let hits = (0..probes)
            .filter(|i| filter.contains(&format!("fresh-{i}")))
            .count();
        let rate = hits as f64 / probes as f64;
        assert!(rate < 2.0 * ERROR_RATE, "false positive rate {rate}");
    }

    #[test]
    fn empty_filter_contains_nothing() {
        let filter = default_filter();
        assert!(!filter.contains("anything"));
        assert!(!filter.contains(""));
        assert!(filter.to_bytes().iter().all(|b| *b == 0));
    }

    #[test]
    fn bytes_round_trip() {
        let mut filter = default_filter();
        for i in 0..500 {
            filter.insert(&format!("id-{i}"));
        }
        let bytes = filter.to_bytes();
        let decoded = BloomFilter::from_bytes(CAPACITY, ERROR_RATE, &bytes).expect("right length");
        assert_eq!(decoded, filter);
        assert_eq!(decoded.to_bytes(), bytes);
        assert!(decoded.contains("id-0") && decoded.contains("id-499"));
    }

    #[test]
    fn wrong_length_is_rejected() {
        let bytes = default_filter().to_bytes();
        let short = &bytes[..bytes.len() - 1];
        assert_eq!(
            BloomFilter::from_bytes(CAPACITY, ERROR_RATE, short),
            Err(BloomError::WrongLength {
                expected: 18_752,
                found: 18_751
            })
        );
        let mut long = bytes.clone();
        long.extend_from_slice(&[0; 8]);
        assert_eq!(
            BloomFilter::from_bytes(CAPACITY, ERROR_RATE, &long),
            Err(BloomError::WrongLength {
                expected: 18_752,
                found: 18_760
            })
        );
        assert_eq!(
            BloomFilter::from_bytes(CAPACITY, ERROR_RATE, &[]),
            Err(BloomError::WrongLength {
                expected: 18_752,
                found: 0
            })
        );
        let message = BloomFilter::from_bytes(CAPACITY, ERROR_RATE, short)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("18752") && message.contains("18751"),
            "{message}"
        );
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for (capacity, rate) in [
            (0, 0.001),
            (10, 0.0),
            (10, 1.0),
            (10, -0.5),
            (10, 1.5),
            (10, f64::NAN),
            (10, f64::INFINITY),
        ] {
            let err = BloomFilter::new(capacity, rate).unwrap_err();
            assert!(
                matches!(err, BloomError::InvalidParameters { .. }),
                "{capacity} {rate}: {err:?}"
            );
            assert!(matches!(
                BloomFilter::from_bytes(capacity, rate, &[0; 8]),
                Err(BloomError::InvalidParameters { .. })
            ));
            assert!(matches!(
                RollingBloomFilter::new(capacity, rate),
                Err(BloomError::InvalidParameters { .. })
            ));
        }
        let zero = BloomFilter::new(0, 0.001).unwrap_err().to_string();
        assert!(zero.contains("capacity"), "{zero}");
        let rate = BloomFilter::new(10, 1.0).unwrap_err().to_string();
        assert!(rate.contains("error rate") && rate.contains('1'), "{rate}");
        // Too many bits to count is an error, not an overflow or an abort.
        assert!(matches!(
            BloomFilter::new(usize::MAX, 0.001),
            Err(BloomError::InvalidParameters { .. })
        ));
    }

    #[test]
    fn small_and_loose_parameters_still_work() {
        let mut filter = BloomFilter::new(1, 0.9).expect("valid");
        assert_eq!(filter.hash_count(), 1);
        assert_eq!(filter.bit_count(), 1);
        assert_eq!(filter.to_bytes().len(), 8);
        filter.insert("x");
        assert!(filter.contains("x"));
    }

    #[test]
    fn byte_layout_sets_exactly_the_item_bits() {
        let mut filter = default_filter();
        let item = "layout-check";
        filter.insert(item);
        let m = filter.bit_count();
        let expected: std::collections::BTreeSet<u64> = (0..filter.hash_count())
            .map(|n| bloom_index(item, n, m))
            .collect();
        assert!(!expected.is_empty());

        let bytes = filter.to_bytes();
        let mut set = std::collections::BTreeSet::new();
        for (w, chunk) in bytes.chunks_exact(8).enumerate() {
            let word = u64::from_be_bytes(chunk.try_into().unwrap());
            for bit in 0..64u64 {
                if word & (1 << bit) != 0 {
                    set.insert(w as u64 * 64 + bit);
                }
            }
        }
        assert_eq!(set, expected);

        // Spot-check one position by hand: the byte holding bit i is byte 7 - (i % 64) / 8
        // of word i / 64 (big-endian), at bit (i % 64) % 8 of that byte.
        let i = *expected.iter().next().unwrap();
        let byte = bytes[(i / 64) as usize * 8 + 7 - ((i % 64) / 8) as usize];
        assert_ne!(byte & (1 << (i % 8)), 0);
    }

    #[test]
    fn bloom_index_handles_zero_bits_and_large_n() {
        assert_eq!(bloom_index("x", 3, 0), 0);
        let m = 150_000;
        let index = bloom_index("x", u32::MAX, m);
        assert!(index < m);
        let a = bloom_index("x", 0, m);
        let b = (bloom_index("x", 1, m) + m - a) % m;
        assert_eq!(
            index,
            ((u128::from(a) + u128::from(u32::MAX) * u128::from(b)) % u128::from(m)) as u64
        );
    }

    #[test]
    fn rolling_bounds_follow_capacity() {
        let rolling = RollingBloomFilter::new(CAPACITY, ERROR_RATE).expect("valid");
        assert_eq!(rolling.min_capacity(), 8_000);
        assert_eq!(rolling.max_capacity(), 12_000);
        assert!(rolling.is_empty());
        assert_eq!(rolling.to_bytes().len(), 18_752);
    }

    #[test]
    fn rolling_clean_keeps_newest_and_drops_oldest() {
        let mut rolling = RollingBloomFilter::new(100, 0.001).expect("valid");
        // 120 ids: at the maximum, not over it.
        for i in 0..120 {
            rolling.insert(&format!("id-{i}"));
        }
        assert_eq!(rolling.len(), 120);
        assert!(!rolling.clean());
        assert_eq!(rolling.len(), 120);

        rolling.insert("id-120");
        assert!(rolling.clean());
        assert_eq!(rolling.len(), 80);
        // Kept: the newest 80, id-41..=id-120.
        for i in 41..=120 {
            assert!(rolling.contains(&format!("id-{i}")), "id-{i} lost");
        }
        // Dropped: id-0..=id-40. A few could still match as false positives; at 0.001
        // with 80 ids in a filter for 100, expect none of 41.
        let still = (0..=40)
            .filter(|i| rolling.contains(&format!("id-{i}")))
            .count();
        assert!(still <= 1, "{still} dropped ids still match");

        // The rebuilt filter is exactly a filter built from the kept ids.
        let mut fresh = BloomFilter::new(100, 0.001).expect("valid");
        for i in 41..=120 {
            fresh.insert(&format!("id-{i}"));
        }
        assert_eq!(rolling.filter(), &fresh);
        assert!(!rolling.clean());
    }

    #[test]
    fn rolling_insert_updates_filter_and_len() {
        let mut rolling = RollingBloomFilter::new(10, 0.01).expect("valid");
        assert!(!rolling.contains("a"));
        rolling.insert("a");
        assert!(rolling.contains("a"));
        assert!(rolling.filter().contains("a"));
        assert_eq!(rolling.len(), 1);
        assert!(!rolling.is_empty());
        assert_eq!(rolling.to_bytes(), rolling.filter().to_bytes());
    }

    #[test]
    fn debug_is_a_summary() {
        let mut rolling = RollingBloomFilter::new(CAPACITY, ERROR_RATE).expect("valid");
        rolling.insert("a");
        let text = format!("{rolling:?}");
        assert!(text.contains("bit_count: 150000"), "{text}");
        assert!(text.contains("ids: 1"), "{text}");
        assert!(text.len() < 400, "{text}");
    }
}
