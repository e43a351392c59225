//! One conformance suite for every SDS persistence backend.
//!
//! A backend's test code implements [`Harness`] (fresh isolated backends, plus optional
//! [`Capability`]s such as raw corruption or a mid-commit abort) and then either
//!
//! - expands one test per case with [`conformance_tests!`], so `cargo test -p my-backend`
//!   lists every case by name:
//!
//!   ```
//!   // tests/conformance.rs of the backend crate (here: the in-memory backend)
//!   sds_persist_conformance::conformance_tests!(sds_persist_conformance::MemoryHarness::new());
//!   # fn main() {}
//!   ```
//!
//! - or runs everything at once with [`run_suite`] and inspects the [`SuiteReport`]
//!   (case, pass / fail / not run, error, duration), which is what the `sds-conformance`
//!   command-line runner prints.
//!
//! The cases live in one table ([`CASES`]); the macro and [`run_suite`] are both derived
//! from it, so a backend cannot forget a case. A harness declares every [`Capability`]
//! offered or absent (with a reason); a case that needs one declared absent is reported as
//! "not run", naming the capability and the reason, never as passed, and every other case
//! runs (see [`conformance_tests!`] for how that shows in `cargo test`).
//!
//! The backend declares what it promises too ([`Persistence::capabilities`]): the
//! all-or-nothing cases of `atomicity` run when it declares `atomic_commit`, the listing
//! cases of `lifecycle` when it declares `list_channels`, the `fence` cases when it declares
//! `fencing`; against a backend that does not, they are "not run", naming the declaration.
//! The rules every backend keeps whatever it declares (id and Lamport order, an id in both
//! lists of an update, re-appends and hints, idempotent replays, split history batches) are
//! the `contract` group, and `sds_core::persistence` states them.
//!
//! The in-memory backend of `sds-core` runs through [`MemoryHarness`].

mod case;
pub mod cases;
mod catalog;
mod harness;
mod macros;
mod memory;
mod report;
mod suite;

pub use case::{CaseError, CaseResult, Context, Ctx, Missing, brief, chain, ensure, ensure_eq};
pub use catalog::{CASES, CaseFn, CaseInfo, case_info};
pub use harness::{Capabilities, Capability, Harness, HarnessError};
pub use memory::MemoryHarness;
pub use report::{CaseReport, CaseStatus, SuiteReport, format_duration};
pub use suite::{run_case, run_selected, run_suite};

// What backend test code usually needs next to this crate: the attribute for implementing
// [`Harness`], the crates the cases are written against, and the contract's names.
pub use async_trait::async_trait;
pub use sds_codec;
pub use sds_core;
pub use sds_core::persistence::{Persistence, PersistenceError, PersistenceErrorKind};

/// Used by the code [`conformance_tests!`] expands to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::suite::{run_test, run_test_notice};
}
