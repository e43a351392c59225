//! Golden bytes of the wire message, written out by hand from the protobuf encoding rules.
//!
//! Every expected byte below is derived from the rules, not from running the encoder:
//! - a field key is the varint `field_number << 3 | wire_type`, with wire type 0 (VARINT)
//!   for `uint64` and 2 (LEN) for strings, bytes and embedded messages;
//! - a varint stores 7 bits per byte, least significant group first, with the high bit set
//!   on every byte but the last;
//! - a LEN field is its key, the payload length as a varint, then the payload;
//! - proto3 leaves out a non-optional scalar equal to its default, while an `optional`
//!   field that is present is written even when it holds the default;
//! - fields are written in field-number order.
//!
//! Field keys used here (SdsMessage): sender_id 1/LEN = 0x0A, message_id 2/LEN = 0x12,
//! channel_id 3/LEN = 0x1A, lamport_timestamp 10/VARINT = 0x50, causal_history 11/LEN = 0x5A,
//! bloom_filter 12/LEN = 0x62, repair_request 13/LEN = 0x6A, content 20/LEN = 162, which
//! needs two varint bytes: 0xA2 0x01. HistoryEntry: message_id 1/LEN = 0x0A,
//! retrieval_hint 2/LEN = 0x12, sender_id 3/LEN = 0x1A.
//!
//! Because the bytes are fixed by hand, a wrong field number or wire type in the `.proto`
//! file makes these tests fail, even though a round trip through the same code would pass.
// Test helpers outside `#[test]` functions also unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_codec::wire::{HistoryEntry, MessageKind, SdsMessage, decode_message, encode_message};

/// Asserts that `message` encodes to exactly `expected`, that `expected` decodes back to
/// `message`, and that the message is of kind `kind`.
fn assert_golden(message: &SdsMessage, expected: &[u8], kind: MessageKind) {
    let encoded = encode_message(message).expect("a small message encodes");
    assert_eq!(
        encoded, expected,
        "encoding differs from the hand-written bytes"
    );
    let decoded = decode_message(expected).expect("the hand-written bytes decode");
    assert_eq!(&decoded, message, "decoding the hand-written bytes differs");
    assert_eq!(message.kind(), kind);
    assert_eq!(decoded.kind(), kind);
}

#[test]
fn content_message_golden_bytes() {
    let message = SdsMessage {
        sender_id: "alice".into(),
        message_id: "msg-1".into(),
        channel_id: "general".into(),
        lamport_timestamp: Some(300),
        content: Some(b"hello".to_vec()),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // sender_id (field 1, LEN): key 0x0A, length 5, "alice"
        0x0A, 0x05, b'a', b'l', b'i', b'c', b'e',
        // message_id (field 2, LEN): key 0x12, length 5, "msg-1"
        0x12, 0x05, b'm', b's', b'g', b'-', b'1',
        // channel_id (field 3, LEN): key 0x1A, length 7, "general"
        0x1A, 0x07, b'g', b'e', b'n', b'e', b'r', b'a', b'l',
        // lamport_timestamp (field 10, VARINT): key 10 << 3 | 0 = 0x50, then 300 as a varint:
        // 300 = 0b10_0101100 -> low group 0101100 = 0x2C with the continuation bit = 0xAC,
        // then the remaining group 0b10 = 0x02
        0x50, 0xAC, 0x02,
        // causal_history (11), bloom_filter (12), repair_request (13): absent, not written
        // content (field 20, LEN): key 162 as a varint = 0xA2 0x01, length 5, "hello"
        0xA2, 0x01, 0x05, b'h', b'e', b'l', b'l', b'o',
    ];
    assert_golden(&message, expected, MessageKind::Content);
}

#[test]
fn sync_message_golden_bytes() {
    let message = SdsMessage {
        sender_id: "bob".into(),
        message_id: "sync-7".into(),
        channel_id: "general".into(),
        lamport_timestamp: Some(1),
        bloom_filter: Some(vec![0xDE, 0xAD, 0xBE, 0xEF]),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // sender_id (field 1, LEN): key 0x0A, length 3, "bob"
        0x0A, 0x03, b'b', b'o', b'b',
        // message_id (field 2, LEN): key 0x12, length 6, "sync-7"
        0x12, 0x06, b's', b'y', b'n', b'c', b'-', b'7',
        // channel_id (field 3, LEN): key 0x1A, length 7, "general"
        0x1A, 0x07, b'g', b'e', b'n', b'e', b'r', b'a', b'l',
        // lamport_timestamp (field 10, VARINT): key 0x50, value 1 fits one varint byte
        0x50, 0x01,
        // bloom_filter (field 12, LEN): key 12 << 3 | 2 = 0x62, length 4, the raw bytes
        0x62, 0x04, 0xDE, 0xAD, 0xBE, 0xEF,
        // content (field 20): absent, so nothing is written and the message is a sync message
    ];
    assert_golden(&message, expected, MessageKind::Sync);
}

#[test]
fn sync_message_with_present_empty_content_golden_bytes() {
    // `content` and `lamport_timestamp` are `optional`: when present they are written even
    // though they hold the default value, which is how explicit presence survives the wire.
    let message = SdsMessage {
        sender_id: "bob".into(),
        message_id: "sync-8".into(),
        channel_id: "general".into(),
        lamport_timestamp: Some(0),
        content: Some(Vec::new()),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // sender_id (field 1, LEN): key 0x0A, length 3, "bob"
        0x0A, 0x03, b'b', b'o', b'b',
        // message_id (field 2, LEN): key 0x12, length 6, "sync-8"
        0x12, 0x06, b's', b'y', b'n', b'c', b'-', b'8',
        // channel_id (field 3, LEN): key 0x1A, length 7, "general"
        0x1A, 0x07, b'g', b'e', b'n', b'e', b'r', b'a', b'l',
        // lamport_timestamp (field 10, VARINT): present with value 0, so key 0x50, value 0x00
        0x50, 0x00,
        // content (field 20, LEN): present and empty, so key 0xA2 0x01 and length 0
        0xA2, 0x01, 0x00,
    ];
    assert_golden(&message, expected, MessageKind::Sync);
}

#[test]
fn ephemeral_message_golden_bytes() {
    let message = SdsMessage {
        sender_id: "carol".into(),
        message_id: "eph-1".into(),
        channel_id: "general".into(),
        lamport_timestamp: None,
        content: Some(b"typing".to_vec()),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // sender_id (field 1, LEN): key 0x0A, length 5, "carol"
        0x0A, 0x05, b'c', b'a', b'r', b'o', b'l',
        // message_id (field 2, LEN): key 0x12, length 5, "eph-1"
        0x12, 0x05, b'e', b'p', b'h', b'-', b'1',
        // channel_id (field 3, LEN): key 0x1A, length 7, "general"
        0x1A, 0x07, b'g', b'e', b'n', b'e', b'r', b'a', b'l',
        // lamport_timestamp (field 10): absent, so the message is ephemeral
        // content (field 20, LEN): key 0xA2 0x01, length 6, "typing"
        0xA2, 0x01, 0x06, b't', b'y', b'p', b'i', b'n', b'g',
    ];
    assert_golden(&message, expected, MessageKind::Ephemeral);
}

#[test]
fn full_message_with_history_bloom_and_repairs_golden_bytes() {
    let message = SdsMessage {
        sender_id: "dave".into(),
        message_id: "m-42".into(),
        channel_id: "general".into(),
        lamport_timestamp: Some(1_700_000_000_000),
        causal_history: vec![
            HistoryEntry {
                message_id: "m-40".into(),
                retrieval_hint: Some(vec![0x01, 0x02]),
                sender_id: Some("alice".into()),
            },
            HistoryEntry {
                message_id: "m-41".into(),
                retrieval_hint: None,
                sender_id: None,
            },
        ],
        bloom_filter: Some(vec![0x80, 0, 0, 0, 0, 0, 0, 0x01]),
        repair_request: vec![HistoryEntry {
            message_id: "m-39".into(),
            retrieval_hint: Some(vec![0xAA]),
            sender_id: Some("bob".into()),
        }],
        content: Some(b"hi".to_vec()),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // sender_id (field 1, LEN): key 0x0A, length 4, "dave"
        0x0A, 0x04, b'd', b'a', b'v', b'e',
        // message_id (field 2, LEN): key 0x12, length 4, "m-42"
        0x12, 0x04, b'm', b'-', b'4', b'2',
        // channel_id (field 3, LEN): key 0x1A, length 7, "general"
        0x1A, 0x07, b'g', b'e', b'n', b'e', b'r', b'a', b'l',
        // lamport_timestamp (field 10, VARINT): key 0x50, then 1_700_000_000_000 =
        // 0x18B_CFE5_6800. Its 7-bit groups, least significant first, are
        // 0x00, 0x50, 0x15, 0x7F, 0x3C, 0x31; all but the last get the continuation bit 0x80.
        0x50, 0x80, 0xD0, 0x95, 0xFF, 0xBC, 0x31,
        // causal_history[0] (field 11, LEN): key 11 << 3 | 2 = 0x5A, length 17 = 0x11 of:
        0x5A, 0x11,
        //   HistoryEntry.message_id (field 1, LEN): key 0x0A, length 4, "m-40"  (6 bytes)
        0x0A, 0x04, b'm', b'-', b'4', b'0',
        //   HistoryEntry.retrieval_hint (field 2, LEN): key 0x12, length 2  (4 bytes)
        0x12, 0x02, 0x01, 0x02,
        //   HistoryEntry.sender_id (field 3, LEN): key 0x1A, length 5, "alice"  (7 bytes)
        0x1A, 0x05, b'a', b'l', b'i', b'c', b'e',
        // causal_history[1] (field 11, LEN): key 0x5A, length 6 of:
        0x5A, 0x06,
        //   HistoryEntry.message_id (field 1, LEN): key 0x0A, length 4, "m-41"; hint and
        //   sender are absent and not written
        0x0A, 0x04, b'm', b'-', b'4', b'1',
        // bloom_filter (field 12, LEN): key 0x62, length 8, the raw bytes
        0x62, 0x08, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        // repair_request[0] (field 13, LEN): key 13 << 3 | 2 = 0x6A, length 14 = 0x0E of:
        0x6A, 0x0E,
        //   HistoryEntry.message_id (field 1, LEN): key 0x0A, length 4, "m-39"  (6 bytes)
        0x0A, 0x04, b'm', b'-', b'3', b'9',
        //   HistoryEntry.retrieval_hint (field 2, LEN): key 0x12, length 1  (3 bytes)
        0x12, 0x01, 0xAA,
        //   HistoryEntry.sender_id (field 3, LEN): key 0x1A, length 3, "bob"  (5 bytes)
        0x1A, 0x03, b'b', b'o', b'b',
        // content (field 20, LEN): key 0xA2 0x01, length 2, "hi"
        0xA2, 0x01, 0x02, b'h', b'i',
    ];
    assert_golden(&message, expected, MessageKind::Content);
}

#[test]
fn fields_out_of_order_on_the_wire_decode_to_the_same_message() {
    // Protobuf decoders must accept fields in any order; another implementation may write
    // content before the identifiers.
    #[rustfmt::skip]
    let reordered: &[u8] = &[
        // content (field 20, LEN): "hi"
        0xA2, 0x01, 0x02, b'h', b'i',
        // lamport_timestamp (field 10, VARINT): 7
        0x50, 0x07,
        // channel_id (field 3, LEN): "c"
        0x1A, 0x01, b'c',
        // sender_id (field 1, LEN): "s"
        0x0A, 0x01, b's',
        // message_id (field 2, LEN): "m"
        0x12, 0x01, b'm',
    ];
    let decoded = decode_message(reordered).expect("reordered fields decode");
    let expected = SdsMessage {
        sender_id: "s".into(),
        message_id: "m".into(),
        channel_id: "c".into(),
        lamport_timestamp: Some(7),
        content: Some(b"hi".to_vec()),
        ..Default::default()
    };
    assert_eq!(decoded, expected);
    assert_eq!(decoded.kind(), MessageKind::Content);
}

#[test]
fn unknown_fields_are_skipped() {
    // A newer peer may add fields; this build must still read the fields it knows.
    #[rustfmt::skip]
    let with_unknown: &[u8] = &[
        // message_id (field 2, LEN): "m"
        0x12, 0x01, b'm',
        // unknown field 15, VARINT: key 15 << 3 | 0 = 0x78, value 0x2A
        0x78, 0x2A,
        // unknown field 16, LEN: key 16 << 3 | 2 = 130 = varint 0x82 0x01, length 2
        0x82, 0x01, 0x02, 0xFF, 0xFF,
        // lamport_timestamp (field 10, VARINT): 9
        0x50, 0x09,
    ];
    let decoded = decode_message(with_unknown).expect("unknown fields are skipped");
    assert_eq!(decoded.message_id, "m");
    assert_eq!(decoded.lamport_timestamp, Some(9));
    assert_eq!(decoded.kind(), MessageKind::Sync);
}
