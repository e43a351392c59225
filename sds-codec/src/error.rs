use thiserror::Error;

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The message is larger than the protocol allows.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was being encoded or decoded.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not a valid protobuf encoding of the expected type.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// A stored blob was written with a schema version this build does not know.
    #[error(
        "unsupported storage schema version {found}: this build reads versions 1 to {supported}"
    )]
    UnsupportedSchema {
        /// The version found in the blob.
        found: u32,
        /// The newest version this build reads, the one it writes.
        supported: u32,
    },
    /// A stored blob ends before the length its envelope states: it was cut short.
    #[error("{what} is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// The blob's length according to its header (the header's own length when the
        /// header itself is cut before its length field).
        expected: usize,
        /// The bytes there are.
        found: usize,
    },
    /// A stored blob runs past the length its envelope states.
    #[error("{what} has trailing bytes: expected {expected} bytes, found {found}")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// The blob's length according to its header.
        expected: usize,
        /// The bytes there are.
        found: usize,
    },
    /// A stored blob's bytes do not match the CRC32C its envelope carries: something in
    /// it changed after it was written.
    #[error(
        "{what} is damaged: checksum mismatch (stored CRC32C {stored:#010x}, computed {computed:#010x})"
    )]
    ChecksumMismatch {
        /// What was being decoded.
        what: &'static str,
        /// The checksum in the envelope.
        stored: u32,
        /// The checksum of the bytes found.
        computed: u32,
    },
}

impl CodecError {
    pub(crate) fn malformed(what: &'static str, err: prost::DecodeError) -> Self {
        CodecError::Malformed {
            what,
            reason: err.to_string(),
        }
    }
}
