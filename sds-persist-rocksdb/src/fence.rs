//! The writer fence: each namespace's epoch lives in a key of its own (`'F' lp(ns)`), and
//! every write of a handle that claimed checks it before its write batch lands.
//!
//! A write batch cannot be conditional, so the check and the write are made atomic by the
//! process instead: writes hold the database's claim lock shared from the epoch read to the
//! end of their write, and a claim holds it exclusively from its read to its write. That is
//! enough because RocksDB lets a single process open the database for writing (its `LOCK`
//! file): every writer goes through the same lock.
//!
//! Everything here blocks and runs on the blocking thread pool.

use std::sync::atomic::Ordering;
use std::sync::{PoisonError, RwLock};

use rocksdb::{WriteBatch, WriteOptions};
use sds_core::persistence::{PersistenceError, WriterEpoch};

use crate::RocksDbPersistence;
use crate::db::{durable_write_options, write_error};
use crate::error::storage_error;
use crate::keys::fence_key;

/// The claim of a handle that never claimed (epochs start at 1).
pub(crate) const UNCLAIMED: u64 = 0;

/// Orders claims against the writes of claimed handles, for one open database.
#[derive(Debug, Default)]
pub(crate) struct ClaimLock(RwLock<()>);

/// Raises the namespace's epoch, durably, and makes it this handle's (and its clones').
pub(crate) fn claim(this: &RocksDbPersistence) -> Result<WriterEpoch, PersistenceError> {
    // The lock guards no data, so a poisoned one is as good as a healthy one.
    let _no_write_in_between = this
        .claim_lock()
        .0
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    let current = stored_epoch(this)?;
    let next = WriterEpoch::new(current)
        .next()
        .ok_or_else(|| PersistenceError::other("writer epoch exhausted"))?;
    // Always fsynced: a claim lost in a crash would let the stale writer write again.
    this.db()
        .put_opt(
            fence_key(this.namespace().as_bytes()),
            next.get().to_be_bytes(),
            &durable_write_options(true),
        )
        .map_err(|err| storage_error(&format!("claim of namespace {:?}", this.namespace()), err))?;
    this.claimed_epoch().store(next.get(), Ordering::SeqCst);
    tracing::debug!(
        namespace = this.namespace(),
        epoch = next.get(),
        "namespace claimed"
    );
    Ok(next)
}

/// Writes `batch` for `channel` unless a newer claim superseded this handle's, in which
/// case nothing is written and the error is [`PersistenceError::Fenced`].
pub(crate) fn write_batch(
    this: &RocksDbPersistence,
    channel: &str,
    what: &str,
    batch: WriteBatch,
    options: &WriteOptions,
) -> Result<(), PersistenceError> {
    let held = this.claimed_epoch().load(Ordering::SeqCst);
    let _no_claim_in_between = (held != UNCLAIMED).then(|| {
        this.claim_lock()
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    });
    if held != UNCLAIMED {
        let current = stored_epoch(this)?;
        if current != held {
            tracing::debug!(
                namespace = this.namespace(),
                channel,
                held,
                current,
                "write of a fenced writer refused"
            );
            return Err(PersistenceError::fenced(
                WriterEpoch::new(held),
                WriterEpoch::new(current),
            ));
        }
    }
    this.db()
        .write_opt(batch, options)
        .map_err(|err| write_error(what, channel, err))
}

/// The namespace's epoch, [`UNCLAIMED`] if it was never claimed.
fn stored_epoch(this: &RocksDbPersistence) -> Result<u64, PersistenceError> {
    let namespace = this.namespace();
    let Some(bytes) = this
        .db()
        .get(fence_key(namespace.as_bytes()))
        .map_err(|err| storage_error(&format!("read the epoch of namespace {namespace:?}"), err))?
    else {
        return Ok(UNCLAIMED);
    };
    <[u8; 8]>::try_from(bytes.as_slice())
        .map(u64::from_be_bytes)
        .map_err(|_| {
            PersistenceError::corrupt(format!(
                "the writer epoch of namespace {namespace:?} has {} bytes, expected 8",
                bytes.len()
            ))
        })
}
