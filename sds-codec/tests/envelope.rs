//! The storage envelope (schema version 2): every stored blob carries its length and a
//! CRC32C, so a value cut short or with a flipped bit is refused with a typed error instead
//! of decoding into less, or other, than was written; version-1 blobs still load.
// Test helpers outside `#[test]` functions also unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_codec::CodecError;
use sds_codec::storage::{
    ChannelData, ChannelMeta, ENVELOPE_HEADER_LEN, HistoryUpdate, LoggedMessage, OutgoingEntry,
    SCHEMA_VERSION, decode_channel_data, decode_channel_meta, decode_history_update,
    decode_logged_message, encode_buffered_message, encode_channel_data, encode_channel_meta,
    encode_history_update, encode_logged_message, v1,
};
use sds_codec::wire::SdsMessage;

fn message(id: &str, lamport: u64) -> SdsMessage {
    SdsMessage {
        sender_id: "alice".into(),
        message_id: id.into(),
        channel_id: "ch".into(),
        lamport_timestamp: Some(lamport),
        content: Some(id.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// The snapshot of the issue: three unacknowledged messages, 49 bytes in version 1.
fn three_outgoing(schema_version: u32, entries: usize) -> ChannelMeta {
    ChannelMeta {
        schema_version,
        lamport: 3,
        outgoing: (1..=3)
            .take(entries)
            .map(|n| OutgoingEntry {
                message: encode_buffered_message(&SdsMessage {
                    message_id: format!("m{n}"),
                    lamport_timestamp: Some(n),
                    ..Default::default()
                }),
                sent_at_ms: 1_000,
                resend_attempts: 0,
                possible_acks: 1,
            })
            .collect(),
        ..Default::default()
    }
}

fn logged(id: &str, lamport: u64, hint: Option<&[u8]>) -> LoggedMessage {
    LoggedMessage {
        message: Some(message(id, lamport)),
        retrieval_hint: hint.map(<[u8]>::to_vec),
    }
}

/// One sample blob of every kind, as this build writes them, with what decoding each must
/// name in its errors, and a decoder that reports only whether it succeeded.
type Check = fn(&[u8]) -> Result<(), CodecError>;

fn samples() -> Vec<(&'static str, Vec<u8>, Check)> {
    let meta = three_outgoing(SCHEMA_VERSION, 3);
    let row = logged("m1", 1, Some(b"waku-hash"));
    let data = ChannelData {
        meta: Some(meta.clone()),
        history: vec![row.clone(), logged("m2", 2, None)],
    };
    let update = HistoryUpdate {
        append: vec![row.clone()],
        evict: vec!["m0".into()],
    };
    vec![
        ("channel meta", encode_channel_meta(&meta), |bytes| {
            decode_channel_meta(bytes).map(drop)
        }),
        ("logged message", encode_logged_message(&row), |bytes| {
            decode_logged_message(bytes).map(drop)
        }),
        ("channel data", encode_channel_data(&data), |bytes| {
            decode_channel_data(bytes).map(drop)
        }),
        ("history update", encode_history_update(&update), |bytes| {
            decode_history_update(bytes).map(drop)
        }),
    ]
}

/// The case of the issue: protobuf alone loads a snapshot cut at a field boundary as a
/// shorter one (two of three outgoing entries); the envelope refuses it, with both sizes.
#[test]
fn a_snapshot_cut_at_a_field_boundary_is_refused() {
    // Before (version 1, bare protobuf): 49 bytes, cut to 34 where the third entry begins.
    let bare = v1::encode_channel_meta(&three_outgoing(1, 3));
    assert_eq!(bare.len(), 49);
    let boundary = v1::encode_channel_meta(&three_outgoing(1, 2)).len();
    assert_eq!(boundary, 34);
    let shorter = decode_channel_meta(&bare[..boundary]).expect("protobuf cannot tell");
    assert_eq!(shorter.outgoing.len(), 2);

    // After: 11 bytes of envelope, then the same 49 bytes of payload.
    let stored = encode_channel_meta(&three_outgoing(SCHEMA_VERSION, 3));
    assert_eq!(stored.len(), ENVELOPE_HEADER_LEN + 49);
    let boundary = encode_channel_meta(&three_outgoing(SCHEMA_VERSION, 2)).len();
    assert_eq!(boundary, ENVELOPE_HEADER_LEN + 34);
    let err = decode_channel_meta(&stored[..boundary]).unwrap_err();
    assert_eq!(
        err,
        CodecError::Truncated {
            what: "channel meta",
            expected: 60,
            found: 45
        }
    );
    assert_eq!(
        err.to_string(),
        "channel meta is truncated: expected 60 bytes, found 45"
    );
}

/// Every prefix of every kind of blob, from empty to one byte short, is refused as
/// truncated, with the length its header states once the header holds it.
#[test]
fn every_truncation_is_refused() {
    for (what, blob, check) in samples() {
        let whole = blob.len();
        assert_eq!(check(&blob), Ok(()), "{what}: the whole blob decodes");
        for cut in 0..whole {
            let expected = if cut < 7 { ENVELOPE_HEADER_LEN } else { whole };
            assert_eq!(
                check(&blob[..cut]),
                Err(CodecError::Truncated {
                    what,
                    expected,
                    found: cut
                }),
                "{what} cut to {cut} of {whole} bytes"
            );
        }
    }
}

/// Every single-bit flip anywhere in every kind of blob is refused as damage, never
/// decoded and never mistaken for a newer schema: a flip in the marker makes the blob
/// invalid protobuf, one in the length field contradicts the blob's size, any other fails
/// the checksum.
#[test]
fn every_single_bit_flip_is_refused() {
    for (what, blob, check) in samples() {
        for at in 0..blob.len() {
            for bit in 0..8 {
                let mut flipped = blob.clone();
                flipped[at] ^= 1 << bit;
                let err = check(&flipped).expect_err(&format!(
                    "{what}: flipping bit {bit} of byte {at} is refused"
                ));
                let expected_class = match at {
                    0 => matches!(err, CodecError::Malformed { what: named, .. } if named == what),
                    3..=6 => matches!(
                        err,
                        CodecError::Truncated { what: named, found, .. }
                        | CodecError::TrailingBytes { what: named, found, .. }
                            if named == what && found == blob.len()
                    ),
                    _ => matches!(
                        err,
                        CodecError::ChecksumMismatch { what: named, stored, computed }
                            if named == what && stored != computed
                    ),
                };
                assert!(
                    expected_class,
                    "{what}: bit {bit} of byte {at}: unexpected {err:?}"
                );
            }
        }
    }
}

#[test]
fn bytes_past_the_stated_length_are_refused() {
    for (what, mut blob, check) in samples() {
        let whole = blob.len();
        blob.push(0);
        assert_eq!(
            check(&blob),
            Err(CodecError::TrailingBytes {
                what,
                expected: whole,
                found: whole + 1
            })
        );
    }
}

#[test]
fn a_checksum_mismatch_names_both_checksums() {
    let mut blob = encode_logged_message(&logged("m1", 1, None));
    let last = blob.len() - 1;
    blob[last] ^= 0x01;
    let err = decode_logged_message(&blob).unwrap_err();
    let CodecError::ChecksumMismatch {
        stored, computed, ..
    } = err.clone()
    else {
        panic!("expected a checksum mismatch, got {err:?}");
    };
    assert_eq!(
        err.to_string(),
        format!(
            "logged message is damaged: checksum mismatch (stored CRC32C {stored:#010x}, \
             computed {computed:#010x})"
        )
    );
}

/// A blob stored where another kind belongs (a history row under a snapshot's key) is
/// refused, although its envelope is intact.
#[test]
fn a_blob_of_another_kind_is_refused() {
    let row = encode_logged_message(&logged("m1", 1, None));
    match decode_channel_meta(&row) {
        Err(CodecError::Malformed { what, reason }) => {
            assert_eq!(what, "channel meta");
            assert_eq!(
                reason,
                "the stored value holds a history row, not a channel snapshot"
            );
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let meta = encode_channel_meta(&ChannelMeta::empty());
    assert!(matches!(
        decode_logged_message(&meta),
        Err(CodecError::Malformed {
            what: "logged message",
            ..
        })
    ));
}

/// Blobs an earlier build stored (version 1, bare protobuf) still decode, as what was
/// written; a snapshot comes back at the current version, and is enveloped when written
/// again.
#[test]
fn version_one_blobs_still_decode() {
    let old_meta = three_outgoing(1, 3);
    let meta = decode_channel_meta(&v1::encode_channel_meta(&old_meta)).expect("v1 snapshot");
    assert_eq!(meta.schema_version, SCHEMA_VERSION);
    assert_eq!(
        meta,
        ChannelMeta {
            schema_version: SCHEMA_VERSION,
            ..old_meta.clone()
        }
    );
    let rewritten = encode_channel_meta(&meta);
    assert_eq!(rewritten[..3], [0x07, 0x02, b'S']);
    assert_eq!(decode_channel_meta(&rewritten), Ok(meta.clone()));

    let row = logged("m1", 1, Some(b"hint"));
    assert_eq!(
        decode_logged_message(&v1::encode_logged_message(&row)),
        Ok(row.clone())
    );

    let old_data = ChannelData {
        meta: Some(old_meta),
        history: vec![row.clone()],
    };
    assert_eq!(
        decode_channel_data(&v1::encode_channel_data(&old_data)),
        Ok(ChannelData {
            meta: Some(meta),
            history: vec![row.clone()],
        })
    );

    let update = HistoryUpdate {
        append: vec![row],
        evict: vec!["gone".into()],
    };
    assert_eq!(
        decode_history_update(&v1::encode_history_update(&update)),
        Ok(update)
    );
}

/// An empty value is refused as truncated in every version: no encoder ever wrote one.
#[test]
fn an_empty_value_is_refused_as_truncated() {
    for (what, _, check) in samples() {
        assert_eq!(
            check(&[]),
            Err(CodecError::Truncated {
                what,
                expected: ENVELOPE_HEADER_LEN,
                found: 0
            })
        );
    }
}

/// The envelope costs 11 bytes whatever the payload, and encoding stays one buffer of the
/// exact size.
#[test]
fn the_envelope_adds_eleven_bytes_and_nothing_else() {
    for entries in [0, 1, 3] {
        let meta = three_outgoing(SCHEMA_VERSION, entries);
        let bare = v1::encode_channel_meta(&meta);
        let stored = encode_channel_meta(&meta);
        assert_eq!(stored.len(), bare.len() + 11);
        assert_eq!(stored.capacity(), stored.len());
        assert_eq!(stored[ENVELOPE_HEADER_LEN..], bare);
    }
}
