//! What a backend declares decides which promise-specific cases run: against a backend that
//! declares nothing beyond the operations (the trait's defaults: a non-atomic commit, no
//! listing), the atomicity and listing cases are reported as not run, naming the missing
//! declaration, and every other case of their groups still runs and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use sds_persist_conformance::sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};
use sds_persist_conformance::sds_core::persistence::memory::{MemoryPersistence, MemoryStore};
use sds_persist_conformance::{
    Capabilities, Capability, CaseStatus, Harness, HarnessError, Persistence, PersistenceError,
    run_selected,
};

/// The in-memory backend behind only the five operations: every other method is the
/// trait's default (commit not atomic, no listing, capabilities promise nothing).
#[derive(Debug, Clone)]
struct Plain(MemoryPersistence);

#[async_trait]
impl Persistence for Plain {
    async fn save_channel_meta(
        &self,
        ch: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.0.save_channel_meta(ch, meta).await
    }

    async fn update_history(&self, ch: &str, up: &HistoryUpdate) -> Result<(), PersistenceError> {
        self.0.update_history(ch, up).await
    }

    async fn load_channel(&self, ch: &str) -> Result<ChannelData, PersistenceError> {
        self.0.load_channel(ch).await
    }

    async fn drop_channel(&self, ch: &str) -> Result<(), PersistenceError> {
        self.0.drop_channel(ch).await
    }

    async fn set_retrieval_hint(
        &self,
        ch: &str,
        id: &str,
        h: &[u8],
    ) -> Result<(), PersistenceError> {
        self.0.set_retrieval_hint(ch, id, h).await
    }
}

#[derive(Debug, Default)]
struct PlainHarness {
    store: MemoryStore,
    next: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl Harness for PlainHarness {
    type Backend = Plain;

    fn name(&self) -> String {
        "plain".to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
            .without(Capability::RawWrites, "no stored bytes")
            .without(Capability::Unreachable, "no server")
    }

    async fn open(&self) -> Result<Plain, HarnessError> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Plain(self.store.namespace(format!("plain-{n}"))))
    }

    async fn open_sibling(&self, _of: &Plain) -> Result<Plain, HarnessError> {
        self.open().await
    }

    async fn reopen(&self, of: &Plain) -> Result<Plain, HarnessError> {
        Ok(Plain(self.store.namespace(of.0.namespace())))
    }

    async fn abort_next_commit_after_meta(&self, backend: &Plain) -> Result<(), HarnessError> {
        backend.0.abort_next_commit_after_meta();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_promises_are_not_run_by_name_and_the_rest_runs() {
    let report = run_selected(&PlainHarness::default(), |case| {
        ["atomicity", "lifecycle", "contract"].contains(&case.group)
    })
    .await;
    println!("{report}");
    let expected_not_run = [
        ("failed_commit_leaves_previous_state_whole", "atomic_commit"),
        (
            "concurrent_commits_to_one_channel_never_tear",
            "atomic_commit",
        ),
        (
            "list_channels_lists_exactly_the_stored_channels",
            "list_channels",
        ),
        ("dropped_channel_is_no_longer_listed", "list_channels"),
        (
            "shutdown_writes_everything_and_reopen_finds_every_channel",
            "list_channels",
        ),
    ];
    for (name, missing) in expected_not_run {
        match &report.case(name).expect(name).status {
            CaseStatus::NotRun { capability, reason } => {
                assert_eq!(capability, missing, "{name}");
                assert!(reason.contains(missing), "{name}: {reason}");
            }
            other => panic!("{name}: expected not run for {missing}, got {other:?}"),
        }
    }
    assert_eq!(report.not_run(), expected_not_run.len(), "{report}");
    assert_eq!(report.failed(), 0, "{report}");
    assert_eq!(
        report.passed(),
        report.cases.len() - expected_not_run.len(),
        "{report}"
    );
    // The others of these groups ran against the plain backend and passed.
    assert_eq!(report.cases.len(), 4 + 5 + 5, "{report}");
}
