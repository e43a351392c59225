//! Redis persistence backend for Scalable Data Sync.
//!
//! Not implemented yet: this crate reserves its place in the workspace so the layout shows
//! the architecture. It will implement `sds_core::Persistence` on the `redis` crate,
//! committing each protocol operation's meta snapshot and history batch atomically
//! (`MULTI`/`EXEC` or a Lua script), with key prefixes as namespaces.
