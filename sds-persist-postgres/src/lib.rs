//! Scalable Data Sync persistence on PostgreSQL.
//!
//! [`PostgresPersistence`] implements [`sds_core::persistence::Persistence`] on `sqlx`
//! (Tokio runtime; TLS with the `tls` feature): every write is **one SQL statement**, so
//! one transaction and one round trip, and the op-end
//! [`commit`](sds_core::persistence::Persistence::commit) writes a protocol operation's
//! snapshot and history batch all or nothing.
//!
//! - **Schema**: the embedded migrations create a configurable schema (default `sds`;
//!   [`PostgresBuilder::schema`], or `?sds_schema=` in the URL) and its tables when
//!   connecting; running them again, or from several processes at once, is harmless. The
//!   schema name is validated (lowercase letters, digits, `_`) and is the only identifier
//!   ever put into SQL text; every value is a bound parameter.
//! - **Tables**, keyed by (namespace, channel): `channel_meta` (one snapshot per channel),
//!   `history` (one row per message: message id, Lamport timestamp, the encoded message,
//!   its retrieval hint) with an index on (namespace, channel, lamport, message id) that
//!   serves the ordered load, and `writer_fence` (each namespace's epoch). Snapshots and
//!   history rows hold the storage codec's enveloped bytes, as every backend stores them
//!   (`sds_codec::storage::encode_channel_meta`, `encode_logged_message`); a history row's
//!   message is stored without its hint, which has its own column so a hint is set or kept
//!   without rewriting the message.
//! - **Ids and Lamport timestamps**: namespaces, channel ids and message ids are `bytea`:
//!   byte-exact (`text` refuses NUL) and ordered by their UTF-8 bytes whatever the
//!   database's collation. Lamport timestamps are `bigint` holding the `u64` with its top
//!   bit flipped ([`order::lamport_to_i64`](sds_core::persistence::order::lamport_to_i64)):
//!   the full `u64` range in 8 bytes with the column's order equal to the `u64` order, so
//!   the index compares fixed-width integers; `numeric(20)` would also keep the range but is
//!   variable-length and slower to compare, for no gain.
//! - **Namespaces**: one schema serves many nodes; each handle serves one namespace and
//!   never sees another's channels. Share one pool with
//!   [`PostgresPersistence::with_namespace`].
//! - **Writer fence**: [`claim_writer`](sds_core::persistence::Persistence::claim_writer)
//!   raises the namespace's epoch in one statement; every write of a handle that claimed
//!   reads the epoch `FOR SHARE` inside its own statement and applies nothing, failing as
//!   `Fenced`, once a newer claim exists.
//! - **Ordering of abandoned writes**: writes to one channel run in the order they were
//!   issued, each in a task of its own, so a write whose caller gave up (the manager's
//!   `commit_timeout_ms`) finishes or times out on the server before the retry runs, and a
//!   stale snapshot never lands after a newer one.
//! - **Timeouts**: pool acquisition (connecting included), a server-side
//!   `statement_timeout` on every session and a client-side deadline on every operation:
//!   an unreachable or stuck server yields `Unavailable` within a bounded time, never a
//!   hang (see [`PostgresBuilder#timeouts`]). A connection that broke (server restart,
//!   `pg_terminate_backend`) is retried once on a fresh one.
//! - **Capabilities**: atomic commit, persistence, channel listing, fencing; durable on
//!   acknowledge when sessions run with `synchronous_commit = on` (the default).
//! - **Errors**: building and connecting return a typed [`PostgresError`]; operations
//!   return [`PersistenceError`](sds_core::persistence::PersistenceError): `Unavailable`
//!   for connection failures, timeouts and transient server errors, `Corrupt` for stored
//!   bytes that do not decode, `UnsupportedSchema` for snapshots of a newer build,
//!   `Fenced` for a superseded writer, `Other` for the rest.
//!
//! # Features
//!
//! - `tls`: TLS to the server (rustls, ring, webpki roots), chosen with the URL's `sslmode`.
//! - `conformance`: the `conformance` module (`PostgresHarness`, the harness of the shared
//!   suite) and the helpers this crate's tests use.
//! - `testcontainers`: tests without `SDS_TEST_POSTGRES_URL` start a PostgreSQL container
//!   (needs a Docker engine). Off by default.
//!
//! # Round trips per operation
//!
//! Once a statement is prepared on a pooled connection (the first use of each statement
//! on each connection adds one round trip for the driver's Parse/Describe):
//!
//! | operation | statements | round trips |
//! |---|---|---|
//! | `commit`, `save_channel_meta`, `update_history` | 1 (CTEs over array parameters) | 1 |
//! | `load_channel` (snapshot and history) | 1 | 1 |
//! | `drop_channel` | 1 | 1 (+1 with `synchronous_commit` off: the durable flush) |
//! | `set_retrieval_hint` | 1 | 1 |
//! | `claim_writer` | 1 | 1 (+1 with `synchronous_commit` off) |
//! | `list_channels` | 1 | 1 |
//! | connect (migrations) | a few, on a connection of its own | once per pool |
//! | `close` | 0 | 0 (1 with `synchronous_commit` off) |
//!
//! The pool also pings a connection before handing it out when it was idle (sqlx's
//! `test_before_acquire`), one more round trip after idle periods.
//!
//! `sds bench --backend postgres://…` measures these operations on your server next to a
//! single-statement upsert and a plain range read of the same bytes (see `BENCHMARKS.md`):
//! on a local PostgreSQL 15 over loopback, with `synchronous_commit = on`, a commit of one
//! delivery took 620 µs against 557 µs for the upsert (1.11x); both are dominated by the
//! WAL flush.
//!
//! ```no_run
//! use sds_core::persistence::Persistence;
//! use sds_persist_postgres::PostgresPersistence;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let node_a = PostgresPersistence::builder("postgres://sds@db.internal/app")
//!     .schema("sds")
//!     .namespace("node-a")
//!     .max_connections(8)
//!     .connect()
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
#[cfg(feature = "testcontainers")]
pub mod container;
mod db;
mod error;
mod fence;
mod inventory;
mod load;
mod migrate;
mod sql;
mod test_support;
mod write_order;

pub use config::{DEFAULT_NAMESPACE, DEFAULT_SCHEMA, PostgresBuilder, SCHEMA_URL_PARAMETER};
pub use db::PostgresPersistence;
pub use error::PostgresError;
