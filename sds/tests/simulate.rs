//! The main job, in process: convergence on every backend in the build, the network
//! scenarios, and the convergence targets on a harsh network with the protocol's real
//! defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds::simulation::{
    Scenario, Simulation, SimulationConfig, SimulationReport, payload_message_id,
};
use sds::{Backend, ReliabilityConfig};

/// A gentle network with the simulation-scaled timings: quick, for what is not about the
/// network (backends, restarts, reproducibility).
fn gentle_config() -> SimulationConfig {
    SimulationConfig {
        messages: 150,
        restarts: 2,
        seed: 20_261_127,
        protocol: SimulationConfig::protocol_defaults(),
        ..SimulationConfig::for_scenario(Scenario::Gentle)
    }
}

async fn run(config: SimulationConfig, backend: &Backend) -> SimulationReport {
    Simulation::new(config, backend)
        .unwrap()
        .run(|_| {})
        .await
        .unwrap()
}

async fn run_on_memory(config: SimulationConfig) -> SimulationReport {
    run(config, &Backend::open("memory://").await.unwrap()).await
}

/// Every participant delivered every message exactly once, in causal order.
fn assert_exactly_once_in_causal_order(report: &SimulationReport, messages: usize) {
    assert!(report.converged, "{report}");
    assert!(report.missing.is_empty(), "{report}");
    assert!(report.causality_violations.is_empty(), "{report}");
    assert_eq!(report.messages, messages, "{report}");
    for participant in &report.participants {
        assert_eq!(participant.duplicate_deliveries, 0, "{report}");
        assert_eq!(
            participant.delivered + participant.sent,
            messages as u64,
            "{report}"
        );
    }
}

fn assert_converged(report: &SimulationReport) {
    assert_exactly_once_in_causal_order(report, 150);
    let restarts: u64 = report.participants.iter().map(|p| p.restarts).sum();
    assert_eq!(restarts, 2, "{report}");
    assert!(
        report.packets_lost > 0,
        "the network must have lost something"
    );
    for participant in &report.participants {
        assert_eq!(participant.persistence_failures, 0, "{report}");
        assert!(participant.commits > 0);
    }
}

// 20% loss and two crash-restarts converge over the in-memory backend.
#[tokio::test]
async fn converges_on_memory() {
    assert_converged(&run_on_memory(gentle_config()).await);
}

// The same run converges over RocksDB, restarting from what was committed to disk.
#[cfg(feature = "rocksdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocksdb://{}", dir.path().display());
    let backend = Backend::open(&url).await.unwrap();
    assert_converged(&run(gentle_config(), &backend).await);
}

// A seed reproduces a run exactly, on the harshest presets too.
#[tokio::test]
async fn same_seed_same_report() {
    for scenario in [Scenario::Bursty, Scenario::PartitionAndHeal] {
        let config = SimulationConfig {
            messages: 60,
            settle_limit_ms: 300_000,
            ..SimulationConfig::for_scenario(scenario)
        };
        let first = run_on_memory(config.clone()).await;
        let second = run_on_memory(config).await;
        assert_eq!(first, second);
    }
}

// Each participant sends an equal share of the messages.
#[tokio::test]
async fn each_participant_sends_an_equal_share() {
    let report = run_on_memory(SimulationConfig {
        messages: 100,
        ..gentle_config()
    })
    .await;
    for participant in &report.participants {
        assert_eq!(participant.sent, 20, "{report}");
    }
}

// Message ids follow the @waku/sds applications' convention: the lowercase hex SHA-256
// of the payload, here about 100 bytes and unique.
#[tokio::test]
async fn message_ids_are_the_hex_sha256_of_their_payloads() {
    let backend = Backend::open("memory://").await.unwrap();
    let report = run(
        SimulationConfig {
            messages: 30,
            restarts: 0,
            ..gentle_config()
        },
        &backend,
    )
    .await;
    assert_exactly_once_in_causal_order(&report, 30);
    let stored = backend
        .namespace("participant-0")
        .load_channel("simulation")
        .await
        .unwrap();
    assert_eq!(stored.history.len(), 30);
    let mut payloads = std::collections::HashSet::new();
    for logged in stored.history {
        let message = logged.message.unwrap();
        let content = message.content.unwrap();
        assert_eq!(content.len(), 100);
        assert_eq!(message.message_id, payload_message_id(&content));
        assert_eq!(message.message_id.len(), 64);
        assert!(
            message
                .message_id
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert!(payloads.insert(content), "payloads are unique");
    }
}

// Every preset runs, and the summary (text and JSON) names it with its network figures.
#[tokio::test]
async fn each_scenario_preset_runs_and_the_summary_names_it() {
    for scenario in Scenario::ALL {
        let config = SimulationConfig {
            messages: 150,
            // 60 s of sending, so the partition (30 s to 60 s) falls within it.
            send_interval_ms: 400,
            restarts: 1,
            settle_limit_ms: 600_000,
            ..SimulationConfig::for_scenario(scenario)
        };
        let report = run_on_memory(config).await;
        assert_eq!(report.scenario, scenario);
        assert!(!report.scenario_overridden);
        assert_eq!(report.network, scenario.network());
        assert_eq!(report.protocol, "default");
        assert_eq!(report.messages, 150);
        let text = report.to_string();
        assert!(
            text.starts_with(&format!("scenario {}: loss ", scenario.name())),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["scenario"], scenario.name());
        assert_eq!(json["network"]["loss"], scenario.network().loss);
        let stats = &report.network_stats;
        match scenario {
            Scenario::Gentle => assert_eq!(stats.delayed_long, 0, "{text}"),
            Scenario::Lossy => assert!(stats.delayed_long > 0, "{text}"),
            Scenario::Bursty => assert!(stats.lost_in_burst > 0, "{text}"),
            Scenario::PartitionAndHeal => assert!(stats.cut_by_partition > 0, "{text}"),
        }
        println!("{text}");
    }
}

// Explicit figures override the preset's, and the summary says so.
#[tokio::test]
async fn overridden_figures_are_reported() {
    let mut config = SimulationConfig {
        messages: 20,
        ..gentle_config()
    };
    config.network.loss = 0.1;
    let report = run_on_memory(config).await;
    assert!(report.scenario_overridden);
    assert_eq!(report.protocol, "scaled");
    let text = report.to_string();
    assert!(
        text.starts_with("scenario gentle (figures overridden): loss 10%"),
        "{text}"
    );
}

// A run on the lossy preset really is harsh: its network's own counters show about 20%
// of the copies lost and about 10% of those on the wire delayed by 1-8 s.
#[tokio::test]
async fn lossy_run_loses_a_fifth_and_delays_a_tenth_by_seconds() {
    let report = run_on_memory(SimulationConfig {
        messages: 300,
        restarts: 0,
        protocol: SimulationConfig::protocol_defaults(),
        ..SimulationConfig::for_scenario(Scenario::Lossy)
    })
    .await;
    let stats = &report.network_stats;
    let lost = stats.lost as f64 / stats.copies as f64;
    assert!((0.18..0.22).contains(&lost), "lost {lost}: {report}");
    let long = stats.delayed_long as f64 / stats.in_flight as f64;
    assert!((0.085..0.115).contains(&long), "long {long}: {report}");
    assert!(
        stats.late_by_a_second >= stats.delayed_long * 9 / 10,
        "{report}"
    );
}

// With repair and resend off, losses stay lost: the run is reported as not converged and
// names what is missing where.
#[tokio::test]
async fn detects_non_convergence() {
    let mut config = SimulationConfig {
        messages: 60,
        repair: false,
        resend: false,
        restarts: 0,
        settle_limit_ms: 60_000,
        ..gentle_config()
    };
    config.network.loss = 0.3;
    let report = run_on_memory(config).await;
    assert!(!report.converged);
    assert!(!report.missing.is_empty());
    assert_eq!(report.settle_ms, None);
    let text = report.to_string();
    assert!(text.contains("MISSING at participant-"), "{text}");
    assert!(text.contains("NOT CONVERGED"), "{text}");
}

// Parameters that cannot work are refused with a message.
#[tokio::test]
async fn invalid_parameters_are_refused() {
    let backend = Backend::open("memory://").await.unwrap();
    let refused = |config: SimulationConfig, needle: &str| {
        let err = Simulation::new(config, &backend).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    };
    let mut config = SimulationConfig::default();
    config.network.loss = 1.5;
    refused(config, "loss");
    let mut config = SimulationConfig::default();
    config.network.long_delay_min_ms = 9_000;
    refused(config, "long_delay_min_ms");
    let mut config = SimulationConfig::for_scenario(Scenario::Bursty);
    if let Some(bursts) = config.network.bursts.as_mut() {
        bursts.burst_loss = -0.1;
    }
    refused(config, "burst_loss");
}

/// The targets' run: 5 participants sending 200 messages each over the lossy preset at
/// `loss`, with the protocol's real defaults and the default two crash-restarts, allowed
/// `settle_secs` after the last send.
fn target_config(loss: f64, settle_secs: u64) -> SimulationConfig {
    let mut config = SimulationConfig {
        participants: 5,
        messages: 1_000,
        settle_limit_ms: settle_secs * 1_000,
        protocol: ReliabilityConfig::default(),
        // The seed of a plain `sds simulate`: at 20% loss this is its default run.
        seed: 1,
        ..SimulationConfig::for_scenario(Scenario::Lossy)
    };
    config.network.loss = loss;
    config
}

fn assert_target(report: &SimulationReport, settle_secs: u64) {
    println!("{report}");
    assert_exactly_once_in_causal_order(report, 1_000);
    let settle = report.settle_ms.expect("converged");
    assert!(settle <= settle_secs * 1_000, "{report}");
}

// TARGET: at 20% loss with 10% of copies delayed 1-8 s, the real defaults converge
// within 600 virtual seconds of the last send.
#[tokio::test]
async fn target_20_percent_loss_converges_within_600_s_of_the_last_send() {
    let report = run_on_memory(target_config(0.2, 600)).await;
    assert_target(&report, 600);
}

// TARGET: at 30% loss with 10% of copies delayed 1-8 s, the real defaults converge
// within 1,800 virtual seconds of the last send.
#[tokio::test]
async fn target_30_percent_loss_converges_within_1800_s_of_the_last_send() {
    let report = run_on_memory(target_config(0.3, 1_800)).await;
    assert_target(&report, 1_800);
}
