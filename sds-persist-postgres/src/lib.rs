//! PostgreSQL persistence backend for Scalable Data Sync.
//!
//! Not implemented yet: this crate reserves its place in the workspace so the layout shows
//! the architecture. It will implement `sds_core::Persistence` on `sqlx`, committing each
//! protocol operation's meta snapshot and history batch in one transaction, with a namespace
//! column so many nodes can share one database.
