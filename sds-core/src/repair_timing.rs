//! SDS-R (repair) timing: when to ask for a missing message, when to answer a request, and
//! who answers (DESIGN §1).
//!
//! The hash is the one @waku/sds uses, so that peers of both implementations pick the same
//! response groups: `h(x)` is the first 8 bytes of SHA-256 of the UTF-8 bytes of `x`, read as
//! a big-endian `u64` ([`sdsr_hash`]). `++` is plain concatenation, no separator. All times
//! are unix milliseconds; products are taken in `u128` and sums saturate, so no input
//! overflows.

use sha2::{Digest, Sha256};

/// The SDS-R hash of `bytes`: the first 8 bytes of their SHA-256, read as a big-endian `u64`.
pub fn sdsr_hash(bytes: &[u8]) -> u64 {
    first_eight_be(&Sha256::digest(bytes))
}

/// `h(first ++ second)` without building the concatenation.
fn hash_concat(first: &str, second: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(first.as_bytes())
        .chain_update(second.as_bytes())
        .finalize();
    first_eight_be(&digest)
}

fn first_eight_be(digest: &[u8]) -> u64 {
    digest
        .iter()
        .take(8)
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// `now_ms + offset_ms`, saturating at `i64::MAX`/`i64::MIN`.
fn add_ms(now_ms: i64, offset_ms: u64) -> i64 {
    now_ms.saturating_add(i64::try_from(offset_ms).unwrap_or(i64::MAX))
}

/// When `participant_id` should send a repair request for the missing `message_id`:
/// `T_req = now + T_min + h(participant_id ++ message_id) mod (T_max - T_min)`.
///
/// The result lies in `[now + T_min, now + T_max)`, spread over participants so they do not
/// all ask at once. If `t_max_ms <= t_min_ms` it is just `now + T_min`.
pub fn request_at(
    now_ms: i64,
    participant_id: &str,
    message_id: &str,
    t_min_ms: u64,
    t_max_ms: u64,
) -> i64 {
    let window = t_max_ms.saturating_sub(t_min_ms);
    if window == 0 {
        return add_ms(now_ms, t_min_ms);
    }
    // `t_min + (x mod window) < t_max`, so this cannot overflow.
    let offset = t_min_ms + hash_concat(participant_id, message_id) % window;
    add_ms(now_ms, offset)
}

/// When `participant_id` should answer a repair request for `message_id`, first sent by
/// `sender_id`: `T_resp = now + (d * h(message_id)) mod T_max` with
/// `d = h(participant_id) xor h(sender_id)`.
///
/// The original sender has `d = 0` and answers at once; everyone else answers before
/// `now + T_max`. If `t_max_ms` is 0 the answer is due `now`.
pub fn response_at(
    now_ms: i64,
    participant_id: &str,
    sender_id: &str,
    message_id: &str,
    t_max_ms: u64,
) -> i64 {
    if t_max_ms == 0 {
        return now_ms;
    }
    let distance = sdsr_hash(participant_id.as_bytes()) ^ sdsr_hash(sender_id.as_bytes());
    let product = u128::from(distance) * u128::from(sdsr_hash(message_id.as_bytes()));
    let offset = product % u128::from(t_max_ms);
    // Less than `t_max_ms`, so it fits in a u64.
    add_ms(now_ms, u64::try_from(offset).unwrap_or(u64::MAX))
}

/// Whether `participant_id` is in the response group for `message_id` first sent by
/// `sender_id`: `h(participant_id ++ message_id) mod G == h(sender_id ++ message_id) mod G`.
///
/// With `groups` 0 or 1 everyone is in the group. The original sender always is.
pub fn in_response_group(
    participant_id: &str,
    sender_id: &str,
    message_id: &str,
    groups: u32,
) -> bool {
    if groups <= 1 {
        return true;
    }
    let g = u64::from(groups);
    hash_concat(participant_id, message_id) % g == hash_concat(sender_id, message_id) % g
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const T_MIN: u64 = 30_000;
    const T_MAX: u64 = 300_000;

    #[test]
    fn sdsr_hash_known_value() {
        // sha256("abc") = ba7816bf8f01cfea 414140de...
        assert_eq!(sdsr_hash(b"abc"), 0xba78_16bf_8f01_cfea);
        // sha256("") = e3b0c44298fc1c14 9afbf4c8...
        assert_eq!(sdsr_hash(b""), 0xe3b0_c442_98fc_1c14);
    }

    #[test]
    fn hash_concat_is_plain_concatenation() {
        assert_eq!(hash_concat("ab", "c"), sdsr_hash(b"abc"));
        assert_eq!(hash_concat("", "abc"), sdsr_hash(b"abc"));
        assert_eq!(hash_concat("alice", "msg-1"), sdsr_hash(b"alicemsg-1"));
    }

    #[test]
    fn request_at_known_value() {
        // Python: now + 30000 + int.from_bytes(sha256(b"alicemsg-1").digest()[:8], "big")
        //         % 270000
        assert_eq!(
            request_at(NOW, "alice", "msg-1", T_MIN, T_MAX),
            1_700_000_052_896
        );
    }

    #[test]
    fn response_at_known_value() {
        // Python: d = H("alice") ^ H("bob"); now + (d * H("msg-1")) % 300000
        assert_eq!(
            response_at(NOW, "alice", "bob", "msg-1", T_MAX),
            1_700_000_001_443
        );
    }

    #[test]
    fn request_at_within_window() {
        let mut distinct = std::collections::BTreeSet::new();
        for p in 0..50 {
            for m in 0..20 {
                let t = request_at(NOW, &format!("peer-{p}"), &format!("msg-{m}"), T_MIN, T_MAX);
                assert!(t >= NOW + T_MIN as i64, "{t}");
                assert!(t < NOW + T_MAX as i64, "{t}");
                distinct.insert(t);
            }
        }
        // Spread out, not all the same instant.
        assert!(
            distinct.len() > 900,
            "only {} distinct times",
            distinct.len()
        );
    }

    #[test]
    fn request_at_degenerate_window() {
        assert_eq!(request_at(NOW, "a", "m", 5_000, 5_000), NOW + 5_000);
        assert_eq!(request_at(NOW, "a", "m", 5_000, 1_000), NOW + 5_000);
        assert_eq!(request_at(NOW, "a", "m", 0, 0), NOW);
        assert_eq!(request_at(i64::MAX - 1, "a", "m", T_MIN, T_MAX), i64::MAX);
        assert_eq!(request_at(0, "a", "m", u64::MAX, u64::MAX), i64::MAX);
    }

    #[test]
    fn original_sender_answers_immediately() {
        for m in 0..20 {
            let id = format!("msg-{m}");
            assert_eq!(response_at(NOW, "bob", "bob", &id, T_MAX), NOW);
        }
    }

    #[test]
    fn response_at_within_window() {
        let mut later = 0;
        for p in 0..50 {
            for m in 0..20 {
                let t = response_at(NOW, &format!("peer-{p}"), "bob", &format!("msg-{m}"), T_MAX);
                assert!(t >= NOW && t < NOW + T_MAX as i64, "{t}");
                if t > NOW {
                    later += 1;
                }
            }
        }
        assert!(later > 990, "{later}");
    }

    #[test]
    fn response_at_zero_t_max_and_saturation() {
        assert_eq!(response_at(NOW, "alice", "bob", "m", 0), NOW);
        assert_eq!(response_at(i64::MAX, "alice", "bob", "m", T_MAX), i64::MAX);
        let t = response_at(0, "alice", "bob", "m", u64::MAX);
        assert!(t >= 0);
    }

    #[test]
    fn single_group_includes_everyone() {
        for p in 0..100 {
            let participant = format!("peer-{p}");
            assert!(in_response_group(&participant, "bob", "msg-1", 1));
            assert!(in_response_group(&participant, "bob", "msg-1", 0));
        }
    }

    #[test]
    fn sender_is_always_in_its_group() {
        for m in 0..50 {
            assert!(in_response_group("bob", "bob", &format!("msg-{m}"), 7));
        }
    }

    #[test]
    fn four_groups_select_about_a_quarter() {
        let groups = 4;
        let participants = 400;
        for m in 0..5 {
            let message = format!("msg-{m}");
            let inside = (0..participants)
                .filter(|p| in_response_group(&format!("peer-{p}"), "bob", &message, groups))
                .count();
            let share = inside as f64 / participants as f64;
            assert!((0.15..=0.35).contains(&share), "{message}: {share}");
        }
    }

    #[test]
    fn group_membership_known_values() {
        // Python: H(p + "msg-1") % 4 == H("bob" + "msg-1") % 4
        let expected = [
            ("alice", false),
            ("carol", false),
            ("dave", true),
            ("erin", false),
        ];
        for (participant, inside) in expected {
            assert_eq!(
                in_response_group(participant, "bob", "msg-1", 4),
                inside,
                "{participant}"
            );
        }
    }
}
