//! Writes to one channel take effect in the order they were issued, also when the caller
//! abandons one (the manager's `commit_timeout_ms` drops the future).
//!
//! Dropping the future of a statement already sent does not stop the server: it may be
//! waiting for a row lock and commit later, after the caller's retry, overwriting the newer
//! snapshot with the stale one. So a write is not run in the caller's future: it takes its
//! channel's turn in the caller (a fair lock, first come first served), then runs in a task
//! of its own that holds the turn until the server answered or the operation's deadline
//! passed (by then the server-side `statement_timeout` has ended the statement). A retry
//! waits for it; a write whose caller gave up before its turn came is never sent.

pub(crate) use sds_core::persistence::write_order::ChannelWriteOrder as WriteOrder;
