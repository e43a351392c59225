//! The key layout: every key of the database, how it is built and how it is read back.
//!
//! All keys live in RocksDB's default column family and compare byte-wise. A key starts with
//! a one-byte tag naming its family; namespace and channel id follow, each written as a
//! LEB128 length and then its bytes (`lp(x)` below). Length prefixes make the sequence
//! `lp(namespace) lp(channel)` a prefix code: it can be parsed back in exactly one way, so no
//! two (namespace, channel) pairs produce the same bytes and no channel's prefix is a prefix
//! of another channel's keys, whatever bytes the ids contain (empty, NUL, the tag bytes,
//! invalid UTF-8).
//!
//! | family  | key                                                            | value                     |
//! |---------|----------------------------------------------------------------|---------------------------|
//! | layout  | `0x00 "sds-rocksdb-layout"`                                    | layout version, u32 BE    |
//! | meta    | `'M' lp(ns) lp(channel)`                                       | encoded `ChannelMeta`     |
//! | history | `'H' lp(ns) lp(channel) lamport(u64 BE) message_id`            | encoded `LoggedMessage`   |
//! | index   | `'I' lp(ns) lp(channel) message_id`                            | lamport, u64 BE           |
//! | fence   | `'F' lp(ns)`                                                   | writer epoch, u64 BE      |
//!
//! Values are the storage codec's blobs as it returns them (`sds_codec::storage`): since
//! schema version 2 each carries its own length and CRC32C, so a value cut short or damaged
//! on disk loads as `Corrupt`. Values written by earlier builds (version 1) still load; the
//! codec's versions are independent of this key layout's.
//!
//! The message id is the last component and is written raw: everything before it has a fixed
//! length within one channel, so it needs no prefix, and a channel's history rows sort by
//! (lamport, message id) with ids compared byte-wise, which for UTF-8 is exactly the order of
//! Rust's `str`. A prefix scan of `'H' lp(ns) lp(channel)` therefore returns the history in
//! log order. The index maps a message id to its lamport so that evicting, re-appending or
//! hinting a message finds its history row with one point lookup, never a scan. Retrieval
//! hints live inside the history value (`LoggedMessage::retrieval_hint`).

use sds_core::persistence::key_parts::{put_length_prefixed, take_length_prefixed};

/// The key holding the layout version of the database (tag 0x00 is reserved for
/// database-wide keys).
pub(crate) const LAYOUT_KEY: &[u8] = b"\x00sds-rocksdb-layout";

/// The layout version this build writes and reads.
pub(crate) const LAYOUT_VERSION: u32 = 1;

pub(crate) const TAG_META: u8 = b'M';
pub(crate) const TAG_HISTORY: u8 = b'H';
const TAG_INDEX: u8 = b'I';
/// The writer fence's family (added to layout 1 without a version bump: a build that does
/// not know it ignores it, and claims nothing).
const TAG_FENCE: u8 = b'F';

/// The key holding `namespace`'s writer epoch (see the `fence` module).
pub(crate) fn fence_key(namespace: &[u8]) -> Vec<u8> {
    namespace_prefix(TAG_FENCE, namespace)
}

/// The prefix shared by every key of one family in one namespace, and only by them:
/// `tag lp(namespace)`.
pub(crate) fn namespace_prefix(tag: u8, namespace: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 2 + namespace.len());
    key.push(tag);
    put_length_prefixed(&mut key, namespace);
    key
}

fn channel_prefix(tag: u8, namespace: &[u8], channel: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 2 + namespace.len() + 2 + channel.len() + 8 + 32);
    key.push(tag);
    put_length_prefixed(&mut key, namespace);
    put_length_prefixed(&mut key, channel);
    key
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when no such
/// key exists (the prefix is empty or all 0xff). Used as the exclusive end of prefix ranges.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|byte| *byte != 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// Encodes a lamport timestamp as an index value.
pub(crate) fn encode_lamport(lamport: u64) -> [u8; 8] {
    lamport.to_be_bytes()
}

/// Decodes an index value; `None` if it is not exactly eight bytes.
pub(crate) fn decode_lamport(bytes: &[u8]) -> Option<u64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_be_bytes(array))
}

/// The keys of one channel in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelKeys {
    meta: Vec<u8>,
    history_prefix: Vec<u8>,
    index_prefix: Vec<u8>,
}

impl ChannelKeys {
    /// The keys of `channel` in `namespace`.
    pub(crate) fn new(namespace: &[u8], channel: &[u8]) -> Self {
        ChannelKeys {
            meta: channel_prefix(TAG_META, namespace, channel),
            history_prefix: channel_prefix(TAG_HISTORY, namespace, channel),
            index_prefix: channel_prefix(TAG_INDEX, namespace, channel),
        }
    }

    /// The key of the channel's snapshot.
    pub(crate) fn meta(&self) -> &[u8] {
        &self.meta
    }

    /// The prefix shared by all of the channel's history rows, and only by them.
    pub(crate) fn history_prefix(&self) -> &[u8] {
        &self.history_prefix
    }

    /// The prefix shared by all of the channel's index entries, and only by them.
    pub(crate) fn index_prefix(&self) -> &[u8] {
        &self.index_prefix
    }

    /// The key of the history row of message `id` at `lamport`.
    pub(crate) fn history_key(&self, lamport: u64, id: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.history_prefix.len() + 8 + id.len());
        key.extend_from_slice(&self.history_prefix);
        key.extend_from_slice(&lamport.to_be_bytes());
        key.extend_from_slice(id);
        key
    }

    /// The key of the index entry of message `id`.
    pub(crate) fn index_key(&self, id: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.index_prefix.len() + id.len());
        key.extend_from_slice(&self.index_prefix);
        key.extend_from_slice(id);
        key
    }

    /// Splits a history key of this channel into (lamport, message id); `None` if the key
    /// is not one of this channel's history keys.
    pub(crate) fn parse_history_key<'k>(&self, key: &'k [u8]) -> Option<(u64, &'k [u8])> {
        let suffix = key.strip_prefix(self.history_prefix.as_slice())?;
        if suffix.len() < 8 {
            return None;
        }
        let (lamport, id) = suffix.split_at(8);
        Some((decode_lamport(lamport)?, id))
    }
}

/// A history key parsed back into (namespace, channel, lamport, message id).
#[cfg(test)]
type DecodedHistoryKey<'k> = (&'k [u8], &'k [u8], u64, &'k [u8]);

/// A meta, history or index key parsed back into (tag, namespace, channel, rest).
pub(crate) type DecodedChannelKey<'k> = (u8, &'k [u8], &'k [u8], &'k [u8]);

/// Parses any history key back into its components.
#[cfg(test)]
pub(crate) fn decode_history_key(key: &[u8]) -> Option<DecodedHistoryKey<'_>> {
    let rest = key.strip_prefix(&[TAG_HISTORY])?;
    let (namespace, rest) = take_length_prefixed(rest)?;
    let (channel, rest) = take_length_prefixed(rest)?;
    if rest.len() < 8 {
        return None;
    }
    let (lamport, id) = rest.split_at(8);
    Some((namespace, channel, decode_lamport(lamport)?, id))
}

/// Parses a meta, history or index key back into its components (for a history key the
/// rest is the lamport and the message id); `None` if it is not such a key.
pub(crate) fn decode_channel_key(key: &[u8]) -> Option<DecodedChannelKey<'_>> {
    let (tag, rest) = key.split_first()?;
    let (namespace, rest) = take_length_prefixed(rest)?;
    let (channel, rest) = take_length_prefixed(rest)?;
    Some((*tag, namespace, channel, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Short byte strings over an alphabet rich in separators, tags and length-like bytes,
    /// so that near-collisions are common.
    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = prop_oneof![
            Just(0u8),
            Just(1u8),
            Just(2u8),
            Just(b'H'),
            Just(b'I'),
            Just(b'M'),
            Just(b'/'),
            Just(b':'),
            Just(0x7f),
            Just(0x80),
            Just(0xff),
            any::<u8>(),
        ];
        prop::collection::vec(alphabet, 0..6)
    }

    fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => tricky_bytes(),
            1 => prop::collection::vec(any::<u8>(), 0..300),
        ]
    }

    fn tricky_lamport() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(255),
            Just(256),
            Just(u64::MAX),
            any::<u64>()
        ]
    }

    #[test]
    fn prefix_end_is_exclusive_upper_bound() {
        assert_eq!(prefix_end(b"Ha"), Some(b"Hb".to_vec()));
        assert_eq!(prefix_end(b"H\xff\xff"), Some(b"I".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn history_keys_sort_by_lamport_then_id_within_a_channel() {
        let keys = ChannelKeys::new(b"ns", b"ch");
        let mut rows: Vec<(u64, &str)> = vec![
            (2, "a"),
            (1, "b"),
            (1, "a"),
            (256, ""),
            (255, "zz"),
            (1, "ab"),
            (1, ""),
            (u64::MAX, "a"),
            (1, "é"),
            (1, "z"),
        ];
        let mut encoded: Vec<Vec<u8>> = rows
            .iter()
            .map(|(lamport, id)| keys.history_key(*lamport, id.as_bytes()))
            .collect();
        rows.sort();
        encoded.sort();
        let decoded: Vec<(u64, String)> = encoded
            .iter()
            .map(|key| {
                let (lamport, id) = keys.parse_history_key(key).expect("own key parses");
                (lamport, String::from_utf8(id.to_vec()).expect("utf-8 id"))
            })
            .collect();
        let expected: Vec<(u64, String)> = rows
            .into_iter()
            .map(|(lamport, id)| (lamport, id.to_owned()))
            .collect();
        assert_eq!(decoded, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn history_key_round_trips(
            ns in any_bytes(), ch in any_bytes(), lamport in tricky_lamport(), id in any_bytes()
        ) {
            let keys = ChannelKeys::new(&ns, &ch);
            let key = keys.history_key(lamport, &id);
            prop_assert_eq!(
                decode_history_key(&key),
                Some((ns.as_slice(), ch.as_slice(), lamport, id.as_slice()))
            );
            prop_assert_eq!(keys.parse_history_key(&key), Some((lamport, id.as_slice())));
            prop_assert!(key.starts_with(keys.history_prefix()));
        }

        #[test]
        fn meta_and_index_keys_round_trip(ns in any_bytes(), ch in any_bytes(), id in any_bytes()) {
            let keys = ChannelKeys::new(&ns, &ch);
            prop_assert_eq!(
                decode_channel_key(keys.meta()),
                Some((TAG_META, ns.as_slice(), ch.as_slice(), &[][..]))
            );
            let index = keys.index_key(&id);
            prop_assert_eq!(
                decode_channel_key(&index),
                Some((TAG_INDEX, ns.as_slice(), ch.as_slice(), id.as_slice()))
            );
        }

        /// Two different (namespace, channel, lamport, id) tuples never share a key, and a
        /// channel's prefixes select exactly its own keys.
        #[test]
        fn distinct_components_never_collide(
            a in (any_bytes(), any_bytes(), tricky_lamport(), any_bytes()),
            b in (any_bytes(), any_bytes(), tricky_lamport(), any_bytes()),
        ) {
            let keys_a = ChannelKeys::new(&a.0, &a.1);
            let keys_b = ChannelKeys::new(&b.0, &b.1);
            let same_channel = a.0 == b.0 && a.1 == b.1;

            let history_a = keys_a.history_key(a.2, &a.3);
            let history_b = keys_b.history_key(b.2, &b.3);
            prop_assert_eq!(history_a == history_b, a == b);
            prop_assert_eq!(history_b.starts_with(keys_a.history_prefix()), same_channel);
            prop_assert_eq!(keys_a.meta() == keys_b.meta(), same_channel);

            let index_a = keys_a.index_key(&a.3);
            let index_b = keys_b.index_key(&b.3);
            prop_assert_eq!(index_a == index_b, same_channel && a.3 == b.3);
            prop_assert_eq!(index_b.starts_with(keys_a.index_prefix()), same_channel);

            // Families never overlap, whatever the components.
            prop_assert!(!history_b.starts_with(keys_a.index_prefix()));
            prop_assert!(!index_b.starts_with(keys_a.history_prefix()));
            prop_assert!(!keys_b.meta().starts_with(keys_a.history_prefix()));
            prop_assert!(!keys_b.meta().starts_with(keys_a.index_prefix()));
            prop_assert_ne!(keys_b.meta(), index_a.as_slice());
            prop_assert!(!history_a.starts_with(LAYOUT_KEY));
        }

        /// Within one channel, byte order of history keys is (lamport, id) order, and id
        /// order is `str` order for UTF-8 ids.
        #[test]
        fn history_key_order_is_lamport_then_id(
            ns in any_bytes(), ch in any_bytes(),
            a in (tricky_lamport(), ".{0,6}"),
            b in (tricky_lamport(), ".{0,6}"),
        ) {
            let keys = ChannelKeys::new(&ns, &ch);
            let key_a = keys.history_key(a.0, a.1.as_bytes());
            let key_b = keys.history_key(b.0, b.1.as_bytes());
            prop_assert_eq!(key_a.cmp(&key_b), (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
            let end = prefix_end(keys.history_prefix());
            prop_assert!(end.is_some_and(|end| key_a < end));
        }
    }
}
