//! CRC32C (Castagnoli), the checksum of the storage envelope.
//!
//! The `crc32c` crate computes it with the CPU's CRC32 instructions where there are some
//! (about 13 GB/s here, against 1.5 GB/s for a table-driven version) and falls back to
//! software elsewhere; the tests below check it against the definition.

/// The CRC32C of `bytes`.
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// The CRC32C of the bytes `crc` was computed over followed by `bytes`.
pub(crate) fn extend(crc: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Castagnoli polynomial, bit-reflected.
    const POLYNOMIAL: u32 = 0x82F6_3B78;

    /// Bit by bit, straight from the definition: what the tables must agree with.
    fn bitwise(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLYNOMIAL
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn standard_check_values() {
        // The catalogue's check value of CRC-32/ISCSI, and RFC 3720's test patterns.
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(checksum(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(checksum(&ascending), 0x46DD_794E);
    }

    #[test]
    fn crate_agrees_with_the_bitwise_definition_at_every_length_and_split() {
        let bytes: Vec<u8> = (0u32..300)
            .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..bytes.len() {
            let expected = bitwise(&bytes[..len]);
            assert_eq!(checksum(&bytes[..len]), expected, "length {len}");
            let split = len / 3;
            assert_eq!(
                extend(checksum(&bytes[..split]), &bytes[split..len]),
                expected,
                "length {len} split at {split}"
            );
        }
    }
}
