//! The suite against the byte-level reference backend (tests/support), which offers every
//! capability: one generated test per case, and a whole-suite run in which every case runs.

mod support;

use sds_persist_conformance::{CASES, conformance_tests, run_suite};
use support::BytesHarness;

conformance_tests!(BytesHarness::healthy());

/// Every case runs (no capability is missing) and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_runs_every_case_and_passes() {
    let report = run_suite(&BytesHarness::healthy()).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");
    assert_eq!(report.passed(), CASES.len(), "{report}");
    assert!(report.not_run_names().is_empty(), "{report}");
    assert!(
        report
            .cases
            .iter()
            .all(|case| case.cleanup_errors.is_empty()),
        "{report}"
    );
}
