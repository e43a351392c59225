//! The suite against `sds-core`'s in-memory backend: one generated test per case, plus
//! the whole-suite report.

use sds_persist_conformance::{MemoryHarness, conformance_tests, run_suite};

conformance_tests!(MemoryHarness::new());

/// The whole suite is green, and exactly the cases needing capabilities the in-memory
/// harness lacks (raw bytes, an unreachable server) are reported as not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_is_green_and_says_what_did_not_run() {
    let report = run_suite(&MemoryHarness::new()).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");
    assert_eq!(report.failed(), 0, "{report}");
    assert_eq!(
        report.not_run_names(),
        [
            "unreachable_backend_fails_bootstrap_as_unavailable",
            "corrupt_snapshot_fails_bootstrap_as_corrupt",
            "unknown_schema_version_fails_bootstrap",
            "corrupt_history_row_fails_bootstrap_as_corrupt",
            "cut_or_flipped_snapshot_fails_bootstrap_as_corrupt",
            "cut_or_flipped_history_row_fails_bootstrap_as_corrupt",
            "version_one_values_still_load",
        ],
        "{report}"
    );
    assert_eq!(
        report.passed() + report.not_run(),
        sds_persist_conformance::CASES.len()
    );
}
