//! Errors of connecting, and how Redis errors map onto [`PersistenceError`].

use redis::{ErrorKind, RedisError, ServerErrorKind};
use sds_core::persistence::PersistenceError;
use thiserror::Error;

/// Why a Redis backend could not be built or connected.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RedisBackendError {
    /// The URL (or one of the Cluster node URLs) is not one this backend reads.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key prefix holds a brace, which would change the keys' hash tag.
    #[error("invalid key prefix {0:?}: it may not hold `{{` or `}}`")]
    InvalidPrefix(String),
    /// The server (or no Cluster node) could be reached within the connect timeout, or it
    /// refused the connection (authentication, protocol).
    #[error("cannot connect to Redis at {target}")]
    Connect {
        /// The URL or node list.
        target: String,
        /// The client's report.
        #[source]
        source: PersistenceError,
    },
}

impl From<RedisBackendError> for PersistenceError {
    fn from(err: RedisBackendError) -> Self {
        match err {
            RedisBackendError::InvalidUrl { .. } | RedisBackendError::InvalidPrefix(_) => {
                PersistenceError::other_from("invalid Redis configuration", err)
            }
            RedisBackendError::Connect { .. } => {
                PersistenceError::unavailable_from("cannot connect to Redis", err)
            }
        }
    }
}

/// Maps a Redis error met while serving `what`: lost or refused connections, timeouts, a
/// server loading its data set, a Cluster that is down, resharding or failing over are
/// [`PersistenceError::Unavailable`] (retrying may work); anything else (a script error, a
/// key of the wrong type) is [`PersistenceError::Other`].
pub(crate) fn redis_error(what: &str, err: RedisError) -> PersistenceError {
    let transient = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_cluster_error()
        || matches!(
            err.kind(),
            ErrorKind::Io
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                )
        )
        // A script still running holds the server (`BUSY`); OOM under `maxmemory`.
        || matches!(err.code(), Some("BUSY" | "OOM"));
    if transient {
        PersistenceError::unavailable_from(what.to_owned(), err)
    } else {
        PersistenceError::other_from(what.to_owned(), err)
    }
}

/// The error of a call that did not answer within its deadline.
pub(crate) fn timed_out(what: &str, after: std::time::Duration) -> PersistenceError {
    PersistenceError::unavailable(format!(
        "{what}: Redis did not answer within {} ms",
        after.as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sds_core::persistence::PersistenceErrorKind;

    #[test]
    fn io_and_server_errors_map_to_kinds() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            redis_error("x", io).kind(),
            PersistenceErrorKind::Unavailable
        );
        let wrong_type = RedisError::from((ErrorKind::UnexpectedReturnType, "wrong type"));
        assert_eq!(
            redis_error("x", wrong_type).kind(),
            PersistenceErrorKind::Other
        );
        let connect = RedisBackendError::Connect {
            target: "redis://127.0.0.1:1".into(),
            source: PersistenceError::unavailable("refused"),
        };
        assert_eq!(
            PersistenceError::from(connect).kind(),
            PersistenceErrorKind::Unavailable
        );
    }
}
