//! The storage envelope: a fixed header that gives every stored blob its schema version,
//! what it holds, its length and a CRC32C, so a value cut short or damaged is refused
//! instead of decoding into less than was written.
//!
//! Protobuf alone cannot tell: a blob cut at a field boundary is a valid, shorter message
//! (a snapshot of three outgoing entries cut after the second loads with two), and a
//! flipped bit inside a varint or a string decodes to another valid value.
//!
//! The layout is documented on [`crate::storage`]; [`seal`] writes it and [`open`] checks
//! it, in this order: length, checksum, version, kind.

use prost::Message;

use super::crc32c;
use crate::CodecError;

/// First byte of every enveloped blob. As a protobuf key it would name field 0 with wire
/// type 7, both invalid, and so would every byte one bit away from it, so no version-1
/// blob (plain protobuf) starts with it, and a damaged marker fails to decode as one.
pub(crate) const MARKER: u8 = 0x07;

/// Bytes before the payload: marker, version, kind, length (u32 LE), CRC32C (u32 LE).
pub const HEADER_LEN: usize = 11;

/// Where the checksum sits; it covers the header bytes before it, then the payload.
const CHECKSUM_AT: usize = 7;

/// What a blob holds, so one stored in the wrong place (a history row read as a snapshot)
/// is refused rather than misread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A [`super::ChannelMeta`].
    Snapshot,
    /// A [`super::LoggedMessage`].
    HistoryRow,
    /// A [`super::ChannelData`].
    ChannelData,
    /// A [`super::HistoryUpdate`].
    HistoryUpdate,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Snapshot => b'S',
            Kind::HistoryRow => b'R',
            Kind::ChannelData => b'D',
            Kind::HistoryUpdate => b'U',
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        [
            Kind::Snapshot,
            Kind::HistoryRow,
            Kind::ChannelData,
            Kind::HistoryUpdate,
        ]
        .into_iter()
        .find(|kind| kind.byte() == byte)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Snapshot => "a channel snapshot",
            Kind::HistoryRow => "a history row",
            Kind::ChannelData => "channel data",
            Kind::HistoryUpdate => "a history update",
        }
    }
}

/// Whether `bytes` are enveloped (version 2 and later) rather than version-1 protobuf.
pub(crate) fn is_enveloped(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MARKER)
}

/// Encodes `message` behind a header of `version` and `kind`, in one buffer of the exact
/// size: one pass to encode, one to checksum.
pub(crate) fn seal(version: u8, kind: Kind, message: &impl Message) -> Vec<u8> {
    let payload_len = message.encoded_len();
    // A payload of 4 GiB cannot be framed; none comes near (every buffered message passed
    // the wire size limit and the buffers are bounded). Saturating keeps encoding
    // infallible; such a blob would be refused on load, never misread.
    let framed_len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len);
    out.extend_from_slice(&[MARKER, version, kind.byte()]);
    out.extend_from_slice(&framed_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    // What `encode_to_vec` does, into a buffer that already holds the header.
    message.encode_raw(&mut out);
    let crc = checksum(&out);
    out[CHECKSUM_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The CRC32C of an enveloped blob: its header up to the checksum, then its payload.
fn checksum(blob: &[u8]) -> u32 {
    let header = blob.get(..CHECKSUM_AT).unwrap_or_default();
    let payload = blob.get(HEADER_LEN..).unwrap_or_default();
    crc32c::extend(crc32c::checksum(header), payload)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        word.copy_from_slice(slice);
    }
    u32::from_le_bytes(word)
}

/// Checks an enveloped blob and returns its payload: the length first (so a value cut short
/// says so, with both sizes), then the checksum (covering the version and kind too), then
/// the version (`supported` only) and the kind. `what` names the blob in errors.
pub(crate) fn open<'a>(
    what: &'static str,
    bytes: &'a [u8],
    supported: u8,
    kind: Kind,
) -> Result<&'a [u8], CodecError> {
    if bytes.len() < HEADER_LEN {
        // With its length field intact, a cut header still says how long the blob was.
        let expected = if bytes.len() >= CHECKSUM_AT {
            stated_len(bytes)
        } else {
            HEADER_LEN
        };
        return Err(CodecError::Truncated {
            what,
            expected,
            found: bytes.len(),
        });
    }
    let expected = stated_len(bytes);
    if bytes.len() < expected {
        return Err(CodecError::Truncated {
            what,
            expected,
            found: bytes.len(),
        });
    }
    if bytes.len() > expected {
        return Err(CodecError::TrailingBytes {
            what,
            expected,
            found: bytes.len(),
        });
    }
    let stored = u32_at(bytes, CHECKSUM_AT);
    let computed = checksum(bytes);
    if stored != computed {
        return Err(CodecError::ChecksumMismatch {
            what,
            stored,
            computed,
        });
    }
    let version = bytes[1];
    if version != supported {
        return Err(CodecError::UnsupportedSchema {
            found: u32::from(version),
            supported: u32::from(supported),
        });
    }
    match Kind::from_byte(bytes[2]) {
        Some(found) if found == kind => Ok(&bytes[HEADER_LEN..]),
        found => Err(CodecError::Malformed {
            what,
            reason: format!(
                "the stored value holds {}, not {}",
                found.map_or("an unknown kind of value", Kind::name),
                kind.name()
            ),
        }),
    }
}

/// The whole blob's length according to its header (which must hold the length field).
fn stated_len(bytes: &[u8]) -> usize {
    let payload = usize::try_from(u32_at(bytes, 3)).unwrap_or(usize::MAX);
    HEADER_LEN.saturating_add(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::HistoryEntry;

    fn sample() -> HistoryEntry {
        HistoryEntry {
            message_id: "m".into(),
            ..Default::default()
        }
    }

    #[test]
    fn header_golden_bytes() {
        let blob = seal(2, Kind::HistoryRow, &sample());
        let payload = sample().encode_to_vec();
        assert_eq!(&blob[..7], [MARKER, 2, b'R', 3, 0, 0, 0]);
        let mut covered = blob[..7].to_vec();
        covered.extend_from_slice(&payload);
        assert_eq!(u32_at(&blob, 7), crc32c::checksum(&covered));
        assert_eq!(&blob[HEADER_LEN..], payload);
        assert_eq!(open("row", &blob, 2, Kind::HistoryRow), Ok(&payload[..]));
    }

    #[test]
    fn a_cut_header_reports_the_stated_length_once_it_holds_one() {
        let blob = seal(2, Kind::HistoryRow, &sample());
        assert_eq!(blob.len(), 14);
        for (cut, expected) in [(0, 11), (6, 11), (7, 14), (10, 14)] {
            assert_eq!(
                open("row", &blob[..cut], 2, Kind::HistoryRow),
                Err(CodecError::Truncated {
                    what: "row",
                    expected,
                    found: cut
                })
            );
        }
    }

    #[test]
    fn the_wrong_kind_or_version_is_refused_after_the_checksum_passes() {
        let blob = seal(2, Kind::HistoryRow, &sample());
        let err = open("snapshot", &blob, 2, Kind::Snapshot).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds a history row, not a channel snapshot"),
            "{err}"
        );
        assert_eq!(
            open(
                "row",
                &seal(3, Kind::HistoryRow, &sample()),
                2,
                Kind::HistoryRow
            ),
            Err(CodecError::UnsupportedSchema {
                found: 3,
                supported: 2
            })
        );
    }

    #[test]
    fn every_byte_one_bit_from_the_marker_is_an_invalid_protobuf_key() {
        // A key's low three bits are its wire type (6 and 7 do not exist); with no
        // continuation bit, the rest is the field number (0 does not exist).
        for byte in (0..8).map(|bit| MARKER ^ (1 << bit)).chain([MARKER]) {
            let wire_type = byte & 0x07;
            let lone_field_zero = byte & 0x80 == 0 && byte >> 3 == 0;
            assert!(wire_type >= 6 || lone_field_zero, "{byte:#04x}");
        }
    }
}
