//! A fault-injecting wrapper around any backend, for tests of the failure policy.
//!
//! [`FaultInjector`] forwards every call to the backend it wraps, counts the calls per
//! [`Operation`], and fails the operations a test armed with
//! [`PersistenceError::Unavailable`] ("… injected …") without reaching the backend, or
//! makes them hang (never return), for tests of deadlines and of one stuck channel.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};

use super::{BackendCapabilities, Persistence, PersistenceError, WriterEpoch};

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
    /// [`Persistence::list_channels`].
    ListChannels,
    /// [`Persistence::close`].
    Close,
    /// [`Persistence::claim_writer`].
    ClaimWriter,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 9] = [
        Operation::SaveChannelMeta,
        Operation::UpdateHistory,
        Operation::LoadChannel,
        Operation::DropChannel,
        Operation::SetRetrievalHint,
        Operation::Commit,
        Operation::ListChannels,
        Operation::Close,
        Operation::ClaimWriter,
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
            Operation::ListChannels => "list_channels",
            Operation::Close => "close",
            Operation::ClaimWriter => "claim_writer",
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
    /// Let this many calls through, then fail this many.
    After(u32, u32),
    Always,
    Hang,
}

impl Fault {
    /// Consumes one failure if armed; true when the call must fail.
    fn take(&mut self) -> bool {
        match *self {
            Fault::None | Fault::Times(0) | Fault::After(_, 0) | Fault::Hang => false,
            Fault::After(0, n) => {
                *self = Fault::Times(n);
                self.take()
            }
            Fault::After(pass, n) => {
                *self = Fault::After(pass - 1, n);
                false
            }
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
///
/// A hung call ([`FaultInjector::hang_always`], [`FaultInjector::hang_channel`]) is counted
/// and then never returns and applies nothing; only its caller giving up (a deadline, a
/// cancelled task) ends it. A commit hangs when `Commit` is hung, for every channel or for
/// its channel; hangs are checked before failures.
#[derive(Debug)]
pub struct FaultInjector<P> {
    inner: P,
    faults: Mutex<[Fault; Operation::ALL.len()]>,
    hung_channels: Mutex<Vec<(Operation, String)>>,
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
            hung_channels: Mutex::new(Vec::new()),
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

    /// The next `successes` calls of `op` go through, then the `n` after them fail
    /// (replacing whatever was armed for it): a failure in the middle of a sequence, such
    /// as between the parts of a split history batch.
    pub fn fail_after(&self, op: Operation, successes: u32, n: u32) {
        self.set(op, Fault::After(successes, n));
    }

    /// Every call of `op` fails until [`FaultInjector::clear`] or
    /// [`FaultInjector::clear_all`].
    pub fn fail_always(&self, op: Operation) {
        self.set(op, Fault::Always);
    }

    /// Every call of `op` hangs (see the type's docs) until [`FaultInjector::clear`] or
    /// [`FaultInjector::clear_all`]; calls already hanging stay hung.
    pub fn hang_always(&self, op: Operation) {
        self.set(op, Fault::Hang);
    }

    /// Every call of `op` for `channel` hangs, other channels are unaffected, until
    /// [`FaultInjector::clear`] or [`FaultInjector::clear_all`].
    pub fn hang_channel(&self, op: Operation, channel: &str) {
        self.hung_channels().push((op, channel.to_string()));
    }

    /// Disarms the faults and hangs of `op`.
    pub fn clear(&self, op: Operation) {
        self.set(op, Fault::None);
        self.hung_channels().retain(|(hung, _)| *hung != op);
    }

    /// Disarms every fault and hang.
    pub fn clear_all(&self) {
        let mut faults = self.faults();
        *faults = [Fault::None; Operation::ALL.len()];
        self.hung_channels().clear();
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

    fn hung_channels(&self) -> std::sync::MutexGuard<'_, Vec<(Operation, String)>> {
        // A plain list that no panic can leave half-written.
        self.hung_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, op: Operation, fault: Fault) {
        self.faults()[op.index()] = fault;
    }

    fn count(&self, op: Operation) {
        self.calls[op.index()].fetch_add(1, Ordering::SeqCst);
    }

    fn hangs(&self, op: Operation, channel: &str) -> bool {
        self.faults()[op.index()] == Fault::Hang
            || self
                .hung_channels()
                .iter()
                .any(|(hung, name)| *hung == op && name == channel)
    }

    /// Counts a call of `op`, hangs if it is hung, and consumes one armed failure of it,
    /// if any.
    async fn enter(&self, op: Operation, channel: &str) -> Result<(), PersistenceError> {
        self.count(op);
        if self.hangs(op, channel) {
            hang(op).await;
        }
        if self.faults()[op.index()].take() {
            Err(injected(op))
        } else {
            Ok(())
        }
    }
}

/// Never returns: a hung backend call.
async fn hang(op: Operation) {
    tracing::debug!(operation = op.name(), "injected hang");
    std::future::pending::<()>().await;
}

fn injected(op: Operation) -> PersistenceError {
    tracing::debug!(operation = op.name(), "injected persistence failure");
    PersistenceError::unavailable(format!("{op} failed: injected fault"))
}

/// What a commit through the wrapper must do, decided under one lock.
enum CommitPlan {
    Hang,
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
        self.enter(Operation::SaveChannelMeta, channel).await?;
        self.inner.save_channel_meta(channel, meta).await
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        self.enter(Operation::UpdateHistory, channel).await?;
        self.inner.update_history(channel, update).await
    }

    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        self.enter(Operation::LoadChannel, channel).await?;
        self.inner.load_channel(channel).await
    }

    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        self.enter(Operation::DropChannel, channel).await?;
        self.inner.drop_channel(channel).await
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        self.enter(Operation::SetRetrievalHint, channel).await?;
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
        let hangs = self.hangs(Operation::Commit, channel);
        let plan = {
            let mut faults = self.faults();
            if hangs {
                CommitPlan::Hang
            } else if faults[Operation::Commit.index()].take() {
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
            CommitPlan::Hang => {
                hang(Operation::Commit).await;
                Err(injected(Operation::Commit))
            }
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

    /// The wrapped backend's declaration. (An armed `UpdateHistory` fault makes a commit
    /// save its snapshot and fail, as a non-atomic backend would: that is the point of it.)
    fn capabilities(&self) -> BackendCapabilities {
        self.inner.capabilities()
    }

    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        self.enter(Operation::ListChannels, "").await?;
        self.inner.list_channels().await
    }

    async fn close(&self) -> Result<(), PersistenceError> {
        self.enter(Operation::Close, "").await?;
        self.inner.close().await
    }

    /// Forwarded, so the wrapped backend's fence binds the writes through the wrapper.
    async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        self.enter(Operation::ClaimWriter, "").await?;
        self.inner.claim_writer().await
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
        assert_eq!(faults.list_channels().await.unwrap(), Vec::<String>::new());
        assert_eq!(
            faults.claim_writer().await.unwrap(),
            Some(WriterEpoch::FIRST)
        );
        faults.close().await.unwrap();
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
    async fn fail_after_lets_calls_through_then_fails() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.fail_after(Operation::Commit, 2, 1);
        for lamport in 1..=2 {
            faults
                .commit("ch", Some(&meta(lamport)), None)
                .await
                .unwrap();
        }
        assert_injected(
            faults.commit("ch", Some(&meta(3)), None).await.unwrap_err(),
            Operation::Commit,
        );
        faults.commit("ch", Some(&meta(4)), None).await.unwrap();
        assert_eq!(faults.calls(Operation::Commit), 4);
        let data = faults.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(4)));

        faults.fail_once(Operation::ListChannels);
        assert_injected(
            faults.list_channels().await.unwrap_err(),
            Operation::ListChannels,
        );
        assert_eq!(faults.list_channels().await.unwrap(), ["ch"]);
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

    #[tokio::test(start_paused = true)]
    async fn hung_calls_never_return_until_cleared() {
        use std::time::Duration;
        use tokio::time::timeout;

        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.hang_channel(Operation::Commit, "stuck");
        let wait = Duration::from_secs(3_600);
        let hung = timeout(wait, faults.commit("stuck", Some(&meta(1)), None)).await;
        assert!(hung.is_err(), "a hung commit must not return");
        // Other channels and other operations are unaffected.
        timeout(wait, faults.commit("other", Some(&meta(1)), None))
            .await
            .unwrap()
            .unwrap();
        timeout(wait, faults.load_channel("stuck"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(faults.calls(Operation::Commit), 2);
        assert_eq!(
            faults.inner().load_channel("stuck").await.unwrap(),
            ChannelData::empty(),
            "a hung commit applies nothing"
        );

        faults.hang_always(Operation::LoadChannel);
        assert!(timeout(wait, faults.load_channel("any")).await.is_err());
        faults.clear_all();
        timeout(wait, faults.commit("stuck", Some(&meta(2)), None))
            .await
            .unwrap()
            .unwrap();
        timeout(wait, faults.load_channel("any"))
            .await
            .unwrap()
            .unwrap();
    }

    /// Clearing one operation disarms its channel hangs and leaves other operations'.
    #[test]
    fn clear_disarms_only_the_hangs_of_its_operation() {
        let faults = FaultInjector::new(MemoryPersistence::new());
        faults.hang_channel(Operation::Commit, "a");
        faults.hang_channel(Operation::LoadChannel, "b");
        faults.clear(Operation::Commit);
        assert_eq!(
            *faults.hung_channels(),
            [(Operation::LoadChannel, "b".to_string())]
        );
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<FaultInjector<MemoryPersistence>>();
    }
}
