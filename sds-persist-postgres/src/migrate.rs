//! The embedded migrations: the schema and its tables, created on connect.
//!
//! They run on a connection of their own (a pool of one) whose `search_path` is the schema, so the
//! migration scripts name no schema (one text and one checksum for every schema) and sqlx's
//! bookkeeping table `_sqlx_migrations` lives in the schema too: schemas migrate
//! independently. sqlx holds an advisory lock while it migrates, and the schema itself is
//! created under one of ours, so two processes connecting at once wait for each other
//! instead of racing; a second run finds everything applied and does nothing.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::PgPoolOptions;

use crate::config::Settings;
use crate::error::{PostgresError, is_connection_error};

/// Serializes `CREATE SCHEMA IF NOT EXISTS` across processes (two concurrent ones may
/// otherwise both try to insert the schema and one fail on the catalog's unique index).
/// An arbitrary constant: "sds-sche" in ASCII.
const SCHEMA_LOCK: i64 = 0x7364_732d_7363_6865;

/// The migrations of this build, in order.
const SCRIPTS: [(i64, &str, &str); 1] =
    [(1, "tables", include_str!("../migrations/0001_tables.sql"))];

/// The scripts above as sqlx migrations.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(SCRIPTS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Creates the schema if missing and applies the migrations it lacks, on a pool of one
/// connection of its own whose `search_path` is the schema (closed afterwards, so sqlx's
/// session-level lock never outlives the run).
pub(crate) async fn run(settings: &Settings) -> Result<(), PostgresError> {
    let schema = settings.schema.as_str();
    let migrate_error = |source: BoxDynError| PostgresError::Migrate {
        schema: schema.to_owned(),
        source,
    };
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(settings.deadline)
        .connect_lazy_with(settings.connect.clone().options([("search_path", schema)]));
    let outcome = tokio::time::timeout(settings.deadline, async {
        // One simple query, so one transaction: the lock is held until the schema exists.
        // The schema name is validated: lowercase letters, digits and '_' only.
        sqlx::raw_sql(&format!(
            "SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); CREATE SCHEMA IF NOT EXISTS \"{schema}\";"
        ))
        .execute(&pool)
        .await
        .map_err(|err| match err {
            err if is_connection_error(&err) => PostgresError::Connect {
                server: settings.described.clone(),
                source: err,
            },
            err => migrate_error(err.into()),
        })?;
        let migrator = Migrator::new(Embedded)
            .await
            .map_err(|err| migrate_error(err.into()))?;
        migrator
            .run(&pool)
            .await
            .map_err(|err| migrate_error(err.into()))
    })
    .await;
    let outcome = match outcome {
        Ok(result) => result,
        Err(_) => Err(PostgresError::Connect {
            server: settings.described.clone(),
            source: sqlx::Error::PoolTimedOut,
        }),
    };
    pool.close().await;
    if outcome.is_ok() {
        tracing::debug!(schema, "PostgreSQL schema migrated");
    }
    outcome
}
