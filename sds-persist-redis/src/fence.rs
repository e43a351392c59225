//! The writer fence (standalone): the namespace's epoch is an integer key, a claim is one
//! `INCR` of it, and every write script of a handle that claimed compares it with the
//! epoch the handle holds before writing anything (see `scripts`).
//!
//! `INCR` is atomic, so two concurrent claims never get the same epoch; the key is durable
//! as the server's persistence setting makes every write (see the builder's durability
//! table): with no persistence a server restart forgets the epoch together with the data
//! it fences, and claims start again at 1.

use std::sync::atomic::Ordering;

use redis::AsyncCommands;
use sds_core::persistence::{PersistenceError, WriterEpoch};

use crate::RedisPersistence;

/// Raises the namespace's epoch and makes it this handle's (and its clones').
pub(crate) async fn claim(this: &RedisPersistence) -> Result<WriterEpoch, PersistenceError> {
    let key = this.namespace_keys().epoch.clone();
    let context = format!("claim of namespace {:?}", this.namespace());
    let epoch: i64 = this
        .connector()
        .run(&context, |mut conn| async move { conn.incr(key, 1).await })
        .await?;
    let epoch = u64::try_from(epoch)
        .ok()
        .filter(|epoch| *epoch > 0)
        .ok_or_else(|| {
            PersistenceError::corrupt(format!(
                "the writer epoch of namespace {:?} is {epoch} after a claim",
                this.namespace()
            ))
        })?;
    this.claimed_epoch().store(epoch, Ordering::SeqCst);
    tracing::debug!(namespace = this.namespace(), epoch, "namespace claimed");
    Ok(WriterEpoch::new(epoch))
}
