//! Storage order helpers for backends whose native types cannot hold the contract's order
//! as is (see the "Ids and order" rules of [`super`]).
//!
//! A Lamport timestamp is a full `u64`. A store with only signed 64-bit integers
//! (PostgreSQL `bigint`, SQLite `INTEGER`) keeps it with [`lamport_to_i64`], which flips the
//! top bit: the mapping is a bijection and preserves order (`a < b` exactly when
//! `lamport_to_i64(a) < lamport_to_i64(b)`), so `ORDER BY` on the column is the contract's
//! order and [`lamport_from_i64`] gives the value back. A store whose only number is a
//! double (Redis sorted-set scores, JavaScript) must not use it for Lamport timestamps:
//! doubles are exact only up to 2^53. Use [`lamport_sort_key`] (8 bytes, big-endian) as the
//! prefix of a byte-ordered key or member instead.

/// The signed integer that stores `lamport` in a signed 64-bit column, order preserved:
/// 0 maps to `i64::MIN`, `u64::MAX` to `i64::MAX`.
pub const fn lamport_to_i64(lamport: u64) -> i64 {
    i64::from_be_bytes((lamport ^ (1 << 63)).to_be_bytes())
}

/// The Lamport timestamp a [`lamport_to_i64`] value stores.
pub const fn lamport_from_i64(stored: i64) -> u64 {
    u64::from_be_bytes(stored.to_be_bytes()) ^ (1 << 63)
}

/// The 8 bytes that order Lamport timestamps byte-wise (big-endian), for the prefix of a
/// key or sorted-set member compared as bytes.
pub const fn lamport_sort_key(lamport: u64) -> [u8; 8] {
    lamport.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_mapping_round_trips_and_keeps_order_at_the_edges() {
        let edges = [
            0u64,
            1,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for lamport in edges {
            assert_eq!(lamport_from_i64(lamport_to_i64(lamport)), lamport);
        }
        assert_eq!(lamport_to_i64(0), i64::MIN);
        assert_eq!(lamport_to_i64(u64::MAX), i64::MAX);
        for pair in edges.windows(2) {
            assert!(
                lamport_to_i64(pair[0]) < lamport_to_i64(pair[1]),
                "{pair:?}"
            );
            assert!(
                lamport_sort_key(pair[0]) < lamport_sort_key(pair[1]),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn doubles_cannot_hold_lamports_past_two_to_the_53() {
        // Why the module forbids f64 scores: two distinct timestamps, one double.
        let (a, b) = ((1u64 << 53) + 1, 1u64 << 53);
        #[allow(clippy::cast_precision_loss)]
        let (fa, fb) = (a as f64, b as f64);
        assert_eq!(fa, fb);
        assert_ne!(a, b);
    }
}
