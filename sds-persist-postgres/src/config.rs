//! Configuration of a PostgreSQL backend: server, schema, namespace, pool and timeouts.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::error::PostgresError;
use crate::{PostgresPersistence, db};

/// The namespace used when the builder is not given one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The schema holding the tables when the builder is not given one.
pub const DEFAULT_SCHEMA: &str = "sds";

/// The URL query parameter naming the schema (`postgres://…/db?sds_schema=name`). It is
/// taken out of the URL before the rest is handed to the driver.
pub const SCHEMA_URL_PARAMETER: &str = "sds_schema";

/// Builds a [`PostgresPersistence`]; start from [`PostgresPersistence::builder`].
///
/// # Timeouts
///
/// Nothing waits unboundedly on the server:
///
/// - [`connect_timeout`](Self::connect_timeout) bounds getting a connection from the pool,
///   connecting (and retrying a refused connection) included;
/// - [`statement_timeout`](Self::statement_timeout) is set on every session, so the server
///   itself cancels a statement that runs or waits for a lock longer;
/// - every operation also runs under a client-side deadline of both plus one second, which
///   catches a server that stopped answering altogether (a network partition).
///
/// Each ends the operation with
/// [`PersistenceErrorKind::Unavailable`](sds_core::persistence::PersistenceErrorKind::Unavailable).
///
/// # Durability
///
/// With [`synchronous_commit`](Self::synchronous_commit) on (the default) every session
/// runs with `synchronous_commit = on`: a commit returns once its WAL record is flushed on
/// the server (and on synchronous standbys, if configured), and the backend declares
/// `durable_on_ack`. Off, commits return before the flush (the server flushes within a
/// few hundred milliseconds; a server crash may lose the last acknowledged commits, never
/// a part of one). Writer claims, channel drops and
/// [`close`](sds_core::persistence::Persistence::close) are made durable either way.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct PostgresBuilder {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) namespace: String,
    pub(crate) max_connections: u32,
    pub(crate) min_connections: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) synchronous_commit: bool,
    pub(crate) application_name: String,
}

impl PostgresBuilder {
    pub(crate) fn new(url: &str) -> Self {
        let (url, schema) = take_schema_parameter(url);
        PostgresBuilder {
            url,
            schema: schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_owned()),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            max_connections: 10,
            min_connections: 0,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            synchronous_commit: true,
            application_name: "sds-persist-postgres".to_owned(),
        }
    }

    /// The schema holding the tables (default [`DEFAULT_SCHEMA`], or the URL's
    /// [`SCHEMA_URL_PARAMETER`]); created by the migrations if missing. It must be 1 to 63
    /// characters of lowercase ASCII letters, digits and `_`, not starting with a digit nor
    /// with `pg_`: it is the only identifier this crate puts into SQL text.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The namespace the instance serves (default [`DEFAULT_NAMESPACE`]). Any string is
    /// allowed, the empty one included; instances with different namespaces share the
    /// tables without seeing each other's channels.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The most connections the pool opens (default 10). Operations on different channels
    /// run in parallel up to this many.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// Connections the pool keeps open even when idle (default 0).
    pub fn min_connections(mut self, min: u32) -> Self {
        self.min_connections = min;
        self
    }

    /// How long an operation may wait for a connection, connecting included (default 5 s).
    /// See [the timeouts](Self#timeouts).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The server-side `statement_timeout` of every session (default 10 s). See
    /// [the timeouts](Self#timeouts).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// How long an unused connection stays open (default 10 minutes; `None` forever).
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = timeout.into();
        self
    }

    /// Whether commits wait for the server's WAL flush (default `true`). See
    /// [the durability trade-off](Self#durability).
    pub fn synchronous_commit(mut self, on: bool) -> Self {
        self.synchronous_commit = on;
        self
    }

    /// The `application_name` of the sessions (default `sds-persist-postgres`), as
    /// `pg_stat_activity` shows it.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Connects, creates the schema and its tables if missing (the embedded migrations;
    /// harmless to run again, or from several processes at once) and returns the backend.
    pub async fn connect(self) -> Result<PostgresPersistence, PostgresError> {
        let settings = self.settings()?;
        crate::migrate::run(&settings).await?;
        db::open(settings)
    }

    /// The backend, without connecting and without running the migrations: the first
    /// operation connects. For tables some other process created, and for tests of an
    /// unreachable server; fails only on invalid settings, or outside a Tokio runtime.
    pub fn connect_lazy(self) -> Result<PostgresPersistence, PostgresError> {
        db::open(self.settings()?)
    }

    /// Checks every setting and builds what the pool needs.
    pub(crate) fn settings(self) -> Result<Settings, PostgresError> {
        validate_schema(&self.schema)?;
        if self.max_connections == 0 {
            return Err(PostgresError::InvalidSetting {
                setting: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        if self.min_connections > self.max_connections {
            return Err(PostgresError::InvalidSetting {
                setting: "min_connections",
                reason: format!(
                    "{} exceeds max_connections ({})",
                    self.min_connections, self.max_connections
                ),
            });
        }
        for (setting, value) in [
            ("connect_timeout", self.connect_timeout),
            ("statement_timeout", self.statement_timeout),
        ] {
            if value.as_millis() == 0 {
                return Err(PostgresError::InvalidSetting {
                    setting,
                    reason: "must be at least one millisecond".into(),
                });
            }
        }
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(PostgresError::InvalidUrl {
                reason: "expected postgres://user@host:port/database".into(),
            });
        }
        let statement_ms = self.statement_timeout.as_millis().to_string();
        let connect = PgConnectOptions::from_str(&self.url)
            .map_err(|err| PostgresError::InvalidUrl {
                reason: err.to_string(),
            })?
            .application_name(&self.application_name)
            .options([
                ("statement_timeout", statement_ms.as_str()),
                (
                    "synchronous_commit",
                    if self.synchronous_commit { "on" } else { "off" },
                ),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.connect_timeout)
            .idle_timeout(self.idle_timeout)
            .test_before_acquire(true);
        let deadline = self.connect_timeout + self.statement_timeout + Duration::from_secs(1);
        Ok(Settings {
            described: describe(&connect, &self.schema),
            connect,
            pool,
            schema: self.schema,
            namespace: self.namespace,
            synchronous_commit: self.synchronous_commit,
            deadline,
        })
    }
}

/// Validated settings, ready to open a pool.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) connect: PgConnectOptions,
    pub(crate) pool: PgPoolOptions,
    pub(crate) schema: String,
    pub(crate) namespace: String,
    pub(crate) synchronous_commit: bool,
    /// The client-side bound of one operation.
    pub(crate) deadline: Duration,
    /// The server, database and schema, without credentials.
    pub(crate) described: String,
}

fn describe(connect: &PgConnectOptions, schema: &str) -> String {
    format!(
        "postgres://{}:{}/{}?{SCHEMA_URL_PARAMETER}={schema}",
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or_default()
    )
}

/// Refuses a schema name that would need quoting rules to be safe in SQL text.
pub(crate) fn validate_schema(schema: &str) -> Result<(), PostgresError> {
    let invalid = |reason: &str| {
        Err(PostgresError::InvalidSchema {
            schema: schema.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if schema.is_empty() || schema.len() > 63 {
        return invalid("it must be 1 to 63 characters long");
    }
    if !schema
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return invalid("only lowercase ASCII letters, digits and '_' are allowed");
    }
    if schema.as_bytes()[0].is_ascii_digit() {
        return invalid("it must not start with a digit");
    }
    if schema.starts_with("pg_") {
        return invalid("names starting with pg_ are reserved by PostgreSQL");
    }
    Ok(())
}

/// Splits this crate's own query parameter off a URL: the URL without it, and its value.
fn take_schema_parameter(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((SCHEMA_URL_PARAMETER, value)) => {
                schema = Some(value.to_owned());
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_validated() {
        for good in ["sds", "_x", "a1_b2", &"s".repeat(63)] {
            assert!(validate_schema(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "Sds",
            "a-b",
            "a b",
            "a\"b",
            "pg_sds",
            "é",
            &"s".repeat(64),
        ] {
            let err = validate_schema(bad).unwrap_err();
            assert!(
                matches!(err, PostgresError::InvalidSchema { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("schema"), "{err}");
        }
    }

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        let cases = [
            ("postgres://h/db", "postgres://h/db", None),
            ("postgres://h/db?sds_schema=x", "postgres://h/db", Some("x")),
            (
                "postgres://h/db?sslmode=disable&sds_schema=x&application_name=a",
                "postgres://h/db?sslmode=disable&application_name=a",
                Some("x"),
            ),
        ];
        for (url, rest, schema) in cases {
            let (got_rest, got_schema) = take_schema_parameter(url);
            assert_eq!(got_rest, rest);
            assert_eq!(got_schema.as_deref(), schema);
        }
        let builder = PostgresBuilder::new("postgres://h/db?sds_schema=run_1");
        assert_eq!(builder.schema, "run_1");
    }

    #[test]
    fn invalid_settings_are_refused_with_their_name() {
        let url = "postgres://postgres@127.0.0.1/test";
        let err = PostgresBuilder::new(url)
            .max_connections(0)
            .settings()
            .unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
        let err = PostgresBuilder::new(url)
            .statement_timeout(Duration::ZERO)
            .settings()
            .unwrap_err();
        assert!(err.to_string().contains("statement_timeout"), "{err}");
        let err = PostgresBuilder::new("mysql://nope").settings().unwrap_err();
        assert!(matches!(err, PostgresError::InvalidUrl { .. }), "{err}");
        let settings = PostgresBuilder::new("postgres://u:secret@h:5433/db")
            .settings()
            .unwrap();
        assert_eq!(settings.described, "postgres://h:5433/db?sds_schema=sds");
    }
}
