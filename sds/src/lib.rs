//! Scalable Data Sync (SDS) for Rust.
//!
//! SDS is an end-to-end reliability protocol for groups of peers on a lossy broadcast
//! network (Waku and the like): every participant eventually holds the same messages, in
//! the same causal order. This crate gathers the protocol ([`core`]), its codecs
//! ([`codec`]) and the persistence backends chosen by cargo feature, and opens a backend
//! from a URL with [`Backend::open`].
//!
//! | feature | URL | backend |
//! |---|---|---|
//! | (always) | `memory://` | in-memory, no durability |
//! | `rocksdb` (default) | `rocksdb:///path/to/dir` | embedded RocksDB |
//! | `postgres` (default) | `postgres://…` | PostgreSQL |
//! | `redis` (default) | `redis://…`, `redis+cluster://…` | Redis, standalone or Cluster |
//!
//! ```
//! use std::sync::Arc;
//! use sds::{Backend, Event, ReliabilityManager, UnwrapStatus};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Pick a backend by URL; with the default `rocksdb` feature, "rocksdb:///var/lib/app"
//! // gives durability with no server to install.
//! let backend = Backend::open("memory://").await?;
//!
//! let (alice, _alice_events) = ReliabilityManager::builder("alice")
//!     .persistence(backend.namespace("alice"))
//!     .build()?;
//! let (bob, mut bob_events) = ReliabilityManager::builder("bob")
//!     .persistence(backend.namespace("bob"))
//!     .build()?;
//!
//! // Alice wraps content; the bytes go out on the network of your choice.
//! let bytes = alice.wrap_outgoing("general", "msg-1", b"hello".to_vec()).await?;
//!
//! // Bob takes part in the channel (a manager drops messages for channels it has not
//! // joined), unwraps what he receives, and deliveries arrive as events, in causal order.
//! bob.join_channel("general").await?;
//! let outcome = bob.unwrap_received(&bytes).await?;
//! assert_eq!(outcome.status, UnwrapStatus::Delivered);
//! match bob_events.recv().await {
//!     Some(Event::MessageReady { content, .. }) => assert_eq!(content, b"hello"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```

// The README's examples are compiled and run as doctests, so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod backend;
pub mod bench;
pub mod conformance_runner;
pub mod inspect;
pub mod simulation;

pub use backend::{Backend, BackendError};
pub use sds_codec as codec;
pub use sds_core as core;
pub use sds_core::{
    Event, Events, ManagerBuilder, Persistence, PersistenceError, ReliabilityConfig,
    ReliabilityManager, SdsError, UnwrapStatus, Unwrapped,
};
/// The conformance suite every backend must pass.
pub use sds_persist_conformance as conformance;
#[cfg(feature = "rocksdb")]
/// The embedded RocksDB backend.
pub use sds_persist_rocksdb as rocksdb;
