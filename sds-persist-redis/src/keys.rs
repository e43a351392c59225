//! The key layout: every key this backend writes, and how it is read back.
//!
//! Every key starts with the key prefix (default `sds:`, see
//! [`RedisBuilder::key_prefix`](crate::RedisBuilder::key_prefix)) and a Redis Cluster hash tag `{…}` of 32 lowercase hex
//! digits: the first 128 bits of a SHA-256 over the length-prefixed components the key
//! belongs to. Cluster hashes only what is between the first `{` and the first `}` after
//! it, and hex digits hold neither brace, so whatever bytes a namespace or a channel id
//! holds (`{`, `}`, `:`, NUL, invalid UTF-8 is impossible but would not matter either) the
//! tag of one channel is the same for all its keys, which therefore share one slot.
//!
//! After the tag come a one-byte kind and the components themselves, each as a LEB128
//! length and its bytes (`lp(x)`). The components make every key unique on their own (a
//! length-prefixed sequence parses back in exactly one way), so two channels never share a
//! key even if their tags collided; the tag only chooses the slot.
//!
//! | kind | key                                  | type              | holds                                        |
//! |------|--------------------------------------|-------------------|----------------------------------------------|
//! | `m`  | `sds:{tag(ns,ch)}m lp(ns) lp(ch)`    | string            | encoded `ChannelMeta` (storage codec blob)   |
//! | `b`  | `sds:{tag(ns,ch)}b lp(ns) lp(ch)`    | hash id → value   | lamport (u64 BE) ++ encoded `LoggedMessage`  |
//! | `o`  | `sds:{tag(ns,ch)}o lp(ns) lp(ch)`    | sorted set        | members lamport (u64 BE) ++ id, all score 0  |
//! | `n`  | `sds:{tag(ns,ch)}n lp(ns) lp(ch)`    | hash id → hint    | retrieval hints                              |
//! | `e`  | `sds:{tag(ns)}e lp(ns)`              | string (integer)  | the namespace's writer epoch                 |
//! | `c`  | `sds:{tag(ns)}c lp(ns)`              | sorted set        | the namespace's channel ids, all score 0     |
//!
//! With [`SlotScope::Namespace`] a channel's keys take the namespace's tag instead,
//! `tag(ns)`: every key of the namespace, epoch and channel set included, shares one slot.
//!
//! The order index `o` is read with `ZRANGE … BYLEX`: members with equal scores compare as
//! bytes, and `lamport_sort_key(lamport) ++ id` compares as (lamport, id) over the whole
//! `u64` range (a score, a double, would be exact only up to 2^53). The history hash `b`
//! finds a message's current Lamport timestamp (its first 8 bytes) by id, so evicting,
//! re-appending or hinting never scans. Hints live in their own hash so a script can keep
//! or replace them without decoding a row; rows are stored without their hint.

use sds_core::persistence::key_parts::{put_length_prefixed, take_length_prefixed};
use sds_core::persistence::order::lamport_sort_key;
use sha2::{Digest, Sha256};

use crate::SlotScope;

/// Every key of this backend starts with it unless the builder says otherwise.
pub(crate) const DEFAULT_KEY_PREFIX: &str = "sds:";
/// Hex digits in a hash tag.
pub(crate) const TAG_HEX_LEN: usize = 32;

pub(crate) const KIND_META: u8 = b'm';
const KIND_BODIES: u8 = b'b';
pub(crate) const KIND_ORDER: u8 = b'o';
const KIND_HINTS: u8 = b'n';
const KIND_EPOCH: u8 = b'e';
const KIND_CHANNELS: u8 = b'c';

/// Domain bytes so a namespace's tag never equals a channel's by construction.
const DOMAIN_CHANNEL: u8 = b'C';
const DOMAIN_NAMESPACE: u8 = b'N';

/// `lp(a) lp(b)…`: the components of a key, parseable in exactly one way.
fn components(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        put_length_prefixed(&mut out, part);
    }
    out
}

/// The hash tag (32 hex digits) of `domain ++ components`.
fn tag(domain: u8, components: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update([domain]);
    hasher.update(components);
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(TAG_HEX_LEN);
    for byte in &digest[..TAG_HEX_LEN / 2] {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

fn key(prefix: &[u8], tag: &str, kind: u8, components: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + TAG_HEX_LEN + 3 + components.len());
    key.extend_from_slice(prefix);
    key.push(b'{');
    key.extend_from_slice(tag.as_bytes());
    key.push(b'}');
    key.push(kind);
    key.extend_from_slice(components);
    key
}

/// The keys of one channel of one namespace, all on one Cluster slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelKeys {
    pub(crate) meta: Vec<u8>,
    pub(crate) bodies: Vec<u8>,
    pub(crate) order: Vec<u8>,
    pub(crate) hints: Vec<u8>,
}

impl ChannelKeys {
    pub(crate) fn new(prefix: &[u8], namespace: &[u8], channel: &[u8]) -> Self {
        Self::in_scope(prefix, SlotScope::Channel, namespace, channel)
    }

    /// The keys, tagged per channel or, with [`SlotScope::Namespace`], with the
    /// namespace's own tag (the slot of its epoch and channel set).
    pub(crate) fn in_scope(
        prefix: &[u8],
        scope: SlotScope,
        namespace: &[u8],
        channel: &[u8],
    ) -> Self {
        let parts = components(&[namespace, channel]);
        let tag = match scope {
            SlotScope::Channel => tag(DOMAIN_CHANNEL, &parts),
            SlotScope::Namespace => tag(DOMAIN_NAMESPACE, &components(&[namespace])),
        };
        ChannelKeys {
            meta: key(prefix, &tag, KIND_META, &parts),
            bodies: key(prefix, &tag, KIND_BODIES, &parts),
            order: key(prefix, &tag, KIND_ORDER, &parts),
            hints: key(prefix, &tag, KIND_HINTS, &parts),
        }
    }

    /// The four keys in the order the scripts take them (`KEYS[1..4]`).
    pub(crate) fn all(&self) -> [&[u8]; 4] {
        [&self.meta, &self.bodies, &self.order, &self.hints]
    }
}

/// The namespace-wide keys: the writer epoch and the channel set (one slot of their own,
/// in general not the slot of any of the namespace's channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamespaceKeys {
    pub(crate) epoch: Vec<u8>,
    pub(crate) channels: Vec<u8>,
}

impl NamespaceKeys {
    pub(crate) fn new(prefix: &[u8], namespace: &[u8]) -> Self {
        let parts = components(&[namespace]);
        let tag = tag(DOMAIN_NAMESPACE, &parts);
        NamespaceKeys {
            epoch: key(prefix, &tag, KIND_EPOCH, &parts),
            channels: key(prefix, &tag, KIND_CHANNELS, &parts),
        }
    }
}

/// The member of the order index for message `id` at `lamport`.
pub(crate) fn order_member(lamport: u64, id: &[u8]) -> Vec<u8> {
    let mut member = Vec::with_capacity(8 + id.len());
    member.extend_from_slice(&lamport_sort_key(lamport));
    member.extend_from_slice(id);
    member
}

/// Splits an order member or a history value into its Lamport timestamp and the rest.
pub(crate) fn split_lamport(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (lamport, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*lamport), rest))
}

/// Whether `prefix` can start keys: a brace would become (or end) the hash tag.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    !prefix.contains(['{', '}'])
}

/// The `SCAN … MATCH` pattern of every key of `kind` (any namespace, any channel).
pub(crate) fn scan_pattern(prefix: &[u8], kind: u8) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + TAG_HEX_LEN + 4);
    for &byte in prefix {
        // The prefix is literal: escape what globs treat as special.
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    // `{` is not special in Redis glob patterns; `?` matches one byte of the tag.
    pattern.push(b'{');
    pattern.extend(std::iter::repeat_n(b'?', TAG_HEX_LEN));
    pattern.push(b'}');
    pattern.push(kind);
    pattern.push(b'*');
    pattern
}

/// Parses a channel key (any kind) back into (kind, namespace, channel).
pub(crate) fn decode_channel_key<'k>(
    prefix: &[u8],
    key: &'k [u8],
) -> Option<(u8, &'k [u8], &'k [u8])> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(b"{")?;
    if rest.len() < TAG_HEX_LEN + 2 || rest[TAG_HEX_LEN] != b'}' {
        return None;
    }
    let kind = rest[TAG_HEX_LEN + 1];
    let (namespace, rest) = take_length_prefixed(&rest[TAG_HEX_LEN + 2..])?;
    let (channel, rest) = take_length_prefixed(rest)?;
    rest.is_empty().then_some((kind, namespace, channel))
}

/// What Redis Cluster hashes of `key`: the bytes between the first `{` and the first `}`
/// after it when that is not empty, else the whole key.
#[cfg(test)]
pub(crate) fn hashed_part(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => &key[open + 1..open + 1 + close],
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: &[u8] = DEFAULT_KEY_PREFIX.as_bytes();

    #[test]
    fn scan_patterns_escape_the_prefix() {
        assert_eq!(
            scan_pattern(b"a*b:", KIND_META),
            [&b"a\\*b:{"[..], &[b'?'; TAG_HEX_LEN], b"}m*"].concat()
        );
        assert!(valid_prefix("run-1:sds:") && !valid_prefix("{x}") && !valid_prefix("a}"));
    }

    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = prop_oneof![
            Just(0u8),
            Just(1u8),
            Just(b'{'),
            Just(b'}'),
            Just(b':'),
            Just(b'm'),
            Just(b'o'),
            Just(0x80),
            Just(0xff),
            any::<u8>(),
        ];
        prop::collection::vec(alphabet, 0..8)
    }

    #[test]
    fn braces_colons_and_nul_keep_one_tag_per_channel() {
        let tricky = [
            ("", ""),
            ("{", "}"),
            ("}", "{"),
            ("a:b", "c"),
            ("a", "b:c"),
            ("ns\0", "ch"),
            ("ns", "\0ch"),
            ("{tag}", "x"),
            ("x", "{tag}"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (ns, ch) in tricky {
            let keys = ChannelKeys::new(P, ns.as_bytes(), ch.as_bytes());
            let tags: Vec<&[u8]> = keys.all().iter().map(|key| hashed_part(key)).collect();
            assert!(tags.iter().all(|tag| *tag == tags[0]), "{ns:?}/{ch:?}");
            assert_eq!(tags[0].len(), TAG_HEX_LEN);
            for key in keys.all() {
                assert!(seen.insert(key.to_vec()), "{ns:?}/{ch:?} collides");
                assert_eq!(
                    decode_channel_key(P, key).map(|(_, n, c)| (n, c)),
                    Some((ns.as_bytes(), ch.as_bytes()))
                );
            }
        }
    }

    #[test]
    fn namespace_scope_puts_channels_on_the_namespace_slot() {
        let namespace = NamespaceKeys::new(P, b"ns{");
        for channel in [&b"a"[..], b"}", b""] {
            let keys = ChannelKeys::in_scope(P, SlotScope::Namespace, b"ns{", channel);
            for key in keys.all() {
                assert_eq!(hashed_part(key), hashed_part(&namespace.epoch));
            }
            assert_ne!(keys, ChannelKeys::new(P, b"ns{", channel));
        }
    }

    #[test]
    fn order_members_sort_by_lamport_then_id_bytes() {
        let mut rows = [
            (1u64 << 53, "a"),
            ((1u64 << 53) + 1, "a"),
            (u64::MAX, ""),
            (0, "b"),
            (0, "a\0"),
            (0, "a"),
            (0, "B"),
            (1, "ä"),
        ];
        let mut members: Vec<Vec<u8>> = rows
            .iter()
            .map(|(lamport, id)| order_member(*lamport, id.as_bytes()))
            .collect();
        rows.sort_by(|a, b| (a.0, a.1.as_bytes()).cmp(&(b.0, b.1.as_bytes())));
        members.sort();
        let decoded: Vec<(u64, &[u8])> = members
            .iter()
            .map(|member| split_lamport(member).expect("8-byte prefix"))
            .collect();
        let expected: Vec<(u64, &[u8])> = rows.iter().map(|(l, id)| (*l, id.as_bytes())).collect();
        assert_eq!(decoded, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn distinct_channels_never_share_a_key_and_keep_one_tag(
            a in (tricky_bytes(), tricky_bytes()),
            b in (tricky_bytes(), tricky_bytes()),
        ) {
            let keys_a = ChannelKeys::new(P, &a.0, &a.1);
            let keys_b = ChannelKeys::new(P, &b.0, &b.1);
            for (key_a, key_b) in keys_a.all().iter().zip(keys_b.all()) {
                prop_assert_eq!(*key_a == key_b, a == b);
                prop_assert_eq!(hashed_part(key_a), hashed_part(keys_a.meta.as_slice()));
            }
            let ns = NamespaceKeys::new(P, &a.0);
            prop_assert!(!keys_b.all().contains(&ns.epoch.as_slice()));
            prop_assert!(!keys_b.all().contains(&ns.channels.as_slice()));
            prop_assert_eq!(
                NamespaceKeys::new(P, &b.0) == ns,
                a.0 == b.0
            );
        }
    }
}
