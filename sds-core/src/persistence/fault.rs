//! A fault-injecting wrapper around any backend, for tests of the failure policy.
//!
//! [`FaultInjector`] forwards every call to the backend it wraps, counts the calls per
//! [`Operation`], and fails the operations a test armed with
//! [`PersistenceError::Unavailable`] ("… injected …") without reaching the backend.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};

use super::{Persistence, PersistenceError};

/// One operation of the [`Persistence`] contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`Persistence::save_channel_meta`].
    SaveChannelMeta,
    /// [`Persistence::update_history`].
    UpdateHistory,
    /// [`Persistence::load_channel`].
    LoadChannel,
    /// [`Persistence::drop_channel`].
    DropChannel,
    /// [`Persistence::set_retrieval_hint`].
    SetRetrievalHint,
    /// [`Persistence::commit`].
    Commit,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 6] = [
        Operation::SaveChannelMeta,
        Operation::UpdateHistory,
        Operation::LoadChannel,
        Operation::DropChannel,
        Operation::SetRetrievalHint,
        Operation::Commit,
    ];

    /// The operation's method name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::SaveChannelMeta => "save_channel_meta",
            Operation::UpdateHistory => "update_history",
            Operation::LoadChannel => "load_channel",
            Operation::DropChannel => "drop_channel",
            Operation::SetRetrievalHint => "set_retrieval_hint",
            Operation::Commit => "commit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many upcoming calls of an operation fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Fault {
    #[default]
    None,
    Times(u32),
    Always,
}

impl Fault {
    /// Consumes one failure if armed; true when the call must fail.
    fn take(&mut self) -> bool {
        match *self {
            Fault::None | Fault::Times(0) => false,
            Fault::Times(n) => {
                *self = if n == 1 {
                    Fault::None
                } else {
                    Fault::Times(n - 1)
                };
                true
            }
            Fault::Always => true,
        }
    }
}

/// Wraps a backend and fails chosen operations on demand; every method takes `&self`, so
/// a test can arm and clear faults while a manager holds the wrapper.
///
/// [`Persistence::commit`] through the wrapper: a call counts as one `Commit` (the parts it
/// forwards are not counted again). If a `Commit` fault is armed it fails and nothing is
/// applied; else if it carries a snapshot and a `SaveChannelMeta` fault is armed it fails
/// and nothing is applied; else if it carries a non-empty history batch and an
/// `UpdateHistory` fault is armed, the snapshot is saved through the inner backend's
/// `save_channel_meta` (as a non-atomic backend would) and then it fails; otherwise it is
/// forwarded to the inner backend's `commit`.
#[derive(Debug)]
pub struct FaultInjector<P> {
    inner: P,
    faults: Mutex<[Fault; Operation::ALL.len()]>,
    calls: [AtomicU64; Operation::ALL.len()],
}

impl<P: Default> Default for FaultInjector<P> {
    fn default() -> Self {
        FaultInjector::new(P::default())
    }
}

impl<P> FaultInjector<P> {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: P) -> Self {
        FaultInjector {
            inner,
            faults: Mutex::new([Fault::None; Operation::ALL.len()]),
            calls: Default::default(),
        }
    }

    /// The next call of `op` fails.
    pub fn fail_once(&self, op: Operation) {
        self.fail_times(op, 1);
    }

    /// The next `n` calls of `op` fail (replacing whatever was armed for it).
    pub fn fail_times(&self, op: Operation, n: u32) {
        self.set(op, if n == 0 { Fault::None } else { Fault::Times(n) });
    }

    /// Every call of `op` fails until [`FaultInjector::clear`] or
    /// [`FaultInjector::clear_all`].
    pub fn fail_always(&self, op: Operation) {
        self.set(op, Fault::Always);
    }

    /// Disarms the faults of `op`.
    pub fn clear(&self, op: Operation) {
        self.set(op, Fault::None);
    }

    /// Disarms every fault.
    pub fn clear_all(&self) {
        let mut faults = self.faults();
        *faults = [Fault::None; Operation::ALL.len()];
    }

    /// How many calls of `op` the wrapper received, failed or not.
    pub fn calls(&self, op: Operation) -> u64 {
        self.calls[op.index()].load(Ordering::SeqCst)
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Unwraps the backend.
    pub fn into_inner(self) -> P {
        self.inner
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, [Fault; Operation::ALL.len()]> {
        // The guarded data is a plain array that no panic can leave half-written.
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, op: Operation, fault: Fault) {
        self.faults()[op.index()] = fault;
    }

    fn count(&self, op: Operation) {
        self.calls[op.index()].fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a call of `op` and consumes one armed failure of it, if any.
    fn enter(&self, op: Operation) -> Result<(), PersistenceError> {
        self.count(op);
        if self.faults()[op.index()].take() {
            Err(injected(op))
        } else {
            Ok(())
        }
    }
}

fn injected(op: Operation) -> PersistenceError {
    tracing::debug!(operation = op.name(), "injected persistence failure");
    PersistenceError::unavailable(format!("{op} failed: injected fault"))
}

/// What a commit through the wrapper must do, decided under one lock.
enum CommitPlan {
    Fail(Operation),
    SaveMetaThenFail,
    Forward,
}

#[async_trait]
impl<P: Persistence> Persistence for FaultInjector<P> {
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.enter(Operation::SaveChannelMeta)?;
        self.inner.save_channel_meta(channel, meta).await
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        self.enter(Operation::UpdateHistory)?;
        self.inner.update_history(channel, update).await
    }

    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        self.enter(Operation::LoadChannel)?;
        self.inner.load_channel(channel).await
    }

    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        self.enter(Operation::DropChannel)?;
        self.inner.drop_channel(channel).await
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        self.enter(Operation::SetRetrievalHint)?;
        self.inner
            .set_retrieval_hint(channel, message_id, hint)
            .await
    }

    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        self.count(Operation::Commit);
        let has_history = history.is_some_and(|update| !update.is_empty());
        let plan = {
            let mut faults = self.faults();
            if faults[Operation::Commit.index()].take() {
                CommitPlan::Fail(Operation::Commit)
            } else if meta.is_some() && faults[Operation::SaveChannelMeta.index()].take() {
                CommitPlan::Fail(Operation::SaveChannelMeta)
            } else if has_history && faults[Operation::UpdateHistory.index()].take() {
                CommitPlan::SaveMetaThenFail
            } else {
                CommitPlan::Forward
            }
        };
        match plan {
            CommitPlan::Fail(op) => Err(injected(op)),
            CommitPlan::SaveMetaThenFail => {
                if let Some(meta) = meta {
                    self.inner.save_channel_meta(channel, meta).await?;
                }
                Err(injected(Operation::UpdateHistory))
            }
            CommitPlan::Forward => self.inner.commit(channel, meta, history).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use sds_codec::storage::LoggedMessage;
    use sds_codec::wire::SdsMessage;

    use super::*;
    use crate::persistence::PersistenceErrorKind;
    use crate::persistence::memory::MemoryPersistence;

    fn meta(lamport: u64) -> ChannelMeta {
        ChannelMeta {
            lamport,
            ..ChannelMeta::empty()
        }
    }

    fn append(id: &str, lamport: u64) -> HistoryUpdate {
        HistoryUpdate {
            append: vec![LoggedMessage {
                message: Some(SdsMessage {
                    message_id: id.into(),
                    lamport_timestamp: Some(lamport),
                    content: Some(b"x".to_vec()),
                    ..Default::default()
                }),
                retrieval_hint: None,
            }],
            evict: Vec::new(),
        }
    }

    fn assert_injected(err: PersistenceError, op: Operation) {
        assert_eq!(err.kind(), PersistenceErrorKind::Unavailable);
        let text = err.to_string();
        assert!(text.contains(op.name()), "{text}");
        assert!(text.contains("injected"), "{text}");
    }

    #[tokio::test]
    async fn passes_through_and_counts() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.save_channel_meta("ch", &meta(3)).await.unwrap();
        faults.update_history("ch", &append("a", 1)).await.unwrap();
        faults.set_retrieval_hint("ch", "a", b"h").await.unwrap();
        let data = faults.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(3)));
        assert_eq!(data.history[0].retrieval_hint.as_deref(), Some(&b"h"[..]));
        faults.drop_channel("ch").await.unwrap();
        for op in Operation::ALL {
            let expected = u64::from(op != Operation::Commit);
            assert_eq!(faults.calls(op), expected, "{op}");
        }
        assert_eq!(
            faults.inner().load_channel("ch").await.unwrap(),
            ChannelData::empty()
        );
    }

    #[tokio::test]
    async fn fail_once_fails_exactly_once() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_once(Operation::LoadChannel);
        assert_injected(
            faults.load_channel("ch").await.unwrap_err(),
            Operation::LoadChannel,
        );
        faults.load_channel("ch").await.unwrap();
        assert_eq!(faults.calls(Operation::LoadChannel), 2);
    }

    #[tokio::test]
    async fn fail_times_then_clear() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_times(Operation::SaveChannelMeta, 2);
        assert!(faults.save_channel_meta("ch", &meta(1)).await.is_err());
        assert!(faults.save_channel_meta("ch", &meta(1)).await.is_err());
        faults.save_channel_meta("ch", &meta(1)).await.unwrap();

        faults.fail_always(Operation::DropChannel);
        faults.fail_always(Operation::SetRetrievalHint);
        for _ in 0..3 {
            assert_injected(
                faults.drop_channel("ch").await.unwrap_err(),
                Operation::DropChannel,
            );
        }
        faults.clear(Operation::DropChannel);
        assert!(faults.set_retrieval_hint("ch", "a", b"h").await.is_err());
        faults.drop_channel("ch").await.unwrap();
        faults.clear_all();
        faults.set_retrieval_hint("ch", "a", b"h").await.unwrap();
        faults.fail_times(Operation::UpdateHistory, 0);
        faults.update_history("ch", &append("a", 1)).await.unwrap();
        assert_eq!(faults.calls(Operation::SaveChannelMeta), 3);
        assert_eq!(faults.calls(Operation::DropChannel), 4);
    }

    #[tokio::test]
    async fn commit_fault_applies_nothing() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_once(Operation::Commit);
        let err = faults
            .commit("ch", Some(&meta(1)), Some(&append("a", 1)))
            .await
            .unwrap_err();
        assert_injected(err, Operation::Commit);
        assert_eq!(
            faults.load_channel("ch").await.unwrap(),
            ChannelData::empty()
        );
        assert_eq!(faults.calls(Operation::Commit), 1);
    }

    #[tokio::test]
    async fn meta_fault_in_commit_applies_nothing() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_once(Operation::SaveChannelMeta);
        let err = faults
            .commit("ch", Some(&meta(1)), Some(&append("a", 1)))
            .await
            .unwrap_err();
        assert_injected(err, Operation::SaveChannelMeta);
        assert_eq!(
            faults.load_channel("ch").await.unwrap(),
            ChannelData::empty()
        );
        // The forwarded parts are not counted as separate calls.
        assert_eq!(faults.calls(Operation::SaveChannelMeta), 0);
        assert_eq!(faults.calls(Operation::UpdateHistory), 0);
    }

    #[tokio::test]
    async fn meta_fault_is_not_consumed_by_a_history_only_commit() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_once(Operation::SaveChannelMeta);
        faults
            .commit("ch", None, Some(&append("a", 1)))
            .await
            .unwrap();
        assert!(faults.save_channel_meta("ch", &meta(1)).await.is_err());
    }

    #[tokio::test]
    async fn history_fault_in_commit_saves_meta_then_fails() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_once(Operation::UpdateHistory);
        let err = faults
            .commit("ch", Some(&meta(4)), Some(&append("a", 1)))
            .await
            .unwrap_err();
        assert_injected(err, Operation::UpdateHistory);
        let data = faults.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(4)));
        assert!(data.history.is_empty());

        // Consumed: the next commit goes through whole.
        faults
            .commit("ch", Some(&meta(5)), Some(&append("a", 1)))
            .await
            .unwrap();
        let data = faults.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(5)));
        assert_eq!(data.history.len(), 1);
    }

    #[tokio::test]
    async fn history_fault_ignores_meta_only_commits() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_always(Operation::UpdateHistory);
        faults.commit("ch", Some(&meta(2)), None).await.unwrap();
        faults
            .commit("ch", Some(&meta(3)), Some(&HistoryUpdate::default()))
            .await
            .unwrap();
        let data = faults.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(3)));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<FaultInjector<MemoryPersistence>>();
    }
}
