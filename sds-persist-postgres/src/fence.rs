//! The writer fence: each namespace's epoch is a row of `writer_fence`; a claim raises it in
//! one statement, and every write of a handle that claimed checks it inside its own
//! statement (see the `sql` module), so no write of a superseded handle lands once the
//! newer claim returned.

use sds_core::persistence::{PersistenceError, WriterEpoch};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PostgresPersistence;

/// The claim of a handle that never claimed (epochs start at 1).
pub(crate) const UNCLAIMED: u64 = 0;

/// Raises the namespace's epoch, durably, and makes it this handle's (and its clones').
pub(crate) async fn claim(this: &PostgresPersistence) -> Result<WriterEpoch, PersistenceError> {
    let what = format!("claim of namespace {:?}", this.namespace());
    let epoch: i64 = this
        .attempt(&what, || {
            sqlx::query_scalar(&this.statements().claim)
                .bind(this.namespace_bytes())
                .fetch_one(this.pool())
        })
        .await?;
    // A claim lost in a server crash would let the stale writer write again.
    this.flush_wal(&what).await?;
    let epoch = u64::try_from(epoch).map(WriterEpoch::new).map_err(|_| {
        PersistenceError::corrupt(format!("{what}: the stored epoch {epoch} is negative"))
    })?;
    this.set_claimed(epoch);
    tracing::debug!(
        namespace = this.namespace(),
        epoch = epoch.get(),
        "namespace claimed"
    );
    Ok(epoch)
}

/// Reads a write statement's outcome row (`ok`, `epoch`): `Fenced` when the write was
/// refused because a newer claim superseded this handle's.
pub(crate) fn check_outcome(
    this: &PostgresPersistence,
    channel: &str,
    row: &PgRow,
) -> Result<(), PersistenceError> {
    let decode = |err: sqlx::Error| {
        PersistenceError::other_from(
            format!("the outcome of a write to channel {channel:?} is unreadable"),
            err,
        )
    };
    let ok: Option<bool> = row.try_get("ok").map_err(decode)?;
    if ok == Some(true) {
        return Ok(());
    }
    let current: Option<i64> = row.try_get("epoch").map_err(decode)?;
    let held = this.held_epoch().unwrap_or_default();
    let to_epoch = |value: i64| WriterEpoch::new(u64::try_from(value).unwrap_or_default());
    tracing::debug!(
        namespace = this.namespace(),
        channel,
        held,
        current,
        "write of a fenced writer refused"
    );
    match current {
        Some(current) => Err(PersistenceError::fenced(to_epoch(held), to_epoch(current))),
        // The claimed epoch's row is gone: someone deleted the namespace's fence. Refuse,
        // since the claim can no longer be checked.
        None => Err(PersistenceError::fenced(
            to_epoch(held),
            WriterEpoch::new(0),
        )),
    }
}
