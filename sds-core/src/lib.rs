//! The Scalable Data Sync protocol: per-channel state machines, the async manager that
//! drives them, and the [`Persistence`] contract backends implement.

pub mod bloom;
pub mod clock;
pub mod persistence;
pub mod repair_timing;

pub use clock::{Clock, ManualClock, SystemClock, UnixMillis};
pub use persistence::{Persistence, PersistenceError, PersistenceErrorKind};
pub use sds_codec as codec;
