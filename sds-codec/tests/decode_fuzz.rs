//! Property tests: every decoder turns arbitrary bytes into a value or a typed error, never a
//! panic, and whatever it accepts survives a second round trip unchanged.
//!
//! Storage decoders are fed damaged blobs of both layouts: enveloped ones (version 2) mostly
//! stop at the envelope's checks, so damaged version-1 blobs are what reach the protobuf
//! decoder, which reads the payloads of both.
// Test helpers outside `#[test]` functions also unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    channel_data, channel_meta, decoder_input, history_update, logged_message, sds_message,
};
use proptest::prelude::*;
use sds_codec::CodecError;
use sds_codec::storage::{
    SCHEMA_VERSION, decode_channel_data, decode_channel_meta, decode_history_update,
    decode_logged_message, encode_channel_data, encode_channel_meta, encode_history_update,
    encode_logged_message, v1,
};
use sds_codec::wire::{SdsMessage, decode_message, encode_message};

/// Cases per decoder: arbitrary input needs many more cases than a round trip.
const CASES: u32 = 10_000;

fn encode_wire(message: &SdsMessage) -> Vec<u8> {
    encode_message(message).expect("a small message encodes")
}

/// Asserts that `err` says the input was malformed, naming what was being decoded.
fn assert_malformed(err: &CodecError, expected_what: &str) -> Result<(), TestCaseError> {
    match err {
        CodecError::Malformed { what, reason } => {
            prop_assert_eq!(*what, expected_what);
            prop_assert!(!reason.is_empty(), "a malformed error explains itself");
        }
        other => prop_assert!(false, "expected Malformed, got {other:?}"),
    }
    Ok(())
}

/// Asserts that `err` refuses damaged stored bytes, naming what was being decoded:
/// malformed, or caught by the envelope (truncated, trailing bytes, checksum mismatch).
fn assert_damaged(err: &CodecError, expected_what: &str) -> Result<(), TestCaseError> {
    match err {
        CodecError::Truncated {
            what,
            expected,
            found,
        } => {
            prop_assert_eq!(*what, expected_what);
            prop_assert!(found < expected);
        }
        CodecError::TrailingBytes {
            what,
            expected,
            found,
        } => {
            prop_assert_eq!(*what, expected_what);
            prop_assert!(found > expected);
        }
        CodecError::ChecksumMismatch {
            what,
            stored,
            computed,
        } => {
            prop_assert_eq!(*what, expected_what);
            prop_assert_ne!(stored, computed);
        }
        other => assert_malformed(other, expected_what)?,
    }
    Ok(())
}

/// Asserts that `err` refuses damaged bytes or an unknown schema version.
fn assert_damaged_or_schema(err: &CodecError, expected_what: &str) -> Result<(), TestCaseError> {
    match err {
        CodecError::UnsupportedSchema { found, supported } => {
            prop_assert_ne!(*found, SCHEMA_VERSION);
            prop_assert_eq!(*supported, SCHEMA_VERSION);
            Ok(())
        }
        other => assert_damaged(other, expected_what),
    }
}

/// Blobs of either layout, damaged or not, or noise.
fn storage_input<T, S>(
    values: fn() -> S,
    encode: fn(&T) -> Vec<u8>,
    encode_v1: fn(&T) -> Vec<u8>,
) -> impl Strategy<Value = Vec<u8>>
where
    T: std::fmt::Debug + 'static,
    S: Strategy<Value = T> + 'static,
{
    prop_oneof![
        decoder_input(values(), encode),
        decoder_input(values(), encode_v1),
    ]
}

fn v1_channel_meta(meta: &sds_codec::storage::ChannelMeta) -> Vec<u8> {
    v1::encode_channel_meta(&sds_codec::storage::ChannelMeta {
        schema_version: 1,
        ..meta.clone()
    })
}

fn v1_channel_data(data: &sds_codec::storage::ChannelData) -> Vec<u8> {
    let mut data = data.clone();
    if let Some(meta) = &mut data.meta {
        meta.schema_version = 1;
    }
    v1::encode_channel_data(&data)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn decode_message_never_panics(bytes in decoder_input(sds_message(), encode_wire)) {
        match decode_message(&bytes) {
            Ok(message) => {
                let again = decode_message(&encode_wire(&message)).expect("re-encoding decodes");
                prop_assert_eq!(again, message);
            }
            Err(err) => assert_malformed(&err, "wire message")?,
        }
    }

    #[test]
    fn decode_channel_meta_never_panics(
        bytes in storage_input(channel_meta, encode_channel_meta, v1_channel_meta)
    ) {
        match decode_channel_meta(&bytes) {
            Ok(meta) => {
                prop_assert_eq!(meta.schema_version, SCHEMA_VERSION);
                let again = decode_channel_meta(&encode_channel_meta(&meta))
                    .expect("re-encoding decodes");
                prop_assert_eq!(again, meta);
            }
            Err(err) => assert_damaged_or_schema(&err, "channel meta")?,
        }
    }

    #[test]
    fn decode_channel_data_never_panics(
        bytes in storage_input(channel_data, encode_channel_data, v1_channel_data)
    ) {
        match decode_channel_data(&bytes) {
            Ok(data) => {
                let meta = data.meta.as_ref().expect("decoded data always has a snapshot");
                prop_assert_eq!(meta.schema_version, SCHEMA_VERSION);
                let again = decode_channel_data(&encode_channel_data(&data))
                    .expect("re-encoding decodes");
                prop_assert_eq!(again, data);
            }
            Err(err) => assert_damaged_or_schema(&err, "channel data")?,
        }
    }

    #[test]
    fn decode_logged_message_never_panics(
        bytes in storage_input(logged_message, encode_logged_message, v1::encode_logged_message)
    ) {
        match decode_logged_message(&bytes) {
            Ok(logged) => {
                let again = decode_logged_message(&encode_logged_message(&logged))
                    .expect("re-encoding decodes");
                prop_assert_eq!(again, logged);
            }
            Err(err) => assert_damaged(&err, "logged message")?,
        }
    }

    #[test]
    fn decode_history_update_never_panics(
        bytes in storage_input(history_update, encode_history_update, v1::encode_history_update)
    ) {
        match decode_history_update(&bytes) {
            Ok(update) => {
                let again = decode_history_update(&encode_history_update(&update))
                    .expect("re-encoding decodes");
                prop_assert_eq!(again, update);
            }
            Err(err) => assert_damaged(&err, "history update")?,
        }
    }
}
