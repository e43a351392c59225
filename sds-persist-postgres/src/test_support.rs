//! Hooks for test suites: raw writes, database-level fault injection (a trigger), and
//! removing what a test stored. Hidden from the docs; not part of the supported API.
//!
//! Faults are rows of a `test_faults` table that a trigger on the history table consults
//! on every insert, update and delete of a history row: a matching row makes the trigger
//! raise, failing the whole statement (so the whole commit) inside the server. A one-shot
//! fault counts its firings with a sequence of its own, because `nextval` is not rolled back
//! with the failed transaction: the first firing raises, later ones pass. The table, the
//! function and the trigger exist only in schemas a test installed them in.

use std::sync::atomic::{AtomicU64, Ordering};

use sds_core::persistence::PersistenceError;
use sds_core::persistence::order::lamport_to_i64;

use crate::PostgresPersistence;
use crate::error::driver_error;

/// Serializes the installation of the fault trigger ("sds-test" in ASCII).
const FAULT_LOCK: i64 = 0x7364_732d_7465_7374;

/// Names the one-shot faults' sequences apart within a process.
static NEXT_FAULT: AtomicU64 = AtomicU64::new(0);

fn hook_error(what: &str) -> impl FnOnce(sqlx::Error) -> PersistenceError + '_ {
    move |err| driver_error(&format!("test hook {what}"), err)
}

impl PostgresPersistence {
    /// Test hook: writes `bytes` as the raw stored snapshot of `channel`.
    #[doc(hidden)]
    pub async fn write_raw_meta(
        &self,
        channel: &str,
        bytes: &[u8],
    ) -> Result<(), PersistenceError> {
        let s = self.schema();
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".channel_meta (namespace, channel, meta) VALUES ($1, $2, $3)
             ON CONFLICT (namespace, channel) DO UPDATE SET meta = EXCLUDED.meta"
        ))
        .bind(self.namespace_bytes())
        .bind(channel.as_bytes())
        .bind(bytes)
        .execute(self.pool())
        .await
        .map_err(hook_error("write_raw_meta"))?;
        Ok(())
    }

    /// Test hook: writes `bytes` as the raw history row of `message_id` at `lamport`,
    /// whatever they decode to (replacing the id's row, its hint cleared).
    #[doc(hidden)]
    pub async fn write_raw_history_row(
        &self,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), PersistenceError> {
        let s = self.schema();
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".history (namespace, channel, message_id, lamport, message, hint)
             VALUES ($1, $2, $3, $4, $5, NULL)
             ON CONFLICT (namespace, channel, message_id) DO UPDATE
             SET lamport = EXCLUDED.lamport, message = EXCLUDED.message, hint = NULL"
        ))
        .bind(self.namespace_bytes())
        .bind(channel.as_bytes())
        .bind(message_id.as_bytes())
        .bind(lamport_to_i64(lamport))
        .bind(bytes)
        .execute(self.pool())
        .await
        .map_err(hook_error("write_raw_history_row"))?;
        Ok(())
    }

    /// Test hook: installs the fault trigger on this schema's history table (once; later
    /// calls and concurrent ones find it installed).
    #[doc(hidden)]
    pub async fn install_test_faults(&self) -> Result<(), PersistenceError> {
        let s = self.schema();
        let installed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger t
                 JOIN pg_class c ON c.oid = t.tgrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = 'history' AND t.tgname = 'test_fault')",
        )
        .bind(s)
        .fetch_one(self.pool())
        .await
        .map_err(hook_error("install_test_faults"))?;
        if installed {
            return Ok(());
        }
        sqlx::raw_sql(&format!(
            "SELECT pg_advisory_xact_lock({FAULT_LOCK});
             CREATE TABLE IF NOT EXISTS \"{s}\".test_faults (
                 id bigserial PRIMARY KEY,
                 namespace bytea NOT NULL,
                 message_id bytea,
                 once_sequence text
             );
             CREATE OR REPLACE FUNCTION \"{s}\".test_fault() RETURNS trigger
             LANGUAGE plpgsql AS $body$
             DECLARE
                 fault record;
                 row_namespace bytea;
                 row_id bytea;
             BEGIN
                 IF TG_OP = 'DELETE' THEN
                     row_namespace := OLD.namespace;
                     row_id := OLD.message_id;
                 ELSE
                     row_namespace := NEW.namespace;
                     row_id := NEW.message_id;
                 END IF;
                 FOR fault IN
                     SELECT once_sequence FROM \"{s}\".test_faults
                     WHERE namespace = row_namespace
                       AND (message_id IS NULL OR message_id = row_id)
                 LOOP
                     IF fault.once_sequence IS NULL
                        OR nextval(fault.once_sequence::regclass) = 1 THEN
                         RAISE EXCEPTION 'injected test fault: % of history row % refused',
                             TG_OP, encode(row_id, 'escape');
                     END IF;
                 END LOOP;
                 IF TG_OP = 'DELETE' THEN
                     RETURN OLD;
                 END IF;
                 RETURN NEW;
             END
             $body$;
             CREATE OR REPLACE TRIGGER test_fault
                 BEFORE INSERT OR UPDATE OR DELETE ON \"{s}\".history
                 FOR EACH ROW EXECUTE FUNCTION \"{s}\".test_fault();"
        ))
        .execute(self.pool())
        .await
        .map_err(hook_error("install_test_faults"))?;
        Ok(())
    }

    /// Test hook (needs [`install_test_faults`](Self::install_test_faults)): the next write
    /// of any history row of this namespace fails inside the server, failing its whole
    /// statement; later writes pass.
    #[doc(hidden)]
    pub async fn fail_next_history_write(&self) -> Result<(), PersistenceError> {
        self.add_fault(None, true).await
    }

    /// Test hook (needs [`install_test_faults`](Self::install_test_faults)): every write of
    /// the history row of `message_id` in this namespace fails inside the server, until
    /// [`clear_test_faults`](Self::clear_test_faults).
    #[doc(hidden)]
    pub async fn fail_writes_of_message(&self, message_id: &str) -> Result<(), PersistenceError> {
        self.add_fault(Some(message_id), false).await
    }

    async fn add_fault(
        &self,
        message_id: Option<&str>,
        once: bool,
    ) -> Result<(), PersistenceError> {
        let s = self.schema();
        let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
        let namespace = format!("decode('{}', 'hex')", hex(self.namespace_bytes()));
        let message_id = message_id.map_or("NULL".to_owned(), |id| {
            format!("decode('{}', 'hex')", hex(id.as_bytes()))
        });
        // One simple-protocol script runs as one transaction: the fault appears whole.
        let script = if once {
            let sequence = format!(
                "\"{s}\".test_fault_once_{}_{}",
                std::process::id(),
                NEXT_FAULT.fetch_add(1, Ordering::SeqCst)
            );
            format!(
                "CREATE SEQUENCE IF NOT EXISTS {sequence};
                 INSERT INTO \"{s}\".test_faults (namespace, message_id, once_sequence)
                 VALUES ({namespace}, {message_id}, '{sequence}');"
            )
        } else {
            format!(
                "INSERT INTO \"{s}\".test_faults (namespace, message_id, once_sequence)
                 VALUES ({namespace}, {message_id}, NULL);"
            )
        };
        sqlx::raw_sql(&script)
            .execute(self.pool())
            .await
            .map_err(hook_error("add a test fault"))?;
        Ok(())
    }

    /// Test hook: removes this namespace's faults (and their sequences).
    #[doc(hidden)]
    pub async fn clear_test_faults(&self) -> Result<(), PersistenceError> {
        let s = self.schema();
        let error = hook_error("clear_test_faults");
        let result: Result<(), sqlx::Error> = async {
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(format!("\"{s}\".test_faults"))
                .fetch_one(self.pool())
                .await?;
            if !exists {
                return Ok(());
            }
            let sequences: Vec<Option<String>> = sqlx::query_scalar(&format!(
                "DELETE FROM \"{s}\".test_faults WHERE namespace = $1 RETURNING once_sequence"
            ))
            .bind(self.namespace_bytes())
            .fetch_all(self.pool())
            .await?;
            for sequence in sequences.into_iter().flatten() {
                // The name was made by `add_fault`, from the validated schema and numbers.
                sqlx::raw_sql(&format!("DROP SEQUENCE IF EXISTS {sequence}"))
                    .execute(self.pool())
                    .await?;
            }
            Ok(())
        }
        .await;
        result.map_err(error)
    }

    /// Test hook: deletes every row of this namespace (snapshots, history, fence, faults).
    #[doc(hidden)]
    pub async fn delete_namespace(&self) -> Result<(), PersistenceError> {
        self.clear_test_faults().await?;
        let s = self.schema();
        sqlx::query(&format!(
            "WITH m AS (DELETE FROM \"{s}\".channel_meta WHERE namespace = $1),
                  h AS (DELETE FROM \"{s}\".history WHERE namespace = $1)
             DELETE FROM \"{s}\".writer_fence WHERE namespace = $1"
        ))
        .bind(self.namespace_bytes())
        .execute(self.pool())
        .await
        .map_err(hook_error("delete_namespace"))?;
        Ok(())
    }

    /// Test hook: drops the whole schema, every namespace's data with it.
    #[doc(hidden)]
    pub async fn drop_schema(&self) -> Result<(), PersistenceError> {
        sqlx::raw_sql(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema()
        ))
        .execute(self.pool())
        .await
        .map_err(hook_error("drop_schema"))?;
        Ok(())
    }
}
