//! The storage codec: schema-version refusal, empty snapshots, and the stored layouts (the
//! envelope's own checks are in `envelope.rs`).
// Test helpers outside `#[test]` functions also unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_codec::CodecError;
use sds_codec::storage::{
    Bytes, ChannelData, ChannelMeta, HistoryUpdate, IncomingEntry, IncomingRepairEntry,
    LoggedMessage, OutgoingEntry, OutgoingRepairEntry, SCHEMA_VERSION, decode_channel_data,
    decode_channel_meta, decode_history_update, decode_logged_message, encode_buffered_message,
    encode_channel_data, encode_channel_meta, encode_history_update, encode_logged_message, v1,
};
use sds_codec::wire::{HistoryEntry, SdsMessage};

/// A snapshot with something in every buffer, at the given schema version.
fn busy_meta(schema_version: u32) -> ChannelMeta {
    ChannelMeta {
        schema_version,
        lamport: 300,
        outgoing: vec![OutgoingEntry {
            message: encode_buffered_message(&SdsMessage {
                message_id: "a".into(),
                lamport_timestamp: Some(1),
                ..Default::default()
            }),
            sent_at_ms: 1000,
            resend_attempts: 2,
            possible_acks: 1,
        }]
        .into(),
        incoming: vec![IncomingEntry {
            message: encode_buffered_message(&SdsMessage {
                message_id: "b".into(),
                ..Default::default()
            }),
            missing_dependencies: vec!["a".into()],
            received_at_ms: 7,
        }]
        .into(),
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
            supported: 2,
        }
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {expected_found}")),
        "the error names the version found: {text}"
    );
    assert!(
        text.contains("versions 1 to 2"),
        "the error names the supported versions: {text}"
    );
}

/// Asserts a snapshot whose stated version disagrees with the layout it was found in is
/// refused as malformed (corrupt), naming both.
fn assert_disagreeing(result: Result<impl std::fmt::Debug, CodecError>, what: &str, found: u32) {
    match result {
        Err(CodecError::Malformed {
            what: named,
            reason,
        }) => {
            assert_eq!(named, what);
            assert!(
                reason.contains(&format!("schema version {found} in a version-")),
                "{reason}"
            );
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn the_supported_schema_version_is_two() {
    assert_eq!(SCHEMA_VERSION, 2);
    assert_eq!(ChannelMeta::empty().schema_version, SCHEMA_VERSION);
}

#[test]
fn channel_meta_from_a_newer_schema_is_refused() {
    assert_unsupported(decode_channel_meta(&encode_channel_meta(&busy_meta(3))), 3);
    // Version 1 blobs were not enveloped, but a newer one found bare is still newer.
    assert_unsupported(
        decode_channel_meta(&v1::encode_channel_meta(&busy_meta(7))),
        7,
    );
}

#[test]
fn channel_meta_whose_version_disagrees_with_its_layout_is_refused() {
    // Version 0 is the proto3 default, so it is not even written: this is also what bytes
    // from a writer that forgot to set the version look like.
    assert_disagreeing(
        decode_channel_meta(&encode_channel_meta(&busy_meta(0))),
        "channel meta",
        0,
    );
    assert_disagreeing(
        decode_channel_meta(&v1::encode_channel_meta(&busy_meta(0))),
        "channel meta",
        0,
    );
    // Version 1 inside an envelope, version 2 without one: neither was ever written.
    assert_disagreeing(
        decode_channel_meta(&encode_channel_meta(&busy_meta(1))),
        "channel meta",
        1,
    );
    assert_disagreeing(
        decode_channel_meta(&v1::encode_channel_meta(&busy_meta(2))),
        "channel meta",
        2,
    );
}

#[test]
fn channel_data_with_an_unknown_schema_version_is_refused() {
    for version in [3, u32::MAX] {
        let data = ChannelData {
            meta: Some(busy_meta(version)),
            history: vec![LoggedMessage::default()],
        };
        assert_unsupported(decode_channel_data(&encode_channel_data(&data)), version);
        assert_unsupported(
            decode_channel_data(&v1::encode_channel_data(&data)),
            version,
        );
    }
    let data = ChannelData {
        meta: Some(busy_meta(0)),
        history: Vec::new(),
    };
    assert_disagreeing(
        decode_channel_data(&encode_channel_data(&data)),
        "channel data",
        0,
    );
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
    for bytes in [encode_channel_data(&data), v1::encode_channel_data(&data)] {
        let decoded = decode_channel_data(&bytes).expect("decodes");
        assert_eq!(decoded.meta, Some(ChannelMeta::empty()));
        assert_eq!(decoded.history, data.history);
    }
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
    #[rustfmt::skip]
    let meta: &[u8] = &[
        // Envelope: marker 0x07, version 2, kind 'S' (snapshot), payload length 2 (u32 LE),
        // CRC32C of the 7 bytes before it and the payload (u32 LE).
        0x07, 0x02, b'S', 0x02, 0x00, 0x00, 0x00, 0xFF, 0xC7, 0xB7, 0x17,
        // ChannelMeta.schema_version (field 1, VARINT): key 1 << 3 | 0 = 0x08, value 2.
        0x08, 0x02,
    ];
    assert_eq!(encode_channel_meta(&ChannelMeta::empty()), meta);
    assert_eq!(decode_channel_meta(meta), Ok(ChannelMeta::empty()));
    #[rustfmt::skip]
    let data: &[u8] = &[
        // Envelope: kind 'D', payload length 4.
        0x07, 0x02, b'D', 0x04, 0x00, 0x00, 0x00, 0xE1, 0xB3, 0x83, 0x87,
        // ChannelData.meta (field 1, LEN): key 0x0A, length 2, then the bare snapshot.
        0x0A, 0x02, 0x08, 0x02,
    ];
    assert_eq!(encode_channel_data(&ChannelData::empty()), data);
    // Version 1: the bare payloads, saying version 1.
    let v1_empty = ChannelMeta {
        schema_version: 1,
        ..ChannelMeta::empty()
    };
    assert_eq!(v1::encode_channel_meta(&v1_empty), [0x08, 0x01]);
    assert_eq!(decode_channel_meta(&[0x08, 0x01]), Ok(ChannelMeta::empty()));
    assert_eq!(
        decode_channel_data(&[0x0A, 0x02, 0x08, 0x01]),
        Ok(ChannelData::empty())
    );
}

#[test]
fn busy_snapshot_golden_bytes() {
    // Stored snapshots must stay readable across releases, so the storage field numbers
    // are pinned by hand-written bytes just like the wire ones. This is the version-1
    // layout: the bare payload.
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // schema_version (field 1, VARINT): key 0x08, value 1
        0x08, 0x01,
        // lamport (field 2, VARINT): key 0x10, 300 = varint 0xAC 0x02
        0x10, 0xAC, 0x02,
        // outgoing[0] (field 3, LEN): key 0x1A, length 14 of:
        0x1A, 0x0E,
        //   OutgoingEntry.message (field 1, LEN): key 0x0A, length 5 of an encoded SdsMessage
        //   with message_id (field 2) "a" and lamport_timestamp (field 10, key 0x50) 1
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
        //   IncomingEntry.message (field 1, LEN): key 0x0A, length 3: an encoded SdsMessage
        //   with message_id "b"
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
    assert_eq!(expected.len(), 54);
    assert_eq!(v1::encode_channel_meta(&busy_meta(1)), expected);
    // It loads, as the current version.
    assert_eq!(decode_channel_meta(expected), Ok(busy_meta(SCHEMA_VERSION)));

    // Version 2: the envelope, then the same payload saying version 2.
    #[rustfmt::skip]
    let header: &[u8] = &[0x07, 0x02, b'S', 54, 0x00, 0x00, 0x00, 0x4E, 0xCE, 0x5D, 0xF0];
    let mut enveloped = header.to_vec();
    enveloped.extend_from_slice(&[0x08, 0x02]);
    enveloped.extend_from_slice(&expected[2..]);
    assert_eq!(encode_channel_meta(&busy_meta(SCHEMA_VERSION)), enveloped);
    assert_eq!(
        decode_channel_meta(&enveloped),
        Ok(busy_meta(SCHEMA_VERSION))
    );
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
    assert_eq!(v1::encode_logged_message(&logged), logged_bytes);
    assert_eq!(decode_logged_message(logged_bytes), Ok(logged.clone()));
    #[rustfmt::skip]
    let logged_v2: &[u8] = &[
        // Envelope: kind 'R' (history row), payload length 7, CRC32C.
        0x07, 0x02, b'R', 0x07, 0x00, 0x00, 0x00, 0x85, 0x84, 0x09, 0x58,
        0x0A, 0x03, 0x12, 0x01, b'a', 0x12, 0x00,
    ];
    assert_eq!(encode_logged_message(&logged), logged_v2);
    assert_eq!(decode_logged_message(logged_v2), Ok(logged));

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
    assert_eq!(v1::encode_history_update(&update), update_bytes);
    assert_eq!(decode_history_update(update_bytes), Ok(update.clone()));
    #[rustfmt::skip]
    let update_v2: &[u8] = &[
        // Envelope: kind 'U' (history update), payload length 8, CRC32C.
        0x07, 0x02, b'U', 0x08, 0x00, 0x00, 0x00, 0x45, 0x88, 0x70, 0x1A,
        0x0A, 0x03, 0x12, 0x01, 0x01, 0x12, 0x01, b'z',
    ];
    assert_eq!(encode_history_update(&update), update_v2);
    assert_eq!(decode_history_update(update_v2), Ok(update));
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
    // Version 1 (no envelope): field 1 (key 0x0A, LEN) claims 5 bytes but only 1 follows.
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

// A history row without its message is refused, not loaded as an entry with an empty id;
// so is an empty value.
#[test]
fn row_without_message_is_refused() {
    let hint_only = LoggedMessage {
        message: None,
        retrieval_hint: Some(vec![0xaa]),
    };
    let v1_bytes = v1::encode_logged_message(&hint_only);
    assert_eq!(v1_bytes, [0x12, 0x01, 0xaa]);
    for bytes in [v1_bytes, encode_logged_message(&hint_only)] {
        let err = decode_logged_message(&bytes).unwrap_err();
        assert!(err.to_string().contains("holds no message"), "{err}");
    }
    assert_eq!(
        decode_logged_message(b""),
        Err(CodecError::Truncated {
            what: "logged message",
            expected: 11,
            found: 0
        })
    );
}

/// The snapshot layout before buffered messages were stored as bytes: `OutgoingEntry` and
/// `IncomingEntry` embedded an `sds.wire.SdsMessage`. Kept here, as prost would generate it,
/// to prove that snapshots written then still load, and that the two layouts write the
/// same bytes.
mod embedded_layout {
    use sds_codec::storage::{IncomingRepairEntry, OutgoingRepairEntry};
    use sds_codec::wire::SdsMessage;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ChannelMeta {
        #[prost(uint32, tag = "1")]
        pub schema_version: u32,
        #[prost(uint64, tag = "2")]
        pub lamport: u64,
        #[prost(message, repeated, tag = "3")]
        pub outgoing: Vec<OutgoingEntry>,
        #[prost(message, repeated, tag = "4")]
        pub incoming: Vec<IncomingEntry>,
        #[prost(message, repeated, tag = "5")]
        pub outgoing_repairs: Vec<OutgoingRepairEntry>,
        #[prost(message, repeated, tag = "6")]
        pub incoming_repairs: Vec<IncomingRepairEntry>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OutgoingEntry {
        #[prost(message, optional, tag = "1")]
        pub message: Option<SdsMessage>,
        #[prost(int64, tag = "2")]
        pub sent_at_ms: i64,
        #[prost(uint32, tag = "3")]
        pub resend_attempts: u32,
        #[prost(uint32, tag = "4")]
        pub possible_acks: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IncomingEntry {
        #[prost(message, optional, tag = "1")]
        pub message: Option<SdsMessage>,
        #[prost(string, repeated, tag = "2")]
        pub missing_dependencies: Vec<String>,
        #[prost(int64, tag = "3")]
        pub received_at_ms: i64,
    }
}

fn full_message(id: &str, lamport: u64) -> SdsMessage {
    SdsMessage {
        sender_id: "alice".into(),
        message_id: id.into(),
        channel_id: "ch".into(),
        lamport_timestamp: Some(lamport),
        causal_history: vec![HistoryEntry {
            message_id: "dep".into(),
            retrieval_hint: Some(vec![1, 2, 3]),
            sender_id: Some("bob".into()),
        }],
        bloom_filter: None,
        repair_request: vec![HistoryEntry {
            message_id: "lost".into(),
            ..Default::default()
        }],
        content: Some(format!("content of {id}").into_bytes()),
    }
}

/// A snapshot written with the embedded-message layout decodes with the bytes layout, each
/// buffered message decoding to exactly what was written, and encodes back to the same
/// bytes (as the payload): that change needed no migration of its own.
#[test]
fn snapshot_written_with_embedded_messages_still_loads() {
    use prost::Message as _;

    let outgoing: Vec<SdsMessage> = (1..=3)
        .map(|n| full_message(&format!("out-{n}"), n))
        .collect();
    let waiting = full_message("in-1", 9);
    let old = embedded_layout::ChannelMeta {
        schema_version: 1,
        lamport: 42,
        outgoing: outgoing
            .iter()
            .enumerate()
            .map(|(n, message)| embedded_layout::OutgoingEntry {
                message: Some(message.clone()),
                sent_at_ms: 1_000 + n as i64,
                resend_attempts: n as u32,
                possible_acks: 1,
            })
            .collect(),
        incoming: vec![embedded_layout::IncomingEntry {
            message: Some(waiting.clone()),
            missing_dependencies: vec!["dep".into()],
            received_at_ms: 77,
        }],
        outgoing_repairs: Vec::new(),
        incoming_repairs: Vec::new(),
    };
    let old_bytes = old.encode_to_vec();

    let meta = decode_channel_meta(&old_bytes).expect("an old snapshot decodes");
    assert_eq!(meta.lamport, 42);
    assert_eq!(meta.outgoing.len(), 3);
    for (n, (entry, written)) in meta.outgoing.iter().zip(&outgoing).enumerate() {
        assert_eq!(entry.decode_message().as_ref(), Ok(written));
        assert_eq!(entry.sent_at_ms, 1_000 + n as i64);
        assert_eq!(entry.resend_attempts, n as u32);
        assert_eq!(entry.possible_acks, 1);
    }
    let incoming = meta.incoming.get(0).expect("one incoming entry");
    assert_eq!(incoming.decode_message(), Ok(waiting));
    assert_eq!(incoming.missing_dependencies, ["dep"]);
    assert_eq!(incoming.received_at_ms, 77);

    // Both layouts write the same bytes, so the payload this build writes (behind its
    // envelope) is what the embedded layout wrote.
    let mut as_v1 = meta.clone();
    as_v1.schema_version = 1;
    assert_eq!(v1::encode_channel_meta(&as_v1), old_bytes);
    let stored = encode_channel_meta(&meta);
    assert_eq!(
        embedded_layout::ChannelMeta::decode(&stored[sds_codec::storage::ENVELOPE_HEADER_LEN..]),
        Ok(embedded_layout::ChannelMeta {
            schema_version: SCHEMA_VERSION,
            ..old
        })
    );
    // The same inside a bootstrap payload.
    let data = ChannelData {
        meta: Some(meta.clone()),
        history: Vec::new(),
    };
    assert_eq!(
        decode_channel_data(&encode_channel_data(&data)).map(|data| data.meta),
        Ok(Some(meta))
    );
}

/// A buffered entry without a message, or with bytes that are not a wire message, is a
/// typed decoding error naming the entry, never a panic or a default message.
#[test]
fn buffered_entry_without_a_valid_message_is_refused() {
    let empty = OutgoingEntry::default();
    let garbage = IncomingEntry {
        // Field 1 (key 0x0A, LEN) claims 5 bytes but only 1 follows.
        message: Bytes::from_static(&[0x0A, 0x05, 0x08]),
        ..Default::default()
    };
    match empty.decode_message() {
        Err(CodecError::Malformed { what, reason }) => {
            assert_eq!(what, "outgoing entry");
            assert!(reason.contains("holds no message"), "{reason}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(matches!(
        garbage.decode_message(),
        Err(CodecError::Malformed {
            what: "incoming entry",
            ..
        })
    ));
}

/// Decoding a snapshot shares its buffered messages in chunks, so cloning what a backend
/// loaded copies a few pointers; the chunked form compares equal to the flat one.
#[test]
fn decoded_buffers_are_chunked_and_equal_to_flat_ones() {
    let entries: Vec<OutgoingEntry> = (0..200)
        .map(|n| OutgoingEntry {
            message: encode_buffered_message(&full_message(&format!("m{n}"), n)),
            sent_at_ms: n as i64,
            ..Default::default()
        })
        .collect();
    let meta = ChannelMeta {
        outgoing: entries.clone().into(),
        ..ChannelMeta::empty()
    };
    let decoded = decode_channel_meta(&encode_channel_meta(&meta)).expect("decodes");
    assert!(decoded.outgoing.chunks().len() > 1);
    assert_eq!(decoded, meta);
    assert_eq!(decoded.outgoing.to_vec(), entries);
}
