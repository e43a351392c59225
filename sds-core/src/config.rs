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
    /// Bloom filter capacity in messages (default 10,000).
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
    /// reporting them lost (RFC "irretrievably lost"); `None` waits forever (default).
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
            lost_dependency_timeout_ms: None,
            max_incoming_buffer: 1_000,
            max_missing_dependencies: 256,
            repair_enabled: true,
            repair_t_min_ms: 10_000,
            repair_t_max_ms: 60_000,
            repair_response_groups: 1,
            max_repair_requests: 10,
            repair_sweep_interval_ms: 5_000,
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
}

impl ReliabilityConfigBuilder {
    /// Validates and returns the configuration.
    pub fn build(self) -> Result<ReliabilityConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}
