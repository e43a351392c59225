use sds_codec::CodecError;
use thiserror::Error;

use super::fence::WriterEpoch;

/// A boxed error from a backend's own client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The coarse kind of a [`PersistenceError`], for callers and tests that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersistenceErrorKind {
    /// The backend could not be reached or refused the operation for now; retrying may work.
    Unavailable,
    /// Stored bytes could not be decoded, or stored data breaks an invariant.
    Corrupt,
    /// A stored snapshot has a schema version this build does not read.
    UnsupportedSchema,
    /// A newer writer claimed the namespace: this instance's writes are refused for good
    /// (retrying never helps) and nothing of the refused write was applied.
    Fenced,
    /// Anything else.
    Other,
}

/// Why a persistence operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PersistenceError {
    /// The backend could not be reached or refused the operation for now.
    #[error("persistence backend unavailable: {message}")]
    Unavailable {
        /// What failed, in words.
        message: String,
        /// The client library's error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// Stored data could not be decoded or breaks an invariant.
    #[error("corrupt stored data: {message}")]
    Corrupt {
        /// What is corrupt and where.
        message: String,
    },
    /// A stored snapshot has a schema version this build does not read.
    #[error(
        "unsupported snapshot schema version {found}: this build reads versions 1 to {supported}"
    )]
    UnsupportedSchema {
        /// The version found in storage.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The write was refused because a newer writer claimed the namespace after this
    /// instance did (see [`super::Persistence::claim_writer`]); nothing of it was applied.
    #[error(
        "writer fenced: this instance claimed the namespace at epoch {held}, a newer writer \
         claimed it since (epoch {current}); nothing was written"
    )]
    Fenced {
        /// The epoch this instance claimed.
        held: WriterEpoch,
        /// The namespace's epoch when the write was refused.
        current: WriterEpoch,
    },
    /// Any other failure.
    #[error("persistence failure: {message}")]
    Other {
        /// What failed, in words.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl PersistenceError {
    /// An [`PersistenceError::Unavailable`] with a message and no source.
    pub fn unavailable(message: impl Into<String>) -> Self {
        PersistenceError::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// An [`PersistenceError::Unavailable`] wrapping a client error.
    pub fn unavailable_from(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        PersistenceError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A [`PersistenceError::Corrupt`] with a message.
    pub fn corrupt(message: impl Into<String>) -> Self {
        PersistenceError::Corrupt {
            message: message.into(),
        }
    }

    /// A [`PersistenceError::Fenced`]: this instance holds `held`, the namespace is at
    /// `current`.
    pub fn fenced(held: WriterEpoch, current: WriterEpoch) -> Self {
        PersistenceError::Fenced { held, current }
    }

    /// An [`PersistenceError::Other`] with a message and no source.
    pub fn other(message: impl Into<String>) -> Self {
        PersistenceError::Other {
            message: message.into(),
            source: None,
        }
    }

    /// An [`PersistenceError::Other`] wrapping an underlying error.
    pub fn other_from(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        PersistenceError::Other {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The coarse kind of this error.
    pub fn kind(&self) -> PersistenceErrorKind {
        match self {
            PersistenceError::Unavailable { .. } => PersistenceErrorKind::Unavailable,
            PersistenceError::Corrupt { .. } => PersistenceErrorKind::Corrupt,
            PersistenceError::UnsupportedSchema { .. } => PersistenceErrorKind::UnsupportedSchema,
            PersistenceError::Fenced { .. } => PersistenceErrorKind::Fenced,
            PersistenceError::Other { .. } => PersistenceErrorKind::Other,
        }
    }
}

impl From<CodecError> for PersistenceError {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::UnsupportedSchema { found, supported } => {
                PersistenceError::UnsupportedSchema { found, supported }
            }
            other => PersistenceError::corrupt(other.to_string()),
        }
    }
}
