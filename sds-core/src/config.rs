//! Protocol configuration: nim-sds defaults where they serve convergence, @waku/sds and
//! js-waku values where they do better or where mixed networks need agreement (each field
//! says which and why), and a validating builder.

use thiserror::Error;

/// A configuration value that cannot work.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Tunables of the protocol. Peers of one channel must agree on the bloom filter
/// parameters (they are not carried in the bytes); everything else is local.
///
/// Build one with [`ReliabilityConfig::builder`] (validated) or start from
/// [`ReliabilityConfig::default`] and change fields (validated when the manager is built).
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityConfig {
    /// Bloom filter capacity in messages (default 10,000). The rolling filter we send keeps
    /// between 80% and 120% of it; it is also how many ids that left the log (evicted,
    /// marked met, given up) a channel remembers exactly, which is what dependencies and
    /// duplicates are judged by (never a bloom hit).
    pub bloom_capacity: usize,
    /// Bloom filter target false-positive rate (default 0.001).
    pub bloom_error_rate: f64,
    /// Local log size; the oldest entries are evicted past it (default 1,000).
    pub max_message_history: usize,
    /// Log entries attached to each sent message as causal history (default 10).
    pub max_causal_history: usize,
    /// How long an unacknowledged message waits before it is resent (default 30 s, as
    /// js-waku's reliable channel: a lost message is healed by its sender within a minute
    /// even when no peer's repair request reaches it).
    pub resend_interval_ms: u64,
    /// Resends before giving up on a message; 0 disables resending (default 10, as
    /// js-waku's reliable channel).
    pub max_resend_attempts: u32,
    /// Bloom-filter hits that count as an acknowledgement (default 2, as @waku/sds).
    pub possible_acks_threshold: u32,
    /// How often a sync message is due on an idle channel (default 30 s).
    pub sync_interval_ms: u64,
    /// How often the buffer sweeps run on the timer (default 5 s, as js-waku's reliable
    /// channel: a sweep that commits only what changed costs nothing on an idle channel, and
    /// a long period would stretch `resend_interval_ms` by up to one period).
    pub buffer_sweep_interval_ms: u64,
    /// Deliver a buffered message anyway once its dependencies have been missing this long,
    /// reporting them lost (RFC "irretrievably lost"); `None` waits forever (default 30
    /// minutes: repair gives up well before, at 20-30% loss a group converges within about
    /// 10 minutes, and a message waiting longer only pins memory).
    pub lost_dependency_timeout_ms: Option<u64>,
    /// Most received messages kept waiting for dependencies per channel; past it new
    /// arrivals are dropped with an event (default 1,000).
    pub max_incoming_buffer: usize,
    /// Most dependencies a received message may name that we never received (those
    /// waiting in our own buffer do not count); a message missing more is dropped with an
    /// event (default 256: above the 200-entry causal history @waku/sds peers send, so an
    /// honest peer's message is never dropped for its history alone).
    pub max_missing_dependencies: usize,
    /// SDS-R repair; also off when the participant id is empty (default on).
    pub repair_enabled: bool,
    /// SDS-R T_min: earliest a repair request goes out after a loss is seen (default 10 s:
    /// longer than the multi-second delays of real networks, so a late copy usually arrives
    /// before we ask, while every message that causally follows the loss waits for it; 30 s,
    /// as nim-sds and @waku/sds use, made convergence at 20% loss markedly slower).
    pub repair_t_min_ms: u64,
    /// SDS-R T_max: latest a repair request goes out (or is asked again), and the spread of
    /// responses from holders other than the original sender (default 60 s; nim-sds uses
    /// 300 s, @waku/sds 120 s). Timing is local, so peers need not agree. Measured on
    /// 5 participants x 200 messages with 20-30% loss and second-long delays: 60 s halves the
    /// time to converge compared with 120 s, for about 10% more rebroadcasts.
    pub repair_t_max_ms: u64,
    /// SDS-R response groups (default 1: everyone may answer).
    pub repair_response_groups: u32,
    /// Repair requests attached to one outgoing message (default 10; nim-sds and @waku/sds
    /// attach 3). After a burst of losses the sync messages are the only carriers, one per
    /// peer every `sync_interval_ms`; 3 a message left requests queued for minutes. An entry
    /// costs about 100 bytes on the wire.
    pub max_repair_requests: usize,
    /// How often the repair sweep runs on the timer (default 5 s).
    pub repair_sweep_interval_ms: u64,
    /// Repair from peers' filters: a received sync message's bloom filter lists every id its
    /// sender received, so a message of our log older than this that the filter lacks was
    /// lost at that peer, and we schedule an answer as if it had asked for it (response
    /// timing, groups and answer budgets as for a request). Causal histories name only the
    /// newest messages, so without this a message that a peer missed while others received
    /// it late or while it was offline is never named again once its sender counts it
    /// acknowledged, and that peer never learns it exists. `None` turns it off (default
    /// 60 s: ordinary resends and requests have had their turn by then).
    pub repair_from_filters_after_ms: Option<u64>,

    // Bounds on what peers, outages and the application can make us hold. Each one that
    // bites emits an event (`Event::MessageDropped` with a reason for a received message,
    // `Event::LimitReached` otherwise) and drops the newcomer or the offender's own oldest
    // entry, never honest state that was already accepted.
    /// Accept network messages for channels the application never joined (default false:
    /// a message for a channel not joined with `join_channel`, `ensure_channel` or a send
    /// is dropped with [`crate::DropReason::ChannelNotJoined`] and opens nothing).
    pub accept_any_channel: bool,
    /// Most channels open at once in a manager when `accept_any_channel` is on; messages
    /// for further channels are dropped (default 1,000). Joined channels count too but are
    /// never refused.
    pub max_channels: usize,
    /// A channel with nothing buffered, nothing pending and no application or network
    /// activity for this long (sync builds, sweeps and reads do not count) is unloaded from
    /// memory by the maintenance pass (its state is persisted) and loaded again on next
    /// use; `None` keeps every channel loaded (default 10 minutes).
    pub channel_idle_unload_ms: Option<u64>,
    /// How far a received Lamport timestamp may run ahead of our wall clock; a message
    /// beyond `now + max_lamport_skew_ms` is dropped and does not move our clock (default
    /// 10 minutes: far beyond honest clock skew, and our clock never outruns wall time by
    /// more than that).
    pub max_lamport_skew_ms: u64,
    /// Most unacknowledged messages kept for resending; past it the oldest is given up with
    /// `Event::MessageSendFailed` (default 1,000: as the log, beyond which a message can no
    /// longer be repaired from it anyway).
    pub max_outgoing_buffer: usize,
    /// Most bytes of unacknowledged messages kept for resending; past it the oldest are
    /// given up as for `max_outgoing_buffer` (default 64 MiB).
    pub max_outgoing_buffer_bytes: usize,
    /// Most bytes of received messages waiting for dependencies per channel; past it the
    /// oldest message of the sender holding the most bytes is evicted (default 64 MiB).
    pub max_incoming_buffer_bytes: usize,
    /// Most bytes one sender may have waiting in a channel's incoming buffer; past it that
    /// sender's oldest buffered messages are evicted (default 16 MiB).
    pub max_incoming_bytes_per_sender: usize,
    /// Most ids we ask peers for (SDS-R requests pending) per channel; losses found past it
    /// are not requested until others resolve (default 1,000).
    pub max_outgoing_repairs: usize,
    /// Most peer repair requests we hold to answer per channel (default 1,000).
    pub max_incoming_repairs: usize,
    /// Most repair requests of one received message we schedule answers for (default 10,
    /// as `max_repair_requests`).
    pub max_repair_answers_per_message: usize,
    /// Most repair answers scheduled for one sender's requests per
    /// `repair_answer_window_ms` (default 100).
    pub max_repair_answers_per_sender: u32,
    /// The window of `max_repair_answers_per_sender` (default 60 s).
    pub repair_answer_window_ms: u64,
    /// Most history changes queued for a backend that keeps failing (the R2 queue); past it
    /// the queue is dropped and the channel's whole history is rewritten once the backend
    /// is back (default 10,000).
    pub max_pending_history: usize,
    /// First delay before a failed commit is retried; it doubles on each failure up to
    /// `commit_retry_max_ms`. Operations in between keep their changes queued in memory
    /// (default 1 s).
    pub commit_retry_min_ms: u64,
    /// Longest delay between commit retries (default 60 s).
    pub commit_retry_max_ms: u64,
    /// A backend call (commit, bootstrap load, drop, hint save) that has not returned after
    /// this long counts as failed; a failed commit keeps its changes queued. `None` waits
    /// forever (default 30 s).
    pub commit_timeout_ms: Option<u64>,
    /// Most channels a maintenance pass works on at once (default 16).
    pub max_concurrent_sweeps: usize,
    /// Most events queued for an application that is not reading; past it the oldest are
    /// dropped and the stream reports how many with `Event::Lagged` (default 10,000).
    pub event_queue_capacity: usize,
    /// Most ids one `mark_dependencies_met` call may name (default 1,000).
    pub max_mark_met_ids: usize,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        ReliabilityConfig {
            bloom_capacity: 10_000,
            bloom_error_rate: 0.001,
            max_message_history: 1_000,
            max_causal_history: 10,
            resend_interval_ms: 30_000,
            max_resend_attempts: 10,
            possible_acks_threshold: 2,
            sync_interval_ms: 30_000,
            buffer_sweep_interval_ms: 5_000,
            lost_dependency_timeout_ms: Some(1_800_000),
            max_incoming_buffer: 1_000,
            max_missing_dependencies: 256,
            repair_enabled: true,
            repair_t_min_ms: 10_000,
            repair_t_max_ms: 60_000,
            repair_response_groups: 1,
            max_repair_requests: 10,
            repair_sweep_interval_ms: 5_000,
            repair_from_filters_after_ms: Some(60_000),
            accept_any_channel: false,
            max_channels: 1_000,
            channel_idle_unload_ms: Some(600_000),
            max_lamport_skew_ms: 600_000,
            max_outgoing_buffer: 1_000,
            max_outgoing_buffer_bytes: 64 * 1024 * 1024,
            max_incoming_buffer_bytes: 64 * 1024 * 1024,
            max_incoming_bytes_per_sender: 16 * 1024 * 1024,
            max_outgoing_repairs: 1_000,
            max_incoming_repairs: 1_000,
            max_repair_answers_per_message: 10,
            max_repair_answers_per_sender: 100,
            repair_answer_window_ms: 60_000,
            max_pending_history: 10_000,
            commit_retry_min_ms: 1_000,
            commit_retry_max_ms: 60_000,
            commit_timeout_ms: Some(30_000),
            max_concurrent_sweeps: 16,
            event_queue_capacity: 10_000,
            max_mark_met_ids: 1_000,
        }
    }
}

impl ReliabilityConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ReliabilityConfigBuilder {
        ReliabilityConfigBuilder {
            config: ReliabilityConfig::default(),
        }
    }

    /// Checks that every value can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |what: &str| Err(ConfigError(what.to_string()));
        if self.bloom_capacity == 0 {
            return fail("bloom_capacity must be at least 1");
        }
        if !(self.bloom_error_rate > 0.0 && self.bloom_error_rate < 1.0) {
            return fail("bloom_error_rate must be strictly between 0 and 1");
        }
        if self.max_message_history == 0 {
            return fail("max_message_history must be at least 1");
        }
        if self.max_causal_history > self.max_message_history {
            return fail("max_causal_history cannot exceed max_message_history");
        }
        if self.possible_acks_threshold == 0 {
            return fail("possible_acks_threshold must be at least 1");
        }
        if self.max_incoming_buffer == 0 {
            return fail("max_incoming_buffer must be at least 1");
        }
        for (name, value) in [
            ("max_channels", self.max_channels),
            ("max_outgoing_buffer", self.max_outgoing_buffer),
            ("max_outgoing_buffer_bytes", self.max_outgoing_buffer_bytes),
            ("max_incoming_buffer_bytes", self.max_incoming_buffer_bytes),
            (
                "max_incoming_bytes_per_sender",
                self.max_incoming_bytes_per_sender,
            ),
            ("max_outgoing_repairs", self.max_outgoing_repairs),
            ("max_pending_history", self.max_pending_history),
            ("max_concurrent_sweeps", self.max_concurrent_sweeps),
            ("event_queue_capacity", self.event_queue_capacity),
            ("max_mark_met_ids", self.max_mark_met_ids),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        if self.commit_retry_max_ms < self.commit_retry_min_ms {
            return fail("commit_retry_max_ms cannot be less than commit_retry_min_ms");
        }
        if self.repair_t_max_ms <= self.repair_t_min_ms {
            return fail("repair_t_max_ms must be greater than repair_t_min_ms");
        }
        if self.repair_response_groups == 0 {
            return fail("repair_response_groups must be at least 1");
        }
        for (name, value) in [
            ("sync_interval_ms", self.sync_interval_ms),
            ("buffer_sweep_interval_ms", self.buffer_sweep_interval_ms),
            ("repair_sweep_interval_ms", self.repair_sweep_interval_ms),
            ("resend_interval_ms", self.resend_interval_ms),
            ("repair_answer_window_ms", self.repair_answer_window_ms),
            ("commit_retry_min_ms", self.commit_retry_min_ms),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1 ms")));
            }
        }
        Ok(())
    }
}

/// Builds a validated [`ReliabilityConfig`].
#[derive(Debug, Clone)]
pub struct ReliabilityConfigBuilder {
    config: ReliabilityConfig,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        impl ReliabilityConfigBuilder {
            $(
                $(#[$doc])*
                pub fn $field(mut self, value: $ty) -> Self {
                    self.config.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`ReliabilityConfig::bloom_capacity`].
    bloom_capacity: usize,
    /// Sets [`ReliabilityConfig::bloom_error_rate`].
    bloom_error_rate: f64,
    /// Sets [`ReliabilityConfig::max_message_history`].
    max_message_history: usize,
    /// Sets [`ReliabilityConfig::max_causal_history`].
    max_causal_history: usize,
    /// Sets [`ReliabilityConfig::resend_interval_ms`].
    resend_interval_ms: u64,
    /// Sets [`ReliabilityConfig::max_resend_attempts`].
    max_resend_attempts: u32,
    /// Sets [`ReliabilityConfig::possible_acks_threshold`].
    possible_acks_threshold: u32,
    /// Sets [`ReliabilityConfig::sync_interval_ms`].
    sync_interval_ms: u64,
    /// Sets [`ReliabilityConfig::buffer_sweep_interval_ms`].
    buffer_sweep_interval_ms: u64,
    /// Sets [`ReliabilityConfig::lost_dependency_timeout_ms`].
    lost_dependency_timeout_ms: Option<u64>,
    /// Sets [`ReliabilityConfig::max_incoming_buffer`].
    max_incoming_buffer: usize,
    /// Sets [`ReliabilityConfig::max_missing_dependencies`].
    max_missing_dependencies: usize,
    /// Sets [`ReliabilityConfig::repair_enabled`].
    repair_enabled: bool,
    /// Sets [`ReliabilityConfig::repair_t_min_ms`].
    repair_t_min_ms: u64,
    /// Sets [`ReliabilityConfig::repair_t_max_ms`].
    repair_t_max_ms: u64,
    /// Sets [`ReliabilityConfig::repair_response_groups`].
    repair_response_groups: u32,
    /// Sets [`ReliabilityConfig::max_repair_requests`].
    max_repair_requests: usize,
    /// Sets [`ReliabilityConfig::repair_sweep_interval_ms`].
    repair_sweep_interval_ms: u64,
    /// Sets [`ReliabilityConfig::repair_from_filters_after_ms`].
    repair_from_filters_after_ms: Option<u64>,
    /// Sets [`ReliabilityConfig::accept_any_channel`].
    accept_any_channel: bool,
    /// Sets [`ReliabilityConfig::max_channels`].
    max_channels: usize,
    /// Sets [`ReliabilityConfig::channel_idle_unload_ms`].
    channel_idle_unload_ms: Option<u64>,
    /// Sets [`ReliabilityConfig::max_lamport_skew_ms`].
    max_lamport_skew_ms: u64,
    /// Sets [`ReliabilityConfig::max_outgoing_buffer`].
    max_outgoing_buffer: usize,
    /// Sets [`ReliabilityConfig::max_outgoing_buffer_bytes`].
    max_outgoing_buffer_bytes: usize,
    /// Sets [`ReliabilityConfig::max_incoming_buffer_bytes`].
    max_incoming_buffer_bytes: usize,
    /// Sets [`ReliabilityConfig::max_incoming_bytes_per_sender`].
    max_incoming_bytes_per_sender: usize,
    /// Sets [`ReliabilityConfig::max_outgoing_repairs`].
    max_outgoing_repairs: usize,
    /// Sets [`ReliabilityConfig::max_incoming_repairs`].
    max_incoming_repairs: usize,
    /// Sets [`ReliabilityConfig::max_repair_answers_per_message`].
    max_repair_answers_per_message: usize,
    /// Sets [`ReliabilityConfig::max_repair_answers_per_sender`].
    max_repair_answers_per_sender: u32,
    /// Sets [`ReliabilityConfig::repair_answer_window_ms`].
    repair_answer_window_ms: u64,
    /// Sets [`ReliabilityConfig::max_pending_history`].
    max_pending_history: usize,
    /// Sets [`ReliabilityConfig::commit_retry_min_ms`].
    commit_retry_min_ms: u64,
    /// Sets [`ReliabilityConfig::commit_retry_max_ms`].
    commit_retry_max_ms: u64,
    /// Sets [`ReliabilityConfig::commit_timeout_ms`].
    commit_timeout_ms: Option<u64>,
    /// Sets [`ReliabilityConfig::max_concurrent_sweeps`].
    max_concurrent_sweeps: usize,
    /// Sets [`ReliabilityConfig::event_queue_capacity`].
    event_queue_capacity: usize,
    /// Sets [`ReliabilityConfig::max_mark_met_ids`].
    max_mark_met_ids: usize,
}

impl ReliabilityConfigBuilder {
    /// Validates and returns the configuration.
    pub fn build(self) -> Result<ReliabilityConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with(change: impl FnOnce(&mut ReliabilityConfig)) -> Result<(), ConfigError> {
        let mut config = ReliabilityConfig::default();
        change(&mut config);
        config.validate()
    }

    #[test]
    fn the_bloom_error_rate_is_strictly_between_zero_and_one() {
        for rate in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(with(|c| c.bloom_error_rate = rate).is_err(), "{rate}");
        }
        for rate in [f64::MIN_POSITIVE, 0.5, 0.999_999] {
            assert!(with(|c| c.bloom_error_rate = rate).is_ok(), "{rate}");
        }
    }

    #[test]
    fn commit_retries_may_use_one_fixed_delay() {
        assert!(
            with(|c| {
                c.commit_retry_min_ms = 5_000;
                c.commit_retry_max_ms = 5_000;
            })
            .is_ok()
        );
        let err = with(|c| {
            c.commit_retry_min_ms = 5_000;
            c.commit_retry_max_ms = 4_999;
        })
        .unwrap_err();
        assert!(err.to_string().contains("commit_retry_max_ms"), "{err}");
    }
}
