//! Property tests: every wire and storage type survives its crate codec unchanged.
// Test helpers outside `#[test]` functions also unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{channel_data, channel_meta, history_entry, history_update, sds_message, stored_row};
use proptest::prelude::*;
use prost::Message as _;
use sds_codec::storage::{
    decode_channel_data, decode_channel_meta, decode_history_update, decode_logged_message,
    encode_channel_data, encode_channel_meta, encode_history_update, encode_logged_message,
};
use sds_codec::wire::{HistoryEntry, SdsMessage, decode_message, encode_message};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn sds_message_round_trips(message in sds_message()) {
        let bytes = encode_message(&message).expect("a small message encodes");
        prop_assert_eq!(bytes.len(), message.encoded_len());
        let decoded = decode_message(&bytes).expect("an encoded message decodes");
        prop_assert_eq!(decoded.kind(), message.kind());
        prop_assert_eq!(decoded, message);
    }

    #[test]
    fn history_entry_round_trips_inside_a_message(entry in history_entry()) {
        // The crate has no stand-alone codec for history entries: they travel inside messages,
        // both as causal history and as repair requests.
        let message = SdsMessage {
            lamport_timestamp: Some(1),
            causal_history: vec![entry.clone()],
            repair_request: vec![entry.clone()],
            ..Default::default()
        };
        let bytes = encode_message(&message).expect("a small message encodes");
        let decoded = decode_message(&bytes).expect("an encoded message decodes");
        prop_assert_eq!(&decoded.causal_history, &vec![entry.clone()]);
        prop_assert_eq!(&decoded.repair_request, &vec![entry]);
    }

    #[test]
    fn history_entry_round_trips_on_its_own(entry in history_entry()) {
        let bytes = entry.encode_to_vec();
        let decoded = HistoryEntry::decode(bytes.as_slice()).expect("an encoded entry decodes");
        prop_assert_eq!(decoded, entry);
    }

    #[test]
    fn channel_meta_round_trips(meta in channel_meta()) {
        let decoded = decode_channel_meta(&encode_channel_meta(&meta))
            .expect("an encoded snapshot decodes");
        prop_assert_eq!(decoded, meta);
    }

    #[test]
    fn channel_data_round_trips(data in channel_data()) {
        let decoded = decode_channel_data(&encode_channel_data(&data))
            .expect("an encoded bootstrap payload decodes");
        prop_assert_eq!(decoded, data);
    }

    #[test]
    fn logged_message_round_trips(logged in stored_row()) {
        let decoded = decode_logged_message(&encode_logged_message(&logged))
            .expect("an encoded history row decodes");
        prop_assert_eq!(decoded.message_id(), logged.message_id());
        prop_assert_eq!(decoded.lamport(), logged.lamport());
        prop_assert_eq!(decoded, logged);
    }

    #[test]
    fn history_update_round_trips(update in history_update()) {
        let decoded = decode_history_update(&encode_history_update(&update))
            .expect("an encoded history batch decodes");
        prop_assert_eq!(decoded.is_empty(), update.is_empty());
        prop_assert_eq!(decoded, update);
    }
}
