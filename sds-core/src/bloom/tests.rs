//! Unit tests of the bloom filters.

#![allow(clippy::expect_used, clippy::unwrap_used)]

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

    // The insert past the maximum cleans at once, without waiting for a timer.
    assert!(rolling.insert("id-120"));
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

/// A flood far beyond capacity between two timer cleanings never takes the rolling filter
/// past 120% of its capacity, so it stays trusted and keeps its error rate.
#[test]
fn rolling_cleans_itself_on_insert_during_a_flood() {
    let mut rolling = RollingBloomFilter::new(100, 0.001).expect("valid");
    let mut rebuilds = 0;
    for i in 0..100_000 {
        if rolling.insert(&format!("flood-{i}")) {
            rebuilds += 1;
        }
        assert!(
            rolling.len() <= 120,
            "{} ids after insert {i}",
            rolling.len()
        );
    }
    // 120 ids fill it, then every 41 inserts (80 -> 121) trigger a rebuild.
    assert_eq!(rebuilds, (100_000 - 121) / 41 + 1);
    assert!(!rolling.filter().is_overfilled());
    // The newest ids are all there; ids from before the last rebuild are not.
    assert!((100_000 - rolling.len()..100_000).all(|i| rolling.contains(&format!("flood-{i}"))));
    let stale = (0..10_000)
        .filter(|i| rolling.contains(&format!("flood-{i}")))
        .count();
    assert!(stale <= 30, "{stale} of 10,000 stale ids still match");
}

/// Nothing is allocated until the first insert, and an unallocated filter reads and
/// serializes exactly like an empty allocated one.
#[test]
fn bits_are_allocated_on_first_insert() {
    let lazy = RollingBloomFilter::new(CAPACITY, ERROR_RATE).expect("valid");
    assert!(lazy.filter().words.is_empty());
    assert_eq!(lazy.to_bytes(), vec![0u8; 18_752]);
    assert!(!lazy.contains("anything"));
    assert_eq!(lazy.filter().bits_set(), 0);
    let decoded = BloomFilter::from_bytes(CAPACITY, ERROR_RATE, &lazy.to_bytes()).unwrap();
    assert_eq!(&decoded, lazy.filter());

    let mut used = lazy.clone();
    used.insert("first");
    assert_eq!(used.filter().words.len(), 2_344);
    assert!(used.contains("first"));
    assert_ne!(used.filter(), lazy.filter());
}

/// The trust bound: 63.1% of the bits at the defaults; honest filters (at capacity, and
/// rolling ones at their 120% maximum) stay below it, an all-ones filter and one holding
/// twice its capacity do not.
#[test]
fn overfilled_filters_are_recognised() {
    let mut filter = default_filter();
    assert_eq!(filter.max_trusted_bits(), 94_644);
    assert!(!filter.is_overfilled());
    for i in 0..12_000 {
        filter.insert(&format!("honest-{i}"));
    }
    let fill = filter.bits_set();
    assert!((81_000..84_500).contains(&fill), "{fill} bits at 120%");
    assert!(!filter.is_overfilled());
    for i in 12_000..20_000 {
        filter.insert(&format!("honest-{i}"));
    }
    assert!(filter.is_overfilled(), "{} bits at 200%", filter.bits_set());

    let all_ones = BloomFilter::from_bytes(CAPACITY, ERROR_RATE, &[0xff; 18_752]).unwrap();
    assert!(all_ones.is_overfilled());
    assert_eq!(all_ones.bits_set(), 18_752 * 8);

    // A loose error rate (10p >= 1) trusts any fill: the bound is every bit.
    let loose = BloomFilter::from_bytes(1, 0.9, &[0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    assert_eq!(loose.max_trusted_bits(), 1);
    assert!(!loose.is_overfilled());
    // Bits past `m` (the padding of the last word, never set by an insert) count too:
    // a crafted filter is judged on what it carries.
    let padded = BloomFilter::from_bytes(1, 0.9, &[0xff; 8]).unwrap();
    assert_eq!(padded.bits_set(), 64);
    assert!(padded.is_overfilled());
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

#[test]
fn filters_are_equal_exactly_when_their_bits_are() {
    let never_written = BloomFilter::new(100, 0.01).unwrap();
    let mut a = never_written.clone();
    let mut b = never_written.clone();
    a.insert("x");
    assert_ne!(a, never_written);
    assert_ne!(never_written, a);
    b.insert("x");
    assert_eq!(a, b);
    b.insert("y");
    assert_ne!(a, b);
    // Decoded all-zero words equal a filter that never allocated its words.
    let zeros = BloomFilter::from_bytes(100, 0.01, &vec![0u8; a.to_bytes().len()]).unwrap();
    assert_eq!(zeros, never_written);
    assert_eq!(never_written, zeros);
    assert_ne!(zeros, a);
}
