//! `sds bench` as a user runs it: `--quick --json` against each backend gives a well-formed
//! report with every workload beside a positive baseline ratio; a bad URL is a one-line
//! error. No timing is asserted: speed is what the command measures, not what it tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::{Command, Output};

use sds::bench::BenchReport;
use sds::bench::workloads::{PAYLOADS, PROFILES};
use sds::{Backend, BackendError};

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

/// Runs `sds bench --quick --json` against `url` and checks the report it prints.
fn quick_json_report(url: &str, kind: &str) -> BenchReport {
    let output = sds(&["bench", "--backend", url, "--quick", "--json"]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "sds bench --backend {url} failed: {}{stdout}",
        text(&output.stderr)
    );
    let report: BenchReport = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("stdout is not a bench report ({err}): {stdout}"));
    assert_eq!(report.kind, kind);
    assert!(report.quick);

    let cases: BTreeSet<(String, String)> = report
        .figures
        .iter()
        .map(|figure| (figure.workload.clone(), figure.case.clone()))
        .collect();
    let mut expected = BTreeSet::new();
    for profile in PROFILES {
        for payload in PAYLOADS {
            expected.insert(("commit".to_string(), format!("{}/{payload}B", profile.name)));
        }
    }
    for size in [1_000, 10_000] {
        expected.insert(("commit_history".to_string(), format!("{size} entries")));
    }
    for size in [100, 1_000, 10_000] {
        expected.insert(("load_channel".to_string(), format!("{size} entries")));
    }
    expected.insert(("drop_channel".to_string(), "1000 entries".to_string()));
    assert_eq!(cases, expected);
    assert_eq!(report.figures.len(), expected.len(), "one figure per case");

    for figure in &report.figures {
        let label = format!("{} {}", figure.workload, figure.case);
        assert!(figure.ratio > 0.0 && figure.ratio.is_finite(), "{label}");
        assert!(figure.backend.median_us > 0.0, "{label}");
        assert!(figure.baseline.median_us > 0.0, "{label}");
        assert!(figure.backend.samples > 0 && figure.baseline.samples > 0);
        assert!(figure.backend.min_us <= figure.backend.median_us);
        assert!(figure.backend.median_us <= figure.backend.p99_us);
        assert!(!figure.baseline_name.is_empty(), "{label}");
    }
    let flatness = report.flatness.as_ref().expect("a flatness ratio");
    assert_eq!((flatness.small, flatness.large), (1_000, 10_000));
    assert!(flatness.backend_ratio > 0.0 && flatness.baseline_ratio > 0.0);

    assert_eq!(report.snapshots.len(), PROFILES.len() * PAYLOADS.len());
    let idle = &report.snapshots[0];
    let worst = report.snapshots.last().unwrap();
    assert_eq!(
        (worst.outgoing, worst.incoming, worst.repairs),
        (50, 20, 50)
    );
    assert!(idle.encoded_bytes < worst.encoded_bytes);
    report
}

#[test]
fn quick_json_against_memory() {
    let report = quick_json_report("memory://", "memory");
    assert_eq!(report.durability, None);
}

#[cfg(feature = "rocksdb")]
#[test]
fn quick_json_against_rocksdb_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocksdb://{}/db", dir.path().display());
    let report = quick_json_report(&url, "rocksdb");
    assert_eq!(report.durability.as_deref(), Some("sync off"));
    assert!(report.server_version.is_some());

    // The run wrote into a namespace of its own and removed every channel of it; the
    // baseline's scratch directory is gone too.
    let listed = sds(&["inspect", "--backend", &url]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(
        !text(&listed.stdout).contains("sds-bench"),
        "{}",
        text(&listed.stdout)
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["db".to_string()]);
}

#[test]
fn table_output_names_every_workload() {
    let output = sds(&["bench", "--backend", "memory://", "--quick"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for needle in [
        "commit",
        "commit_history",
        "load_channel",
        "drop_channel",
        "pathological/1000B",
        "ratio",
        "encoded snapshot sizes",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
}

/// A server backend. A build without its feature reports that and passes; an unreachable
/// server fails (in CI and outside it).
fn server_backend(variable: &str, default: &str, kind: &str) {
    let url = std::env::var(variable).unwrap_or_else(|_| default.to_string());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match runtime.block_on(Backend::open(&url)) {
        Err(err @ BackendError::NotCompiled { .. }) => {
            eprintln!("{err}: sds bench leaves it out");
            return;
        }
        Err(err) => panic!("{variable}={url}: the {kind} server must be reachable: {err}"),
        Ok(_) => {}
    }
    let report = quick_json_report(&url, kind);
    assert!(
        report.server_version.is_some(),
        "{kind} reports its version"
    );
}

#[test]
fn quick_json_against_postgres() {
    server_backend(
        "SDS_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
        "postgres",
    );
}

#[test]
fn quick_json_against_redis() {
    server_backend("SDS_TEST_REDIS_URL", "redis://127.0.0.1:6379", "redis");
}

fn assert_clear_failure(url: &str, needle: &str) {
    let output = sds(&["bench", "--backend", url, "--quick"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
}

#[test]
fn bad_urls_are_clear_errors() {
    assert_clear_failure("not-a-url", "invalid backend URL");
    assert_clear_failure("mongodb://127.0.0.1", "unknown backend scheme");
}

#[cfg(feature = "rocksdb")]
#[test]
fn unknown_rocksdb_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert_clear_failure(
        &format!("rocksdb://{}/db?fsync=yes", dir.path().display()),
        "?sync=true or ?sync=false",
    );
}
