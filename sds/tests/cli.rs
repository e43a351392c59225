//! The `sds` binary as a user runs it: exit codes and one-line errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn sds(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sds"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the sds binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_one_line_error(output: &Output, needle: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

// A converging run exits 0 and prints the per-participant table and the verdict.
#[test]
fn simulate_converges_and_exits_zero() {
    let output = sds(&[
        "simulate",
        "--backend",
        "memory://",
        "--messages",
        "80",
        "--loss",
        "0.2",
        "--restarts",
        "2",
        "--seed",
        "3",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("participant-4"), "{stdout}");
    assert!(stdout.contains("verdict: CONVERGED"), "{stdout}");
}

// --json prints the summary as JSON.
#[test]
fn simulate_json() {
    let output = sds(&[
        "simulate",
        "--backend",
        "memory://",
        "--messages",
        "30",
        "--seed",
        "3",
        "--json",
    ]);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["converged"], true);
    assert_eq!(report["participants"].as_array().unwrap().len(), 5);
    assert_eq!(report["scenario"], "lossy");
    assert_eq!(report["protocol"], "default");
    assert_eq!(report["network"]["long_delay"], 0.1);
}

// --scenario picks a preset; the summary names it and its network figures.
#[test]
fn simulate_names_the_scenario_in_the_summary() {
    let output = sds(&[
        "simulate",
        "--backend",
        "memory://",
        "--scenario",
        "bursty",
        "--messages",
        "30",
        "--restarts",
        "0",
    ]);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("scenario bursty, protocol default"),
        "{stdout}"
    );
    assert!(stdout.contains("scenario bursty: loss 10%"), "{stdout}");
    assert!(stdout.contains("bursts of 80% loss"), "{stdout}");
    assert!(
        stdout.contains("converged") && stdout.contains("repairs: "),
        "{stdout}"
    );
}

// Explicit figures override the preset's, --protocol picks the timings, and the JSON
// summary carries the scenario, the network figures and the convergence figures.
#[test]
fn simulate_flags_override_the_preset() {
    let output = sds(&[
        "simulate",
        "--backend",
        "memory://",
        "--scenario",
        "partition-and-heal",
        "--loss",
        "0.1",
        "--long-delay",
        "0.2",
        "--partition-at-secs",
        "2",
        "--partition-secs",
        "5",
        "--protocol",
        "scaled",
        "--messages",
        "40",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["scenario"], "partition-and-heal");
    assert_eq!(report["scenario_overridden"], true);
    assert_eq!(report["protocol"], "scaled");
    assert_eq!(report["network"]["loss"], 0.1);
    assert_eq!(report["network"]["long_delay"], 0.2);
    assert_eq!(report["network"]["partition"]["start_ms"], 2_000);
    assert_eq!(report["network"]["partition"]["duration_ms"], 5_000);
    assert!(report["settle_ms"].is_u64(), "{report}");
    assert!(report["dropped"].is_u64(), "{report}");
    assert!(
        report["network_stats"]["cut_by_partition"]
            .as_u64()
            .unwrap()
            > 0
    );
}

// An unknown scenario is refused with the list of presets.
#[test]
fn simulate_refuses_an_unknown_scenario() {
    let output = sds(&["simulate", "--scenario", "calm"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("partition-and-heal"), "{stderr}");
}

// Without repair and resend a lossy run does not converge: exit 1, and it says which
// messages are missing where.
#[test]
fn simulate_reports_non_convergence() {
    let output = sds(&[
        "simulate",
        "--backend",
        "memory://",
        "--messages",
        "40",
        "--loss",
        "0.3",
        "--restarts",
        "0",
        "--no-repair",
        "--no-resend",
        "--settle-secs",
        "30",
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("MISSING at participant-"), "{stdout}");
    assert!(stdout.contains("NOT CONVERGED"), "{stdout}");
}

// An unknown scheme is a one-line error, no panic.
#[test]
fn unknown_scheme_is_one_line_error() {
    assert_one_line_error(
        &sds(&["simulate", "--backend", "nosuch://x"]),
        "unknown backend scheme",
    );
}

// A URL without a scheme is a one-line error.
#[test]
fn malformed_url_is_one_line_error() {
    assert_one_line_error(
        &sds(&[
            "inspect",
            "--backend",
            "just-a-path",
            "--namespace",
            "n",
            "--channel",
            "c",
        ]),
        "invalid backend URL",
    );
}

// A backend whose feature is not compiled in says which feature to enable.
#[cfg(not(feature = "redis"))]
#[test]
fn backend_not_compiled_in_is_one_line_error() {
    assert_one_line_error(
        &sds(&["simulate", "--backend", "redis://127.0.0.1:6379"]),
        "--features redis",
    );
}

// A RocksDB path that cannot be a database is a one-line error.
#[cfg(feature = "rocksdb")]
#[test]
fn unusable_rocksdb_path_is_one_line_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let url = format!("rocksdb://{}/db", file.path().display());
    assert_one_line_error(&sds(&["simulate", "--backend", &url]), "could not open");
}

// inspect prints a stored channel in readable form.
#[cfg(feature = "rocksdb")]
#[test]
fn inspect_prints_a_stored_channel() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocksdb://{}", dir.path().display());
    let run = sds(&[
        "simulate",
        "--backend",
        &url,
        "--messages",
        "20",
        "--restarts",
        "0",
    ]);
    assert!(run.status.success(), "{}", text(&run.stdout));
    let output = sds(&[
        "inspect",
        "--backend",
        &url,
        "--namespace",
        "participant-0",
        "--channel",
        "simulation",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("history (oldest first): 20"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "schema version {},",
            sds::codec::storage::SCHEMA_VERSION
        )),
        "{stdout}"
    );
}

// The conformance subcommand runs the whole suite against the in-memory backend.
#[test]
fn conformance_on_memory_passes() {
    let output = sds(&["conformance", "--backend", "memory://"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("history_loads_in_lamport_then_id_order"),
        "{stdout}"
    );
}

// Asking for a backend whose feature is missing fails instead of passing vacuously.
#[cfg(not(feature = "redis"))]
#[test]
fn conformance_on_missing_backend_fails() {
    assert_one_line_error(
        &sds(&["conformance", "--backend", "redis://127.0.0.1:6379"]),
        "--features redis",
    );
}
