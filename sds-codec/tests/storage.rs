//! The storage codec: schema-version refusal, empty snapshots, and the snapshot layout.
// Test helpers outside `#[test]` functions also unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_codec::CodecError;
use sds_codec::storage::{
    ChannelData, ChannelMeta, HistoryUpdate, IncomingEntry, IncomingRepairEntry, LoggedMessage,
    OutgoingEntry, OutgoingRepairEntry, SCHEMA_VERSION, decode_channel_data, decode_channel_meta,
    decode_history_update, decode_logged_message, encode_channel_data, encode_channel_meta,
    encode_history_update, encode_logged_message,
};
use sds_codec::wire::{HistoryEntry, SdsMessage};

/// A snapshot with something in every buffer, at the given schema version.
fn busy_meta(schema_version: u32) -> ChannelMeta {
    ChannelMeta {
        schema_version,
        lamport: 300,
        outgoing: vec![OutgoingEntry {
            message: Some(SdsMessage {
                message_id: "a".into(),
                lamport_timestamp: Some(1),
                ..Default::default()
            }),
            sent_at_ms: 1000,
            resend_attempts: 2,
            possible_acks: 1,
        }],
        incoming: vec![IncomingEntry {
            message: Some(SdsMessage {
                message_id: "b".into(),
                ..Default::default()
            }),
            missing_dependencies: vec!["a".into()],
            received_at_ms: 7,
        }],
        outgoing_repairs: vec![OutgoingRepairEntry {
            entry: Some(HistoryEntry {
                message_id: "c".into(),
                ..Default::default()
            }),
            request_at_ms: 9,
        }],
        incoming_repairs: vec![IncomingRepairEntry {
            entry: Some(HistoryEntry {
                message_id: "d".into(),
                ..Default::default()
            }),
            message: vec![0xFF],
            respond_at_ms: 11,
        }],
    }
}

fn assert_unsupported(result: Result<impl std::fmt::Debug, CodecError>, expected_found: u32) {
    let err = result.expect_err("an unknown schema version must be refused");
    assert_eq!(
        err,
        CodecError::UnsupportedSchema {
            found: expected_found,
            supported: 1,
        }
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {expected_found}")),
        "the error names the version found: {text}"
    );
    assert!(
        text.contains("version 1"),
        "the error names the supported version: {text}"
    );
}

#[test]
fn the_supported_schema_version_is_one() {
    assert_eq!(SCHEMA_VERSION, 1);
    assert_eq!(ChannelMeta::empty().schema_version, SCHEMA_VERSION);
}

#[test]
fn channel_meta_from_a_newer_schema_is_refused() {
    assert_unsupported(decode_channel_meta(&encode_channel_meta(&busy_meta(2))), 2);
}

#[test]
fn channel_meta_without_a_schema_version_is_refused() {
    // Version 0 is the proto3 default, so it is not even written: this is also what bytes
    // from a writer that forgot to set the version look like.
    assert_unsupported(decode_channel_meta(&encode_channel_meta(&busy_meta(0))), 0);
    assert_unsupported(decode_channel_meta(&[]), 0);
}

#[test]
fn channel_data_with_an_unknown_schema_version_is_refused() {
    for version in [0, 2, u32::MAX] {
        let data = ChannelData {
            meta: Some(busy_meta(version)),
            history: vec![LoggedMessage::default()],
        };
        assert_unsupported(decode_channel_data(&encode_channel_data(&data)), version);
    }
}

#[test]
fn channel_data_without_a_snapshot_decodes_as_empty() {
    let data = ChannelData {
        meta: None,
        history: vec![LoggedMessage {
            message: Some(SdsMessage {
                message_id: "x".into(),
                lamport_timestamp: Some(4),
                ..Default::default()
            }),
            retrieval_hint: None,
        }],
    };
    let decoded = decode_channel_data(&encode_channel_data(&data)).expect("decodes");
    assert_eq!(decoded.meta, Some(ChannelMeta::empty()));
    assert_eq!(decoded.history, data.history);

    assert_eq!(decode_channel_data(&[]), Ok(ChannelData::empty()));
}

#[test]
fn empty_snapshots_round_trip() {
    let meta = ChannelMeta::empty();
    assert_eq!(decode_channel_meta(&encode_channel_meta(&meta)), Ok(meta));

    let data = ChannelData::empty();
    assert_eq!(data.meta, Some(ChannelMeta::empty()));
    assert!(data.history.is_empty());
    assert_eq!(decode_channel_data(&encode_channel_data(&data)), Ok(data));

    let update = HistoryUpdate::default();
    assert!(update.is_empty());
    assert_eq!(
        decode_history_update(&encode_history_update(&update)),
        Ok(update)
    );
}

#[test]
fn empty_snapshot_golden_bytes() {
    // ChannelMeta.schema_version (field 1, VARINT): key 1 << 3 | 0 = 0x08, value 1.
    assert_eq!(encode_channel_meta(&ChannelMeta::empty()), [0x08, 0x01]);
    // ChannelData.meta (field 1, LEN): key 0x0A, length 2, then the snapshot above.
    assert_eq!(
        encode_channel_data(&ChannelData::empty()),
        [0x0A, 0x02, 0x08, 0x01]
    );
}

#[test]
fn busy_snapshot_golden_bytes() {
    // Stored snapshots must stay readable across releases, so the storage field numbers
    // are pinned by hand-written bytes just like the wire ones.
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // schema_version (field 1, VARINT): key 0x08, value 1
        0x08, 0x01,
        // lamport (field 2, VARINT): key 0x10, 300 = varint 0xAC 0x02
        0x10, 0xAC, 0x02,
        // outgoing[0] (field 3, LEN): key 0x1A, length 14 of:
        0x1A, 0x0E,
        //   OutgoingEntry.message (field 1, LEN): key 0x0A, length 5 of an SdsMessage with
        //   message_id (field 2) "a" and lamport_timestamp (field 10, key 0x50) 1
        0x0A, 0x05, 0x12, 0x01, b'a', 0x50, 0x01,
        //   OutgoingEntry.sent_at_ms (field 2, VARINT): key 0x10, 1000 = 0b111_1101000
        //   -> 0x68 | 0x80 = 0xE8, then 0x07
        0x10, 0xE8, 0x07,
        //   OutgoingEntry.resend_attempts (field 3, VARINT): key 0x18, value 2
        0x18, 0x02,
        //   OutgoingEntry.possible_acks (field 4, VARINT): key 0x20, value 1
        0x20, 0x01,
        // incoming[0] (field 4, LEN): key 0x22, length 10 of:
        0x22, 0x0A,
        //   IncomingEntry.message (field 1, LEN): key 0x0A, length 3: message_id "b"
        0x0A, 0x03, 0x12, 0x01, b'b',
        //   IncomingEntry.missing_dependencies (field 2, LEN): key 0x12, length 1, "a"
        0x12, 0x01, b'a',
        //   IncomingEntry.received_at_ms (field 3, VARINT): key 0x18, value 7
        0x18, 0x07,
        // outgoing_repairs[0] (field 5, LEN): key 0x2A, length 7 of:
        0x2A, 0x07,
        //   OutgoingRepairEntry.entry (field 1, LEN): key 0x0A, length 3: HistoryEntry
        //   message_id (field 1, key 0x0A) "c"
        0x0A, 0x03, 0x0A, 0x01, b'c',
        //   OutgoingRepairEntry.request_at_ms (field 2, VARINT): key 0x10, value 9
        0x10, 0x09,
        // incoming_repairs[0] (field 6, LEN): key 0x32, length 10 of:
        0x32, 0x0A,
        //   IncomingRepairEntry.entry (field 1, LEN): key 0x0A, length 3: message_id "d"
        0x0A, 0x03, 0x0A, 0x01, b'd',
        //   IncomingRepairEntry.message (field 2, LEN): key 0x12, length 1, the bytes
        0x12, 0x01, 0xFF,
        //   IncomingRepairEntry.respond_at_ms (field 3, VARINT): key 0x18, value 11
        0x18, 0x0B,
    ];
    let meta = busy_meta(SCHEMA_VERSION);
    assert_eq!(encode_channel_meta(&meta), expected);
    assert_eq!(decode_channel_meta(expected), Ok(meta));
}

#[test]
fn history_row_and_batch_golden_bytes() {
    let logged = LoggedMessage {
        message: Some(SdsMessage {
            message_id: "a".into(),
            ..Default::default()
        }),
        retrieval_hint: Some(Vec::new()),
    };
    #[rustfmt::skip]
    let logged_bytes: &[u8] = &[
        // LoggedMessage.message (field 1, LEN): key 0x0A, length 3: message_id "a"
        0x0A, 0x03, 0x12, 0x01, b'a',
        // LoggedMessage.retrieval_hint (field 2, LEN, optional): present and empty
        0x12, 0x00,
    ];
    assert_eq!(encode_logged_message(&logged), logged_bytes);
    assert_eq!(decode_logged_message(logged_bytes), Ok(logged));

    let update = HistoryUpdate {
        append: vec![LoggedMessage {
            message: None,
            retrieval_hint: Some(vec![0x01]),
        }],
        evict: vec!["z".into()],
    };
    #[rustfmt::skip]
    let update_bytes: &[u8] = &[
        // HistoryUpdate.append[0] (field 1, LEN): key 0x0A, length 3: a LoggedMessage with
        // only retrieval_hint (field 2, key 0x12) = [0x01]
        0x0A, 0x03, 0x12, 0x01, 0x01,
        // HistoryUpdate.evict[0] (field 2, LEN): key 0x12, length 1, "z"
        0x12, 0x01, b'z',
    ];
    assert_eq!(encode_history_update(&update), update_bytes);
    assert_eq!(decode_history_update(update_bytes), Ok(update));
}

#[test]
fn logged_message_accessors() {
    let logged = LoggedMessage {
        message: Some(SdsMessage {
            message_id: "m-7".into(),
            lamport_timestamp: Some(42),
            ..Default::default()
        }),
        retrieval_hint: None,
    };
    assert_eq!(logged.message_id(), "m-7");
    assert_eq!(logged.lamport(), 42);

    let ephemeral = LoggedMessage {
        message: Some(SdsMessage {
            message_id: "e".into(),
            ..Default::default()
        }),
        retrieval_hint: None,
    };
    assert_eq!(ephemeral.lamport(), 0);

    let missing = LoggedMessage::default();
    assert_eq!(missing.message_id(), "");
    assert_eq!(missing.lamport(), 0);
}

#[test]
fn history_update_is_empty_only_without_appends_and_evictions() {
    assert!(HistoryUpdate::default().is_empty());
    let append_only = HistoryUpdate {
        append: vec![LoggedMessage::default()],
        evict: Vec::new(),
    };
    assert!(!append_only.is_empty());
    let evict_only = HistoryUpdate {
        append: Vec::new(),
        evict: vec!["x".into()],
    };
    assert!(!evict_only.is_empty());
}

#[test]
fn malformed_storage_bytes_are_refused_with_what_was_decoded() {
    // Field 1 (key 0x0A, LEN) claims 5 bytes but only 1 follows.
    let truncated: &[u8] = &[0x0A, 0x05, 0x08];
    let cases = [
        ("channel meta", decode_channel_meta(truncated).err()),
        ("channel data", decode_channel_data(truncated).err()),
        ("logged message", decode_logged_message(truncated).err()),
        ("history update", decode_history_update(truncated).err()),
    ];
    for (expected_what, err) in cases {
        match err {
            Some(CodecError::Malformed { what, reason }) => {
                assert_eq!(what, expected_what);
                assert!(!reason.is_empty());
            }
            other => panic!("{expected_what}: expected Malformed, got {other:?}"),
        }
    }
}

// A history row without its message (an empty or truncated value) is refused, not loaded
// as an entry with an empty id.
#[test]
fn row_without_message_is_refused() {
    for bytes in [&b""[..], &[0x12, 0x01, 0xaa][..]] {
        let err = decode_logged_message(bytes).unwrap_err();
        assert!(err.to_string().contains("holds no message"), "{err}");
    }
}
