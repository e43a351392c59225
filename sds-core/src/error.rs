//! Errors of the protocol operations.

use sds_codec::CodecError;
use thiserror::Error;

use crate::config::ConfigError;
use crate::persistence::PersistenceError;

/// Why a protocol operation failed.
///
/// Foreground operations never fail because a save failed or timed out (the state stays in
/// memory and is retried); only bootstrap loads and drops surface [`SdsError::Persistence`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SdsError {
    /// Loading a channel at bootstrap, or dropping one, failed in the backend.
    #[error("persistence failed: {0}")]
    Persistence(#[from] PersistenceError),
    /// Bytes could not be encoded or decoded as an SDS message (malformed or oversize).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The application reused a message id that the channel already holds.
    #[error("message id {message_id:?} is already used in channel {channel:?}")]
    DuplicateMessageId {
        /// The channel.
        channel: String,
        /// The reused id.
        message_id: String,
    },
    /// An argument or a received message breaks a protocol rule.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The channel was closed while the operation waited for it.
    #[error("channel {0:?} was closed")]
    ChannelClosed(String),
    /// A read-only call named a channel that is neither joined nor open: reads never
    /// create a channel (join it first with `join_channel`).
    #[error("channel {0:?} is not joined and not open")]
    UnknownChannel(String),
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The manager was shut down (`ReliabilityManager::shutdown`): it takes no further
    /// operation. Build a new one over the same backend storage to continue.
    #[error("the reliability manager was shut down")]
    ShutDown,
}
