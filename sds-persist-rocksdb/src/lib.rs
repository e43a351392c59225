//! Scalable Data Sync persistence on an embedded RocksDB database.
//!
//! [`RocksDbPersistence`] implements [`sds_core::persistence::Persistence`]: the five
//! operations of the snapshot contract and an atomic op-end
//! [`commit`](sds_core::persistence::Persistence::commit) that writes a protocol operation's
//! snapshot and history changes as one RocksDB write batch, so both land or neither does.
//!
//! - **Namespaces**: one database directory serves many nodes; each handle serves one
//!   namespace and never sees another's channels. Open the directory once per process and
//!   derive siblings with [`RocksDbPersistence::with_namespace`].
//! - **Key layout**: channel history is stored one row per message, keyed so a prefix scan
//!   returns it in (lamport, message id) order, with an id index so evictions and hints never
//!   scan; length-prefixed components make collisions between arbitrary ids impossible. The
//!   layout is described in the `keys` module's source and versioned in the database.
//! - **Durability**: the write-ahead log is always on; fsync per commit is
//!   [configurable](RocksDbBuilder#durability) and off by default, for reasons given there.
//!   [`close`](sds_core::persistence::Persistence::close) fsyncs the log and flushes the
//!   memtables, so a clean shutdown loses nothing either way.
//! - **Capabilities**: declares atomic commit, persistence, channel listing
//!   ([`list_channels`](sds_core::persistence::Persistence::list_channels): one seek per
//!   stored channel) and durable-on-acknowledge exactly when `sync_writes` is on.
//! - **Blocking**: RocksDB calls block, so every operation runs on Tokio's blocking thread
//!   pool, never on an executor worker (outside Tokio they run inline on the caller). Writes
//!   to one channel take effect in the order they were issued, also when a caller gave up
//!   on one (a timeout cannot stop a running RocksDB call): the next write waits for it.
//! - **Errors**: opening returns a typed [`RocksDbError`] (locked, not a directory, permission
//!   denied, not a database, …); operations return
//!   [`PersistenceError`](sds_core::persistence::PersistenceError) (`Unavailable` for I/O,
//!   `Corrupt` for stored values that are truncated, fail their checksum or do not decode,
//!   `UnsupportedSchema` for unknown snapshot versions).
//!
//! ```no_run
//! use sds_core::persistence::Persistence;
//! use sds_persist_rocksdb::RocksDbPersistence;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let node_a = RocksDbPersistence::builder("/var/lib/my-app/sds")
//!     .namespace("node-a")
//!     .sync_writes(false)
//!     .open_async()
//!     .await?;
//! let node_b = node_a.with_namespace("node-b");
//! let data = node_b.load_channel("general").await?;
//! assert!(data.history.is_empty());
//! # Ok(())
//! # }
//! ```

mod commit;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod db;
mod error;
mod fence;
mod inventory;
mod keys;
mod load;
mod namespace;
mod read_only;
mod test_support;
mod write_order;

pub use config::{DEFAULT_NAMESPACE, RocksDbBuilder};
pub use db::RocksDbPersistence;
pub use error::RocksDbError;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lifecycle;
