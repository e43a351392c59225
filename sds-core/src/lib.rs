//! The Scalable Data Sync protocol: per-channel state machines, the async manager that
//! drives them, and the [`Persistence`] contract backends implement.
//!
//! A [`ReliabilityManager`] wraps outgoing content ([`ReliabilityManager::wrap_outgoing`]),
//! processes received bytes ([`ReliabilityManager::unwrap_received`]) and reports what
//! happened as a stream of [`Event`]s. Each channel is a sans-I/O state machine driven with
//! an explicit time from an injectable [`Clock`]; the manager serializes operations per
//! channel and ends each one with a single [`Persistence::commit`].

pub mod bloom;
mod channel;
pub mod clock;
pub mod config;
mod error;
mod event;
mod hints;
mod manager;
pub mod pending_history;
pub mod persistence;
pub mod repair_timing;

pub use channel::{UnwrapStatus, Unwrapped};
pub use clock::{Clock, ManualClock, SystemClock, UnixMillis};
pub use config::{ConfigError, ReliabilityConfig, ReliabilityConfigBuilder};
pub use error::SdsError;
pub use event::{DropReason, Event, Events, Limit};
pub use hints::RetrievalHintProvider;
pub use manager::{
    ChannelState, MaintenanceHandle, ManagerBuilder, ReliabilityManager, ReopenedChannels,
};
pub use persistence::{Persistence, PersistenceError, PersistenceErrorKind};
pub use sds_codec as codec;
