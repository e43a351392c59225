//! Scalable Data Sync persistence on Redis, standalone or Cluster.
//!
//! [`RedisPersistence`] implements [`sds_core::persistence::Persistence`] on the `redis`
//! crate (Tokio): one auto-reconnecting multiplexed connection to a server
//! (`redis://host:port[/db]`), or a Cluster connection
//! (`redis+cluster://host:port[,host:port…]`, or [`RedisPersistence::cluster_builder`]).
//!
//! - **Layout**: each channel is four keys (snapshot, history rows, order index, hints)
//!   sharing one hash tag, a hash of (namespace, channel), so in Cluster all of a channel
//!   lives on one slot whatever bytes the ids hold (`{`, `}`, `:`, NUL…). History order is a
//!   sorted set with equal scores and members `lamport (u64 BE) ++ id`, read with
//!   `ZRANGE … BYLEX`: exact (lamport, id-bytes) order over the whole `u64` range. The
//!   snapshot and the rows are the storage codec's blobs (`sds_codec::storage`, with their
//!   length and CRC32C envelope), as the RocksDB backend stores them; a row's retrieval
//!   hint is kept in the hints hash instead of inside the row, so a script can keep or
//!   replace it without decoding. The `keys` module's source documents every key.
//! - **Atomic writes, one round trip each**: `commit`, `save_channel_meta`,
//!   `update_history`, `set_retrieval_hint` and `drop_channel` are each one Lua script
//!   (`EVALSHA`, falling back to loading the script once after a server restart). A script
//!   checks the fence and validates its arguments and every stored value it reads before
//!   its first write, since Redis does not roll back a script that fails half-way.
//! - **Dropping a large channel** is four `UNLINK`s in one script: constant work on the
//!   server's main thread, however many entries the channel has (Redis frees values of more
//!   than 64 elements on a background thread).
//! - **Round trips per operation** (counted by the server with `MONITOR`, see
//!   `examples/round_trips.rs`): commit, snapshot save, history update, hint and drop 1
//!   each, fence check included; load 1 (a read-only script reading the four keys at one
//!   instant); claim 1 (`INCR`); listing 1. In Cluster with a slot per channel, a handle's
//!   first write to a channel costs one more (registering it in the channel set), a drop
//!   one more (unregistering it), and listing one more per listed channel (checking it is
//!   still stored). The first call after a server restart also loads the script once.
//!   Measured on one machine against a local server (dev build): a commit of a 1.9 KB
//!   snapshot and one history row takes about twice a `SET` of the same bytes (median
//!   0.36 ms against 0.18 ms), the script's work and the task hand-off included.
//! - **Standalone vs Cluster**: on one server the scripts also take the namespace's epoch
//!   and channel set, so the fence check and the channel listing are atomic with every
//!   write, and the backend declares fencing. In Cluster it depends on the
//!   [`SlotScope`]. With [`SlotScope::Namespace`] (the default) all of a namespace shares
//!   one slot and everything is as on one server (a namespace, one node's data, then lives
//!   on one primary). With [`SlotScope::Channel`] (opt-in, `?sds_slot=channel`) each
//!   channel has a slot of its own, and the namespace-wide keys live on another slot, which a script may not touch:
//!   each channel's own operations stay atomic, the channel set is maintained beside them
//!   (added before a handle's first write to a channel, removed after a drop; the listing
//!   checks each member still exists, so it never lists a channel that is not stored and
//!   never misses one written through a handle), and there is no writer fence:
//!   `claim_writer` returns `None` and the capabilities say so.
//! - **Timeouts**: a connect timeout and a response timeout (builder); every operation
//!   fails as `Unavailable` within their sum when the server is unreachable or silent, and
//!   the next operation reconnects.
//! - **Durability**: whatever the server's persistence makes of a write; see the
//!   [durability table](RedisBuilder#durability) and what the capabilities declare for
//!   each setting.
//! - **Abandoned calls**: a write runs on a task of its own holding its channel's turn
//!   until its answer (or deadline) comes, so a write whose caller gave up never lands
//!   after the retry that follows it.
//! - **Errors**: connection loss, timeouts, a loading server, a Cluster that is down or
//!   failing over are `Unavailable`; bytes that do not decode (or rows filed under another
//!   id or timestamp) are `Corrupt`; unknown snapshot versions `UnsupportedSchema`; a
//!   superseded writer `Fenced`.
//!
//! ```no_run
//! use sds_core::persistence::Persistence;
//! use sds_persist_redis::RedisPersistence;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let node_a = RedisPersistence::builder("redis://127.0.0.1:6379")?
//!     .namespace("node-a")
//!     .connect()
//!     .await?;
//! let node_b = node_a.with_namespace("node-b");
//! let data = node_b.load_channel("general").await?;
//! assert!(data.history.is_empty());
//! # Ok(())
//! # }
//! ```

mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod connection;
mod db;
mod error;
mod fence;
mod keys;
mod load;
mod namespace;
mod scripts;
mod test_support;
mod write_order;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_NAMESPACE, DEFAULT_RESPONSE_TIMEOUT, RedisBuilder, SlotScope,
};
pub use db::RedisPersistence;
pub use error::RedisBackendError;

/// The keys of one channel under `scope`, for tests that check where they hash
/// (`CLUSTER KEYSLOT`). Hidden from the docs; not part of the supported API.
#[doc(hidden)]
pub fn channel_keys_for_tests(scope: SlotScope, namespace: &str, channel: &str) -> Vec<Vec<u8>> {
    keys::ChannelKeys::in_scope(
        keys::DEFAULT_KEY_PREFIX.as_bytes(),
        scope,
        namespace.as_bytes(),
        channel.as_bytes(),
    )
    .all()
    .iter()
    .map(|key| key.to_vec())
    .collect()
}
