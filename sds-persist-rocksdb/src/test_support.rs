//! Hooks for test suites: fault injection and raw corruption. Hidden from the docs; not part
//! of the supported API.

use rocksdb::WriteBatch;
use sds_core::persistence::PersistenceError;

use crate::RocksDbPersistence;
use crate::db::{FAIL_ALWAYS, FAIL_OFF, FAIL_ONCE, write_error};
use crate::keys::encode_lamport;

impl RocksDbPersistence {
    /// Test hook: while set, every [`commit`](sds_core::persistence::Persistence::commit)
    /// that carries both a snapshot and a history batch stages the snapshot into its write
    /// batch and then fails with `Unavailable` before staging the history and before
    /// writing, so nothing of the operation reaches the database.
    /// Affects this handle and its clones, not siblings made with `with_namespace`.
    #[doc(hidden)]
    pub fn set_fail_commit_after_meta(&self, fail: bool) {
        self.arm_commit_failure(if fail { FAIL_ALWAYS } else { FAIL_OFF });
    }

    /// Test hook: like [`set_fail_commit_after_meta`](Self::set_fail_commit_after_meta), for
    /// the next such commit only (the in-memory backend's hook of the same name).
    #[doc(hidden)]
    pub fn abort_next_commit_after_meta(&self) {
        self.arm_commit_failure(FAIL_ONCE);
    }

    /// Test hook: writes `bytes` as the raw stored snapshot of `channel`.
    #[doc(hidden)]
    pub fn write_raw_meta(&self, channel: &str, bytes: &[u8]) -> Result<(), PersistenceError> {
        let keys = self.keys(channel);
        let mut batch = WriteBatch::default();
        batch.put(keys.meta(), bytes);
        self.db()
            .write_opt(batch, &self.write_options())
            .map_err(|err| write_error("raw meta write", channel, err))
    }

    /// Test hook: writes `bytes` as the raw history row of `message_id` at `lamport` (and
    /// indexes it), whatever the bytes decode to.
    #[doc(hidden)]
    pub fn write_raw_history_row(
        &self,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), PersistenceError> {
        let keys = self.keys(channel);
        let mut batch = WriteBatch::default();
        batch.put(keys.history_key(lamport, message_id.as_bytes()), bytes);
        batch.put(
            keys.index_key(message_id.as_bytes()),
            encode_lamport(lamport),
        );
        self.db()
            .write_opt(batch, &self.write_options())
            .map_err(|err| write_error("raw history write", channel, err))
    }
}
