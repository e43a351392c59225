//! Writes to one channel take effect in the order they were issued, also when the caller
//! abandons one (the manager's `commit_timeout_ms` drops the future).
//!
//! A script sent to Redis runs whether or not anyone still waits for its answer. Each
//! write therefore runs on a task of its own that holds the channel's turn from before the
//! script is sent until its answer (or its deadline) came: a dropped caller leaves the task
//! running, the retry waits for it, and a write abandoned while still waiting for its turn
//! is never sent. Past the deadline the script may still be queued on the connection; a
//! later write on the same connection runs after it (Redis serves one connection's
//! commands in order, and a timeout does not replace the connection). The connection is
//! replaced only once it broke; the one case left open is a script stuck in a broken
//! connection's server-side buffer for longer than the deadline, then run after the retry
//! sent on the new connection.

pub(crate) use sds_core::persistence::write_order::ChannelWriteOrder as WriteOrder;
