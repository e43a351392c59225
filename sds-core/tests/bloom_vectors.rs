//! The bloom filter index function against the shared vectors (DESIGN §6):
//! `shared/vectors/bloom_hashn_murmur3.json`, 72 vectors from @waku/sds.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use sds_core::bloom::{bloom_index, murmur3_x86_32};
use serde_json::Value;

/// `<workspace>/../shared/vectors/...`: `shared/` sits beside the workspace checkout, both
/// on a developer machine and in CI.
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/vectors/bloom_hashn_murmur3.json"
);

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
    let text = std::fs::read_to_string(VECTORS).unwrap_or_else(|e| {
        panic!(
            "cannot read the bloom vectors at {VECTORS}: {e}. They live in shared/vectors/ \
             beside the workspace checkout; this test does not skip without them."
        )
    });
    let root: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{VECTORS} is not valid JSON: {e}"));
    let vectors = root
        .get("vectors")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{VECTORS} has no `vectors` array"));
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
