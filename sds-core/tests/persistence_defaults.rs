//! What the `Persistence` trait's provided methods do for a backend that implements only
//! the five operations: `commit` forwards to them (and skips what is empty), the backend
//! promises nothing, cannot list its channels, closes and claims nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use async_trait::async_trait;
use sds_core::codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};
use sds_core::persistence::BackendCapabilities;
use sds_core::{Persistence, PersistenceError, PersistenceErrorKind};

/// Records which of the five operations were called, and with what.
#[derive(Default)]
struct FiveOperations {
    calls: Mutex<Vec<String>>,
}

impl FiveOperations {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait]
impl Persistence for FiveOperations {
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.record(format!("save_channel_meta {channel} {}", meta.lamport));
        Ok(())
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        self.record(format!(
            "update_history {channel} +{} -{:?}",
            update.append.len(),
            update.evict
        ));
        Ok(())
    }

    async fn load_channel(&self, _channel: &str) -> Result<ChannelData, PersistenceError> {
        Ok(ChannelData::empty())
    }

    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        self.record(format!("drop_channel {channel}"));
        Ok(())
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        _hint: &[u8],
    ) -> Result<(), PersistenceError> {
        self.record(format!("set_retrieval_hint {channel} {message_id}"));
        Ok(())
    }
}

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        ..ChannelMeta::default()
    }
}

fn evict(ids: &[&str]) -> HistoryUpdate {
    HistoryUpdate {
        append: vec![],
        evict: ids.iter().map(ToString::to_string).collect(),
    }
}

#[tokio::test]
async fn commit_forwards_the_snapshot_then_the_history_and_skips_what_is_empty() {
    let backend = FiveOperations::default();
    backend
        .commit("ch", Some(&meta(7)), Some(&evict(&["a"])))
        .await
        .unwrap();
    assert_eq!(
        backend.take(),
        vec!["save_channel_meta ch 7", "update_history ch +0 -[\"a\"]"]
    );
    backend
        .commit("ch", Some(&meta(8)), Some(&HistoryUpdate::default()))
        .await
        .unwrap();
    assert_eq!(backend.take(), vec!["save_channel_meta ch 8"]);
    backend
        .commit("ch", None, Some(&evict(&["b"])))
        .await
        .unwrap();
    assert_eq!(backend.take(), vec!["update_history ch +0 -[\"b\"]"]);
    backend.commit("ch", None, None).await.unwrap();
    assert!(backend.take().is_empty());
}

#[tokio::test]
async fn a_plain_backend_promises_nothing_lists_nothing_and_claims_nothing() {
    let backend = FiveOperations::default();
    assert_eq!(backend.capabilities(), BackendCapabilities::CONSERVATIVE);
    let err = backend.list_channels().await.unwrap_err();
    assert_eq!(err.kind(), PersistenceErrorKind::Other);
    assert!(err.to_string().contains("cannot list"), "{err}");
    assert_eq!(backend.claim_writer().await.unwrap(), None);
    backend.close().await.unwrap();
    assert!(backend.take().is_empty());
}
