//! Writes to one channel take effect in the order they were issued, also when the caller
//! abandons one (the manager's `commit_timeout_ms` drops the future).
//!
//! A RocksDB call runs on the blocking thread pool and cannot be stopped once started: a
//! dropped future leaves it running, and without care the caller's retry, issued next,
//! could land first and then be overwritten by the stale write. Every write therefore holds
//! its channel's lock from before it is handed to the pool until it has finished, and the
//! lock is fair (first come, first served): a retry waits for the abandoned write, and a
//! write abandoned while still waiting for the lock never starts.

pub(crate) use sds_core::persistence::write_order::ChannelWriteOrder as WriteOrder;
