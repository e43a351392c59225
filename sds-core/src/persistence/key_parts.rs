//! Length-prefixed key components: a building block for backends whose keys are byte
//! strings (RocksDB keys, Redis keys).
//!
//! Ids may hold any byte, separators and NUL included, so a key made of several ids cannot
//! join them with a separator: `("a:b", "c")` and `("a", "b:c")` would collide. Each
//! component is written as its length (a LEB128 varint) followed by its bytes, which keeps
//! every tuple's encoding distinct and readable back, and keeps the keys of one prefix
//! (e.g. one namespace) together in byte order.

/// Appends `value` as a LEB128 varint (seven bits per byte, low bits first).
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        // Truncation is the point: the low seven bits of the value.
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Reads a LEB128 varint from the front of `bytes`, returning it and the rest; `None` when
/// the bytes end first or the value overflows a `u64`.
pub fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().enumerate() {
        let shift = u32::try_from(index).ok()?.checked_mul(7)?;
        if shift >= 64 {
            return None;
        }
        let bits = u64::from(byte & 0x7f);
        if shift > 0 && bits >> (64 - shift) != 0 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some((value, &bytes[index + 1..]));
        }
    }
    None
}

/// Appends `bytes` with its length in front.
pub fn put_length_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize always fits in u64 on supported targets.
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads one length-prefixed component from the front of `bytes`, returning it and the
/// rest; `None` when the bytes are too short for the length they announce.
pub fn take_length_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_varint(bytes)?;
    let len = usize::try_from(len).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_truncated_or_overflowing_input() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            out.push(0xAA);
            assert_eq!(take_varint(&out), Some((value, &[0xAA][..])));
        }
        assert_eq!(take_varint(&[0x80]), None);
        assert_eq!(take_varint(&[0xff; 11]), None);
        // Ten bytes reach bit 63; a tenth byte with any higher bit set overflows.
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(take_varint(&max), Some((u64::MAX, &[][..])));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(take_varint(&over), None);
    }

    #[test]
    fn components_with_separators_never_collide_and_read_back() {
        let encode = |parts: &[&[u8]]| {
            let mut out = Vec::new();
            for part in parts {
                put_length_prefixed(&mut out, part);
            }
            out
        };
        let left = encode(&[b"a:b", b"c"]);
        let right = encode(&[b"a", b"b:c"]);
        assert_ne!(left, right);
        let (first, rest) = take_length_prefixed(&left).unwrap();
        let (second, rest) = take_length_prefixed(rest).unwrap();
        assert_eq!((first, second, rest), (&b"a:b"[..], &b"c"[..], &[][..]));
        assert_eq!(take_length_prefixed(&[5, b'x']), None);
    }
}
