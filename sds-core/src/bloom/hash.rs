//! The hash functions that place an item's bits (DESIGN §6), as @waku/sds computes them.

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
pub(super) fn item_hash(bytes: &[u8]) -> u64 {
    // Reinterpreting the bits as i32 is the point.
    let signed = murmur3_x86_32(bytes, 0) as i32;
    u64::from(signed.unsigned_abs())
}

/// `(h(item) mod m, h(item ++ " b") mod m)`; `(0, 0)` when `m` is 0.
pub(super) fn base_hashes(item: &str, m: u64) -> (u64, u64) {
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
pub(super) fn combine(a: u64, b: u64, n: u32, m: u64) -> u64 {
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
