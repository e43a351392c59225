//! Errors of building and connecting a backend, and how driver errors map onto
//! [`PersistenceError`].

use sds_core::persistence::PersistenceError;
use thiserror::Error;

/// Why a PostgreSQL backend could not be built or connected.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The schema name is not one this crate accepts.
    #[error("invalid schema name {schema:?}: {reason}")]
    InvalidSchema {
        /// The name given.
        schema: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL is not a PostgreSQL connection URL the driver understands.
    #[error("invalid PostgreSQL URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The backend was built outside a Tokio runtime, which its connection pool needs.
    #[error("the PostgreSQL backend must be built inside a Tokio runtime")]
    NoRuntime,
    /// A pool or timeout setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// The server could not be reached, or refused the connection (authentication, no such
    /// database, too many connections, …).
    #[error("cannot connect to PostgreSQL at {server}")]
    Connect {
        /// The server, database and schema, without credentials.
        server: String,
        /// The driver's report.
        #[source]
        source: sqlx::Error,
    },
    /// Creating the schema or its tables failed (no privilege, a table of the same name
    /// with another shape, a migration applied by a newer build, …).
    #[error("migrating schema {schema:?} failed")]
    Migrate {
        /// The schema.
        schema: String,
        /// The driver's report.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<PostgresError> for PersistenceError {
    fn from(err: PostgresError) -> Self {
        match err {
            PostgresError::Connect { .. } => {
                PersistenceError::unavailable_from("cannot connect to PostgreSQL", err)
            }
            other => PersistenceError::other_from("cannot open the PostgreSQL backend", other),
        }
    }
}

/// Whether a server error code (SQLSTATE) means "try again later": the connection broke,
/// the server shuts down or is overloaded, the statement was cancelled or timed out, or a
/// lock could not be had.
fn is_transient(code: &str) -> bool {
    // 08: connection exception; 53: insufficient resources; 57: operator intervention
    // (57014 statement timeout/cancel, 57P01 terminated by an administrator); 58: system
    // error; 40: transaction rollback (serialization failure, deadlock).
    ["08", "53", "57", "58", "40"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "55P03" // lock_not_available
}

/// Maps a driver error met while `what` (e.g. `commit of channel "x"`).
///
/// Connection, pool, TLS and protocol failures and transient server errors are
/// [`PersistenceError::Unavailable`]; everything else is [`PersistenceError::Other`].
/// Undecodable stored bytes are reported as `Corrupt` by the decoding code, not here.
pub(crate) fn driver_error(what: &str, err: sqlx::Error) -> PersistenceError {
    if matches!(err, sqlx::Error::PoolTimedOut) {
        return PersistenceError::unavailable_from(
            format!(
                "{what}: no connection within connect_timeout (the server is unreachable, \
                 or every pooled connection is busy)"
            ),
            err,
        );
    }
    if is_connection_error(&err) {
        return PersistenceError::unavailable_from(format!("{what}: {err}"), err);
    }
    let code = match &err {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    };
    match code.as_deref() {
        Some(code) if is_transient(code) => {
            PersistenceError::unavailable_from(format!("{what}: {err}"), err)
        }
        // undefined_table, invalid_schema_name: nobody ran the migrations on this schema.
        Some("42P01" | "3F000") => PersistenceError::other_from(
            format!(
                "{what}: the schema has no SDS tables; connect once with migrations \
                 (PostgresBuilder::connect) to create them ({err})"
            ),
            err,
        ),
        _ => PersistenceError::other_from(format!("{what}: {err}"), err),
    }
}

/// Whether the error says the connection (not the statement) failed, so the same
/// statement on a fresh connection may succeed.
pub(crate) fn is_connection_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .as_deref()
            .is_some_and(|code| code.starts_with("08") || code == "57P01" || code == "57P02"),
        _ => false,
    }
}

/// The error of an operation that did not finish within its client-side deadline.
pub(crate) fn deadline_error(what: &str, deadline: std::time::Duration) -> PersistenceError {
    PersistenceError::unavailable(format!(
        "{what}: no answer from PostgreSQL within {} ms",
        deadline.as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sds_core::persistence::PersistenceErrorKind;

    #[test]
    fn errors_map_to_persistence_kinds() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_connection_error(&io));
        assert_eq!(
            driver_error("x", io).kind(),
            PersistenceErrorKind::Unavailable
        );
        assert_eq!(
            driver_error("x", sqlx::Error::PoolTimedOut).kind(),
            PersistenceErrorKind::Unavailable
        );
        assert_eq!(
            driver_error("x", sqlx::Error::RowNotFound).kind(),
            PersistenceErrorKind::Other
        );
        for code in ["57014", "57P01", "08006", "40P01", "55P03", "53300"] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23505", "P0001", "42P01", "22003"] {
            assert!(!is_transient(code), "{code}");
        }
        let connect = PostgresError::Connect {
            server: "postgres://h:1/db".into(),
            source: sqlx::Error::PoolTimedOut,
        };
        assert_eq!(
            PersistenceError::from(connect).kind(),
            PersistenceErrorKind::Unavailable
        );
    }
}
