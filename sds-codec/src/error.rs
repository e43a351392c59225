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
    /// A storage snapshot was written with a schema version this build does not know.
    #[error(
        "unsupported snapshot schema version {found}: this build reads version {supported} only"
    )]
    UnsupportedSchema {
        /// The version found in the snapshot.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
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
