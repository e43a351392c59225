//! The wire message's rules: the size limit on encode and decode, and how a message's kind
//! follows from its fields.
// Test helpers outside `#[test]` functions also unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_codec::CodecError;
use sds_codec::wire::{MAX_MESSAGE_SIZE, MessageKind, SdsMessage, decode_message, encode_message};

/// Bytes taken by the `content` key (field 20, LEN: 0xA2 0x01) and by the varint of a
/// length between 2^14 and 2^21 - 1 (three bytes), which every content length below is.
const CONTENT_OVERHEAD: usize = 2 + 3;

/// A message holding only content, sized so its encoding is exactly `encoded_size` bytes.
fn message_of_encoded_size(encoded_size: usize) -> SdsMessage {
    SdsMessage {
        content: Some(vec![0x5A; encoded_size - CONTENT_OVERHEAD]),
        ..Default::default()
    }
}

/// The hand-built encoding of a message holding only `content_len` bytes of content.
fn encoded_content_only(content_len: usize) -> Vec<u8> {
    assert!((1 << 14..1 << 21).contains(&content_len));
    let mut bytes = vec![
        0xA2,
        0x01,
        // The length as a three-byte varint.
        (content_len & 0x7F) as u8 | 0x80,
        ((content_len >> 7) & 0x7F) as u8 | 0x80,
        (content_len >> 14) as u8,
    ];
    bytes.resize(bytes.len() + content_len, 0x5A);
    bytes
}

#[test]
fn the_limit_is_one_mebibyte() {
    assert_eq!(MAX_MESSAGE_SIZE, 1_048_576);
}

#[test]
fn a_message_exactly_at_the_limit_encodes_and_decodes() {
    let message = message_of_encoded_size(MAX_MESSAGE_SIZE);
    let bytes = encode_message(&message).expect("a message at the limit encodes");
    assert_eq!(bytes.len(), MAX_MESSAGE_SIZE);
    assert_eq!(
        bytes,
        encoded_content_only(MAX_MESSAGE_SIZE - CONTENT_OVERHEAD)
    );
    let decoded = decode_message(&bytes).expect("a message at the limit decodes");
    assert_eq!(decoded, message);
}

#[test]
fn a_message_over_the_limit_is_refused_on_encode() {
    let message = message_of_encoded_size(MAX_MESSAGE_SIZE + 1);
    let err = encode_message(&message).expect_err("one byte over the limit is refused");
    assert_eq!(
        err,
        CodecError::TooLarge {
            what: "wire message",
            size: MAX_MESSAGE_SIZE + 1,
            limit: MAX_MESSAGE_SIZE,
        }
    );
    let text = err.to_string();
    assert!(text.contains("1048577"), "names the size: {text}");
    assert!(text.contains("1048576"), "names the limit: {text}");
}

#[test]
fn bytes_over_the_limit_are_refused_on_decode() {
    // A well-formed encoding, refused for its size alone.
    let bytes = encoded_content_only(MAX_MESSAGE_SIZE + 1 - CONTENT_OVERHEAD);
    assert_eq!(bytes.len(), MAX_MESSAGE_SIZE + 1);
    assert_eq!(
        decode_message(&bytes),
        Err(CodecError::TooLarge {
            what: "wire message",
            size: MAX_MESSAGE_SIZE + 1,
            limit: MAX_MESSAGE_SIZE,
        })
    );

    // Much larger garbage is refused the same way, before any parsing.
    let garbage = vec![0xFF; 2 * MAX_MESSAGE_SIZE];
    assert_eq!(
        decode_message(&garbage),
        Err(CodecError::TooLarge {
            what: "wire message",
            size: 2 * MAX_MESSAGE_SIZE,
            limit: MAX_MESSAGE_SIZE,
        })
    );
}

#[test]
fn malformed_wire_bytes_are_refused() {
    // Field 2 (key 0x12, LEN) claims 10 bytes but only 2 follow.
    let truncated: &[u8] = &[0x12, 0x0A, b'a', b'b'];
    match decode_message(truncated) {
        Err(CodecError::Malformed { what, reason }) => {
            assert_eq!(what, "wire message");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    // message_id (field 2) holding bytes that are not UTF-8.
    let not_utf8: &[u8] = &[0x12, 0x02, 0xC3, 0x28];
    assert!(matches!(
        decode_message(not_utf8),
        Err(CodecError::Malformed { .. })
    ));
}

#[test]
fn the_empty_byte_string_is_an_empty_ephemeral_message() {
    let decoded = decode_message(&[]).expect("no fields is a valid message");
    assert_eq!(decoded, SdsMessage::default());
    assert_eq!(decoded.kind(), MessageKind::Ephemeral);
}

fn with(lamport_timestamp: Option<u64>, content: Option<&[u8]>) -> SdsMessage {
    SdsMessage {
        sender_id: "s".into(),
        message_id: "m".into(),
        channel_id: "c".into(),
        lamport_timestamp,
        content: content.map(<[u8]>::to_vec),
        ..Default::default()
    }
}

#[test]
fn lamport_and_non_empty_content_make_a_content_message() {
    assert_eq!(with(Some(5), Some(b"x")).kind(), MessageKind::Content);
    assert_eq!(with(Some(0), Some(b"hello")).kind(), MessageKind::Content);
    assert_eq!(
        with(Some(u64::MAX), Some(&[0])).kind(),
        MessageKind::Content
    );
}

#[test]
fn lamport_without_content_makes_a_sync_message() {
    assert_eq!(with(Some(5), None).kind(), MessageKind::Sync);
    assert_eq!(with(Some(0), None).kind(), MessageKind::Sync);
}

#[test]
fn lamport_with_empty_content_makes_a_sync_message() {
    assert_eq!(with(Some(5), Some(b"")).kind(), MessageKind::Sync);
}

#[test]
fn no_lamport_makes_an_ephemeral_message() {
    assert_eq!(with(None, Some(b"x")).kind(), MessageKind::Ephemeral);
    assert_eq!(with(None, Some(b"")).kind(), MessageKind::Ephemeral);
    assert_eq!(with(None, None).kind(), MessageKind::Ephemeral);
}

#[test]
fn kind_survives_the_wire() {
    // Presence of the optional fields is what tells the kinds apart, so it must survive an
    // encode/decode round trip, the present-but-empty and present-but-zero cases included.
    for message in [
        with(Some(0), Some(b"x")),
        with(Some(0), Some(b"")),
        with(Some(0), None),
        with(None, Some(b"")),
        with(None, None),
    ] {
        let bytes = encode_message(&message).expect("encodes");
        let decoded = decode_message(&bytes).expect("decodes");
        assert_eq!(decoded.kind(), message.kind());
        assert_eq!(decoded, message);
    }
}
