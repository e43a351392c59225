//! The bloom filter index function against vectors from an independent implementation
//! (DESIGN §6): `tests/data/bloom_hashn_murmur3.json` holds 72 vectors of the bloom index
//! function of @waku/sds, which is also that of Nim before 2.2 (murmur3 string hash). The
//! file is a verbatim copy of the project's shared `vectors/bloom_hashn_murmur3.json`, kept
//! in the crate so the test needs nothing outside the repository.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use sds_core::bloom::{bloom_index, murmur3_x86_32};
use serde_json::Value;

/// Where the vectors come from, for the messages below.
const VECTORS_PATH: &str = "sds-core/tests/data/bloom_hashn_murmur3.json";

/// The vectors, compiled into the test: a missing file fails the build, never skips.
const VECTORS: &str = include_str!("data/bloom_hashn_murmur3.json");

const EXPECTED_VECTORS: usize = 72;

/// `h(x) = |murmur3_x86_32(utf8(x), 0) as i32|`, written out here from the public hash so the
/// test does not lean on the crate's private helper.
fn h(text: &str) -> u64 {
    u64::from((murmur3_x86_32(text.as_bytes(), 0) as i32).unsigned_abs())
}

struct Vector {
    input: String,
    n: u32,
    max_value: u64,
    hash_a: u64,
    hash_b: u64,
    hash_c: u64,
}

fn field_u64(value: &Value, name: &str, index: usize) -> u64 {
    value
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("vector {index}: `{name}` missing or not an unsigned integer"))
}

fn load() -> Vec<Vector> {
    let root: Value = serde_json::from_str(VECTORS)
        .unwrap_or_else(|e| panic!("{VECTORS_PATH} is not valid JSON: {e}"));
    let vectors = root
        .get("vectors")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{VECTORS_PATH} has no `vectors` array"));
    vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let input = v
                .get("input")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("vector {index}: `input` missing or not a string"))
                .to_owned();
            let expected = v
                .get("expected")
                .unwrap_or_else(|| panic!("vector {index}: `expected` missing"));
            Vector {
                input,
                n: u32::try_from(field_u64(v, "n", index)).expect("n fits in u32"),
                max_value: field_u64(v, "maxValue", index),
                hash_a: field_u64(expected, "hashA", index),
                hash_b: field_u64(expected, "hashB", index),
                hash_c: field_u64(expected, "hashC", index),
            }
        })
        .collect()
}

#[test]
fn all_vectors_are_present() {
    let vectors = load();
    assert_eq!(vectors.len(), EXPECTED_VECTORS);
    // The file covers the empty and the non-ASCII inputs; make sure they are still there.
    assert!(vectors.iter().any(|v| v.input.is_empty()));
    assert!(vectors.iter().any(|v| !v.input.is_ascii()));
    assert!(vectors.iter().all(|v| v.max_value > 0));
}

#[test]
fn hash_a_matches() {
    let vectors = load();
    assert_eq!(vectors.len(), EXPECTED_VECTORS);
    for v in &vectors {
        assert_eq!(
            h(&v.input) % v.max_value,
            v.hash_a,
            "hashA of {:?} mod {}",
            v.input,
            v.max_value
        );
        // index_0 is a itself.
        assert_eq!(bloom_index(&v.input, 0, v.max_value), v.hash_a);
    }
}

#[test]
fn hash_b_matches() {
    let vectors = load();
    assert_eq!(vectors.len(), EXPECTED_VECTORS);
    for v in &vectors {
        let second = format!("{} b", v.input);
        assert_eq!(
            h(&second) % v.max_value,
            v.hash_b,
            "hashB of {:?} mod {}",
            v.input,
            v.max_value
        );
    }
}

#[test]
fn hash_c_matches_bloom_index() {
    let vectors = load();
    assert_eq!(vectors.len(), EXPECTED_VECTORS);
    for v in &vectors {
        assert_eq!(
            bloom_index(&v.input, v.n, v.max_value),
            v.hash_c,
            "index {} of {:?} mod {}",
            v.n,
            v.input,
            v.max_value
        );
    }
}
