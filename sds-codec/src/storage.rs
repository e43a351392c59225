//! The storage snapshot types and their schema-versioned codec.
//!
//! Backends store [`ChannelMeta`] as one opaque blob (replaced whole on every save) and the
//! history as one [`LoggedMessage`] per row or key, so that an append or an eviction touches
//! only the rows it names.
//!
//! A snapshot is cheap to copy: buffered messages are held encoded ([`OutgoingEntry::message`],
//! [`IncomingEntry::message`] are shared [`Bytes`]) and the buffers in shared chunks
//! ([`Entries`]), so saving a channel after every operation costs what the backend writes,
//! not a deep copy of every buffered message.
//!
//! # Stored layout (schema version 2)
//!
//! Every blob the `encode_*` functions return is the protobuf encoding of its type (the
//! payload, defined in `proto/sds/storage.proto`) behind an 11-byte header:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 1 | marker `0x07` |
//! | 1 | 1 | schema version: [`SCHEMA_VERSION`] |
//! | 2 | 1 | kind: `S` snapshot, `R` history row, `D` channel data, `U` history update |
//! | 3 | 4 | payload length in bytes, unsigned little-endian |
//! | 7 | 4 | CRC32C (Castagnoli) of bytes 0 to 6 followed by the payload, little-endian |
//! | 11 | length | payload |
//!
//! Decoding checks, in this order: the length (a blob cut short is
//! [`CodecError::Truncated`], with the length the header states and the length found; one
//! longer than stated is [`CodecError::TrailingBytes`]), the checksum
//! ([`CodecError::ChecksumMismatch`]: any flipped bit, including in the version or the kind),
//! the version ([`CodecError::UnsupportedSchema`]), the kind, then the payload. A snapshot's
//! payload repeats the version in `ChannelMeta.schema_version`; the two must agree. Later
//! versions keep this header and change the payload only, so a newer blob is recognised as
//! newer, not as damaged.
//!
//! # Version 1
//!
//! Before the envelope, a blob was the bare payload, a snapshot saying
//! `schema_version = 1`. Such blobs still decode (no version-1 blob starts with the marker,
//! an invalid protobuf key), so existing stores load; a decoded snapshot then says
//! [`SCHEMA_VERSION`], its in-memory layout, and is written back enveloped on its next save.
//! They carry no length or checksum, so damage to them is caught only as far as protobuf
//! can. [`v1`] writes this layout, for tests and tools.
//!
//! An empty value is refused as truncated in every version: nothing this codec ever wrote
//! was empty.

mod crc32c;
mod entries;
mod envelope;
mod meta;
pub mod v1;

use prost::Message;

use crate::CodecError;
// The generated storage code names wire types as `super::wire::…`.
use crate::wire::{self, SdsMessage};

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/sds.storage.rs"));
}

pub use entries::{Entries, Iter};
pub use envelope::HEADER_LEN as ENVELOPE_HEADER_LEN;
pub use generated::{
    ChannelData, HistoryUpdate, IncomingEntry, IncomingRepairEntry, LoggedMessage, OutgoingEntry,
    OutgoingRepairEntry,
};
pub use meta::ChannelMeta;
/// Shared, immutable bytes: how buffered messages are held in a snapshot.
pub use prost::bytes::Bytes;

/// The schema version this build writes: every stored blob is enveloped (see the module
/// docs). It reads this version and version 1.
pub const SCHEMA_VERSION: u32 = 2;

/// [`SCHEMA_VERSION`] as the envelope's version byte.
const ENVELOPE_VERSION: u8 = 2;

/// The version of blobs stored without an envelope.
const UNENVELOPED_VERSION: u32 = 1;

/// Encodes a message for [`OutgoingEntry::message`] or [`IncomingEntry::message`]. The
/// caller strips what should not be stored (the bloom filter) first. Never fails: the size
/// limit is the wire codec's business, and a buffered message passed it once.
pub fn encode_buffered_message(message: &SdsMessage) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

/// Decodes a buffered message, refusing an entry that holds none.
fn decode_buffered_message(what: &'static str, bytes: &[u8]) -> Result<SdsMessage, CodecError> {
    if bytes.is_empty() {
        return Err(CodecError::Malformed {
            what,
            reason: "the entry holds no message".to_string(),
        });
    }
    wire::decode_message(bytes).map_err(|err| CodecError::Malformed {
        what,
        reason: err.to_string(),
    })
}

impl OutgoingEntry {
    /// Decodes the buffered message; an entry without one, or with bytes that are not a
    /// wire message, is refused.
    pub fn decode_message(&self) -> Result<SdsMessage, CodecError> {
        decode_buffered_message("outgoing entry", &self.message)
    }
}

impl IncomingEntry {
    /// Decodes the buffered message; an entry without one, or with bytes that are not a
    /// wire message, is refused.
    pub fn decode_message(&self) -> Result<SdsMessage, CodecError> {
        decode_buffered_message("incoming entry", &self.message)
    }
}

impl ChannelData {
    /// The bootstrap payload of a channel that was never saved.
    pub fn empty() -> Self {
        ChannelData {
            meta: Some(ChannelMeta::empty()),
            history: Vec::new(),
        }
    }
}

impl HistoryUpdate {
    /// True when the update neither appends nor evicts anything.
    pub fn is_empty(&self) -> bool {
        self.append.is_empty() && self.evict.is_empty()
    }
}

impl LoggedMessage {
    /// The logged message's id (empty if the message itself is missing).
    pub fn message_id(&self) -> &str {
        self.message
            .as_ref()
            .map_or("", |message| message.message_id.as_str())
    }

    /// The logged message's Lamport timestamp (0 if absent).
    pub fn lamport(&self) -> u64 {
        self.message
            .as_ref()
            .and_then(|message| message.lamport_timestamp)
            .unwrap_or(0)
    }
}

/// Checks the version a snapshot's payload states against the layout it was found in:
/// one from a newer build is unsupported; any other disagreement means the blob is not what
/// this codec wrote.
fn check_schema(what: &'static str, found: u32, layout: u32) -> Result<(), CodecError> {
    if found == layout {
        Ok(())
    } else if found > SCHEMA_VERSION {
        Err(CodecError::UnsupportedSchema {
            found,
            supported: SCHEMA_VERSION,
        })
    } else {
        Err(CodecError::Malformed {
            what,
            reason: format!("the snapshot says schema version {found} in a version-{layout} blob"),
        })
    }
}

/// Decodes a blob of either layout into `M`, returning the layout's version: an enveloped
/// blob once its envelope checks out, else the bare version-1 payload.
fn decode_blob<M: Message + Default>(
    what: &'static str,
    kind: envelope::Kind,
    bytes: &[u8],
) -> Result<(M, u32), CodecError> {
    if bytes.is_empty() {
        return Err(CodecError::Truncated {
            what,
            expected: ENVELOPE_HEADER_LEN,
            found: 0,
        });
    }
    let (payload, layout) = if envelope::is_enveloped(bytes) {
        let payload = envelope::open(what, bytes, ENVELOPE_VERSION, kind)?;
        (payload, SCHEMA_VERSION)
    } else {
        (bytes, UNENVELOPED_VERSION)
    };
    let decoded = M::decode(payload).map_err(|err| CodecError::malformed(what, err))?;
    Ok((decoded, layout))
}

/// Encodes a channel snapshot, enveloped. Costs one pass to encode and one to checksum.
pub fn encode_channel_meta(meta: &ChannelMeta) -> Vec<u8> {
    envelope::seal(ENVELOPE_VERSION, envelope::Kind::Snapshot, meta)
}

/// Decodes a channel snapshot of either layout, refusing a blob that is truncated, damaged,
/// of an unknown schema version or not a snapshot.
pub fn decode_channel_meta(bytes: &[u8]) -> Result<ChannelMeta, CodecError> {
    let (mut meta, layout): (ChannelMeta, u32) =
        decode_blob("channel meta", envelope::Kind::Snapshot, bytes)?;
    check_schema("channel meta", meta.schema_version, layout)?;
    meta.schema_version = SCHEMA_VERSION;
    Ok(meta)
}

/// Encodes one history row, enveloped.
pub fn encode_logged_message(message: &LoggedMessage) -> Vec<u8> {
    envelope::seal(ENVELOPE_VERSION, envelope::Kind::HistoryRow, message)
}

/// Decodes one history row of either layout, refusing a truncated or damaged blob and a row
/// that carries no message (which would otherwise load as a bogus entry with an empty id).
pub fn decode_logged_message(bytes: &[u8]) -> Result<LoggedMessage, CodecError> {
    let (logged, _): (LoggedMessage, u32) =
        decode_blob("logged message", envelope::Kind::HistoryRow, bytes)?;
    if logged.message.is_none() {
        return Err(CodecError::Malformed {
            what: "logged message",
            reason: "the row holds no message".to_string(),
        });
    }
    Ok(logged)
}

/// Encodes a whole bootstrap payload, enveloped (for backends that keep a channel in one
/// value).
pub fn encode_channel_data(data: &ChannelData) -> Vec<u8> {
    envelope::seal(ENVELOPE_VERSION, envelope::Kind::ChannelData, data)
}

/// Decodes a bootstrap payload of either layout; a missing snapshot decodes as
/// [`ChannelMeta::empty`], an unknown schema version is refused.
pub fn decode_channel_data(bytes: &[u8]) -> Result<ChannelData, CodecError> {
    let (mut data, layout): (ChannelData, u32) =
        decode_blob("channel data", envelope::Kind::ChannelData, bytes)?;
    match &mut data.meta {
        Some(meta) => {
            check_schema("channel data", meta.schema_version, layout)?;
            meta.schema_version = SCHEMA_VERSION;
        }
        None => data.meta = Some(ChannelMeta::empty()),
    }
    Ok(data)
}

/// Encodes a history batch, enveloped.
pub fn encode_history_update(update: &HistoryUpdate) -> Vec<u8> {
    envelope::seal(ENVELOPE_VERSION, envelope::Kind::HistoryUpdate, update)
}

/// Decodes a history batch of either layout.
pub fn decode_history_update(bytes: &[u8]) -> Result<HistoryUpdate, CodecError> {
    decode_blob("history update", envelope::Kind::HistoryUpdate, bytes).map(|(update, _)| update)
}
