//! The suite's own machinery: how harness failures, panics, missing capabilities and
//! strict mode are reported, and that the catalog's docs match the case functions.

use async_trait::async_trait;
use sds_core::persistence::memory::MemoryPersistence;
use sds_persist_conformance::__private::run_test_notice;
use sds_persist_conformance::{
    CASES, Capabilities, CaseStatus, Harness, HarnessError, MemoryHarness, case_info, run_selected,
};

/// The memory harness with a twist.
#[derive(Debug, Clone, Copy)]
enum Twist {
    /// `open` fails.
    OpenFails,
    /// `open` panics.
    OpenPanics,
    /// Declares every capability and implements none beyond the memory harness's.
    OverDeclares,
}

struct Twisted {
    inner: MemoryHarness,
    twist: Twist,
}

impl Twisted {
    fn new(twist: Twist) -> Self {
        Twisted {
            inner: MemoryHarness::new(),
            twist,
        }
    }
}

#[async_trait]
impl Harness for Twisted {
    type Backend = MemoryPersistence;

    fn name(&self) -> String {
        format!("memory {:?}", self.twist)
    }

    fn capabilities(&self) -> Capabilities {
        match self.twist {
            Twist::OverDeclares => Capabilities::ALL,
            _ => self.inner.capabilities(),
        }
    }

    async fn open(&self) -> Result<MemoryPersistence, HarnessError> {
        match self.twist {
            Twist::OpenFails => Err(HarnessError::failed("no database today")),
            Twist::OpenPanics => panic!("the harness fell over"),
            Twist::OverDeclares => self.inner.open().await,
        }
    }

    async fn open_sibling(
        &self,
        of: &MemoryPersistence,
    ) -> Result<MemoryPersistence, HarnessError> {
        self.inner.open_sibling(of).await
    }

    async fn reopen(&self, of: &MemoryPersistence) -> Result<MemoryPersistence, HarnessError> {
        self.inner.reopen(of).await
    }

    async fn abort_next_commit_after_meta(
        &self,
        backend: &MemoryPersistence,
    ) -> Result<(), HarnessError> {
        self.inner.abort_next_commit_after_meta(backend).await
    }
}

fn message(status: &CaseStatus) -> &str {
    match status {
        CaseStatus::Failed { message } => message,
        CaseStatus::NotRun { reason, .. } => reason,
        CaseStatus::Passed => "",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harness_that_cannot_open_fails_every_case_it_reaches() {
    let report = run_selected(&Twisted::new(Twist::OpenFails), |case| {
        case.group == "roundtrip"
    })
    .await;
    assert!(!report.is_success());
    assert_eq!(report.failed(), report.cases.len());
    for case in &report.cases {
        assert!(
            message(&case.status).contains("harness open: harness failure: no database today"),
            "{}: {:?}",
            case.name,
            case.status
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_case_is_a_failure_not_a_crash() {
    let report = run_selected(&Twisted::new(Twist::OpenPanics), |case| {
        case.group == "hints"
    })
    .await;
    assert_eq!(report.failed(), 3, "{report}");
    for case in &report.cases {
        let text = message(&case.status);
        assert!(
            text.contains("panicked") && text.contains("the harness fell over"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_but_missing_capability_fails_instead_of_skipping() {
    let report = run_selected(&Twisted::new(Twist::OverDeclares), |case| {
        case.group == "load_failures"
    })
    .await;
    assert_eq!(report.not_run(), 0, "{report}");
    assert_eq!(report.failed(), 4, "{report}");
    for case in &report.cases {
        assert!(
            message(&case.status).contains("declares the"),
            "{}: {:?}",
            case.name,
            case.status
        );
    }
}

/// A case needing a capability the harness declares absent is not run, and its notice
/// names the case, the capability and the declared reason; a case needing nothing absent
/// runs and passes with no notice.
#[test]
fn not_run_only_for_a_declared_absence_and_named() {
    let case = "corrupt_snapshot_fails_bootstrap_as_corrupt";
    let notice = run_test_notice(case, async { MemoryHarness::new() })
        .unwrap()
        .unwrap();
    assert!(notice.starts_with("NOT RUN: "), "{notice}");
    assert!(
        notice.contains(case)
            && notice.contains("needs raw-writes, declared absent:")
            && notice.contains("no stored bytes to corrupt"),
        "{notice}"
    );
    assert_eq!(
        run_test_notice("drop_is_idempotent", async { MemoryHarness::new() }),
        Ok(None)
    );
    assert!(run_test_notice("no_such_case", async { MemoryHarness::new() }).is_err());
}

/// Declaring a capability offered makes the cases needing it run (and here fail, since
/// the twisted harness does not implement it): nothing is skipped without a declaration.
#[test]
fn an_offered_capability_always_runs_its_cases() {
    let case = "corrupt_snapshot_fails_bootstrap_as_corrupt";
    let err = run_test_notice(case, async { Twisted::new(Twist::OverDeclares) }).unwrap_err();
    assert!(err.contains("declares the raw-writes capability"), "{err}");
}

/// Every catalog row names a function in `src/cases/<group>.rs` whose doc comment is
/// exactly the row's doc line, so the table and the code cannot drift apart.
#[test]
fn catalog_docs_match_the_case_functions() {
    let mut groups = std::collections::BTreeSet::new();
    for case in CASES {
        groups.insert(case.group);
        let path = format!("{}/src/cases/{}.rs", env!("CARGO_MANIFEST_DIR"), case.group);
        let source = std::fs::read_to_string(&path).unwrap();
        let needle = format!("/// {}\npub async fn {}<H: Harness>(", case.doc, case.name);
        assert!(
            source.contains(&needle),
            "{path} has no `{}` with the doc line {:?}",
            case.name,
            case.doc
        );
        assert_eq!(case_info(case.name), Some(case));
    }
    // And no case function is missing from the table.
    for group in groups {
        let path = format!("{}/src/cases/{group}.rs", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).unwrap();
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ") {
                let name = rest.split('<').next().unwrap();
                assert!(
                    CASES.iter().any(|case| case.name == name),
                    "{path}: {name} is not in the catalog"
                );
            }
        }
    }
}
