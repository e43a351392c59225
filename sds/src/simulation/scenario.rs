//! Named presets: network scenarios and protocol profiles.

use std::fmt;

use sds_core::ReliabilityConfig;
use serde::Serialize;

use super::network::{LossBursts, NetworkConditions, Partition};

/// A named network preset (`sds simulate --scenario`). Explicit figures (`--loss`, …)
/// override a preset's; [`super::SimulationReport::scenario`] then says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 20% loss, 5% duplication, 10% of copies reordered within 2 s, 10-200 ms delays. Too
    /// kind to find convergence bugs: delays this short hide repair problems.
    Gentle,
    /// Real networks: `gentle`, plus 10% of copies delayed by 1-8 s more, so they
    /// overtake later ones.
    #[default]
    Lossy,
    /// Loss in bursts: 10% steady loss, and per receiver bursts of 80% loss lasting about
    /// 4 s every 20 s or so (about 22% loss on average), with `lossy`'s long delays.
    Bursty,
    /// `lossy`, and from 30 s to 60 s into the run the participants are split into two
    /// sides that cannot hear each other; then the partition heals.
    PartitionAndHeal,
}

impl Scenario {
    /// Every preset, in the order above.
    pub const ALL: [Scenario; 4] = [
        Scenario::Gentle,
        Scenario::Lossy,
        Scenario::Bursty,
        Scenario::PartitionAndHeal,
    ];

    /// The preset's name, as `--scenario` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Gentle => "gentle",
            Scenario::Lossy => "lossy",
            Scenario::Bursty => "bursty",
            Scenario::PartitionAndHeal => "partition-and-heal",
        }
    }

    /// The preset's network conditions.
    pub fn network(self) -> NetworkConditions {
        let gentle = NetworkConditions {
            loss: 0.2,
            duplication: 0.05,
            reorder: 0.1,
            reorder_window_ms: 2_000,
            min_delay_ms: 10,
            max_delay_ms: 200,
            long_delay: 0.0,
            long_delay_min_ms: 1_000,
            long_delay_max_ms: 8_000,
            bursts: None,
            partition: None,
        };
        let lossy = NetworkConditions {
            long_delay: 0.1,
            ..gentle.clone()
        };
        match self {
            Scenario::Gentle => gentle,
            Scenario::Lossy => lossy,
            Scenario::Bursty => NetworkConditions {
                loss: 0.1,
                bursts: Some(LossBursts::default()),
                ..lossy
            },
            Scenario::PartitionAndHeal => NetworkConditions {
                partition: Some(Partition::default()),
                ..lossy
            },
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which protocol timings the participants run (`sds simulate --protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolProfile {
    /// The protocol's real defaults ([`ReliabilityConfig::default`]: timers of tens of
    /// seconds to minutes). The default, because it is the honest test: it is what an
    /// application ships with, and a network that delays copies by seconds only shows
    /// its effect on repair against the real timers.
    #[default]
    Default,
    /// The real defaults' shape with seconds where they have minutes
    /// ([`super::SimulationConfig::protocol_defaults`]), so repairs finish within a short
    /// virtual run. Quicker to explore with, but it flatters the protocol.
    Scaled,
}

impl ProtocolProfile {
    /// The profile's name, as `--protocol` takes it.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolProfile::Default => "default",
            ProtocolProfile::Scaled => "scaled",
        }
    }

    /// The profile's protocol configuration.
    pub fn config(self) -> ReliabilityConfig {
        match self {
            ProtocolProfile::Default => ReliabilityConfig::default(),
            ProtocolProfile::Scaled => super::SimulationConfig::protocol_defaults(),
        }
    }

    /// The profile a configuration is exactly, if any.
    pub fn of(config: &ReliabilityConfig) -> Option<ProtocolProfile> {
        [ProtocolProfile::Default, ProtocolProfile::Scaled]
            .into_iter()
            .find(|profile| profile.config() == *config)
    }
}

impl fmt::Display for ProtocolProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
