//! The main job, in process: convergence on every backend in the build, and detection of
//! a run that cannot converge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds::Backend;
use sds::simulation::{Simulation, SimulationConfig};

fn lossy_config() -> SimulationConfig {
    let mut config = SimulationConfig {
        messages: 150,
        restarts: 2,
        seed: 20_261_127,
        ..SimulationConfig::default()
    };
    config.network.loss = 0.2;
    config
}

async fn run(config: SimulationConfig, backend: &Backend) -> sds::simulation::SimulationReport {
    Simulation::new(config, backend)
        .unwrap()
        .run(|_| {})
        .await
        .unwrap()
}

fn assert_converged(report: &sds::simulation::SimulationReport) {
    assert!(report.converged, "{report}");
    assert!(report.missing.is_empty() && report.causality_violations.is_empty());
    assert_eq!(report.messages, 150);
    let restarts: u64 = report.participants.iter().map(|p| p.restarts).sum();
    assert_eq!(restarts, 2, "{report}");
    assert!(
        report.packets_lost > 0,
        "the network must have lost something"
    );
    for participant in &report.participants {
        assert_eq!(participant.duplicate_deliveries, 0, "{report}");
        assert_eq!(participant.persistence_failures, 0, "{report}");
        assert!(participant.commits > 0);
    }
}

// 20% loss and two crash-restarts converge over the in-memory backend.
#[tokio::test]
async fn converges_on_memory() {
    let backend = Backend::open("memory://").await.unwrap();
    assert_converged(&run(lossy_config(), &backend).await);
}

// The same run converges over RocksDB, restarting from what was committed to disk.
#[cfg(feature = "rocksdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocksdb://{}", dir.path().display());
    let backend = Backend::open(&url).await.unwrap();
    assert_converged(&run(lossy_config(), &backend).await);
}

// A seed reproduces a run exactly.
#[tokio::test]
async fn same_seed_same_report() {
    let config = SimulationConfig {
        messages: 60,
        ..lossy_config()
    };
    let first = run(config.clone(), &Backend::open("memory://").await.unwrap()).await;
    let second = run(config, &Backend::open("memory://").await.unwrap()).await;
    assert_eq!(first, second);
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
        ..lossy_config()
    };
    config.network.loss = 0.3;
    let report = run(config, &Backend::open("memory://").await.unwrap()).await;
    assert!(!report.converged);
    assert!(!report.missing.is_empty());
    let text = report.to_string();
    assert!(text.contains("MISSING at participant-"), "{text}");
    assert!(text.contains("NOT CONVERGED"), "{text}");
}

// Parameters that cannot work are refused with a message.
#[tokio::test]
async fn invalid_parameters_are_refused() {
    let mut config = SimulationConfig::default();
    config.network.loss = 1.5;
    let err = Simulation::new(config, &Backend::open("memory://").await.unwrap()).unwrap_err();
    assert!(err.to_string().contains("loss"), "{err}");
}
