//! The outcome of a run: one row per case, and a table for people.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::harness::Capabilities;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseStatus {
    /// The backend did what the case proves.
    Passed,
    /// The backend broke the contract (or the case panicked, or the harness failed).
    Failed {
        /// What was expected and what was found.
        message: String,
    },
    /// The case needs a capability the harness (or the backend) declares absent; it proves
    /// nothing about the backend. No other reason makes a case not run.
    NotRun {
        /// The missing capability's name, e.g. `raw-writes`.
        capability: String,
        /// Why it is absent, as declared.
        reason: String,
    },
}

impl CaseStatus {
    /// A short label: `pass`, `FAIL` or `not run`.
    pub fn label(&self) -> &'static str {
        match self {
            CaseStatus::Passed => "pass",
            CaseStatus::Failed { .. } => "FAIL",
            CaseStatus::NotRun { .. } => "not run",
        }
    }
}

/// One case's outcome.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// The case's group (its module), e.g. `history`.
    pub group: &'static str,
    /// The case's name, e.g. `history_loads_in_lamport_then_id_order`.
    pub name: &'static str,
    /// What the case proves, in one line.
    pub doc: &'static str,
    /// How it ended.
    pub status: CaseStatus,
    /// How long it took (reported, never asserted).
    pub duration: Duration,
    /// Clean-up failures after the case, if any (they do not change the status).
    pub cleanup_errors: Vec<String>,
}

impl CaseReport {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.status == CaseStatus::Passed
    }

    /// Whether the case failed.
    pub fn failed(&self) -> bool {
        matches!(self.status, CaseStatus::Failed { .. })
    }

    /// Whether the case did not run.
    pub fn not_run(&self) -> bool {
        matches!(self.status, CaseStatus::NotRun { .. })
    }
}

/// The outcome of running the suite against one backend.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// The backend's name, from the harness.
    pub backend: String,
    /// What the harness declared offered and absent.
    pub capabilities: Capabilities,
    /// One row per case run, in catalog order.
    pub cases: Vec<CaseReport>,
    /// The whole run's duration.
    pub duration: Duration,
}

impl SuiteReport {
    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|case| case.passed()).count()
    }

    /// How many cases failed.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|case| case.failed()).count()
    }

    /// How many cases did not run.
    pub fn not_run(&self) -> usize {
        self.cases.iter().filter(|case| case.not_run()).count()
    }

    /// True when no case failed and at least one ran: a run of zero cases proves nothing
    /// and is not a success.
    pub fn is_success(&self) -> bool {
        self.failed() == 0 && self.passed() > 0
    }

    /// The failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases.iter().filter(|case| case.failed())
    }

    /// The row of the case called `name`, if it was run.
    pub fn case(&self, name: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|case| case.name == name)
    }

    /// The names of the failed cases, in catalog order.
    pub fn failed_names(&self) -> Vec<&'static str> {
        self.failures().map(|case| case.name).collect()
    }

    /// The names of the cases that did not run, in catalog order.
    pub fn not_run_names(&self) -> Vec<&'static str> {
        self.cases
            .iter()
            .filter(|case| case.not_run())
            .map(|case| case.name)
            .collect()
    }

    /// The report as a plain-text table, followed by the failure messages and the reasons
    /// cases did not run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let offered: Vec<&str> = self
            .capabilities
            .offered()
            .map(|capability| capability.name())
            .collect();
        let absent: Vec<String> = self
            .capabilities
            .absent()
            .map(|(capability, reason)| format!("{capability} ({reason})"))
            .collect();
        let _ = writeln!(
            out,
            "backend: {}   capabilities: {}   declared absent: {}",
            self.backend,
            list_or_none(&offered),
            list_or_none(&absent),
        );
        let name_width = self
            .cases
            .iter()
            .map(|case| case.group.len() + 1 + case.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:<name_width$}  {:<7}  {:>10}",
            "case", "status", "duration"
        );
        let _ = writeln!(out, "{}", "-".repeat(name_width + 21));
        for case in &self.cases {
            let _ = writeln!(
                out,
                "{:<name_width$}  {:<7}  {:>10}",
                format!("{}/{}", case.group, case.name),
                case.status.label(),
                format_duration(case.duration),
            );
        }
        let _ = writeln!(out, "{}", "-".repeat(name_width + 21));
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} not run, in {}",
            self.passed(),
            self.failed(),
            self.not_run(),
            format_duration(self.duration)
        );
        let failures: Vec<&CaseReport> = self.failures().collect();
        if !failures.is_empty() {
            let _ = writeln!(out, "\nfailures:");
            for case in failures {
                if let CaseStatus::Failed { message } = &case.status {
                    let _ = writeln!(out, "  {}: {message}", case.name);
                }
            }
        }
        let not_run: Vec<&CaseReport> = self.cases.iter().filter(|case| case.not_run()).collect();
        if !not_run.is_empty() {
            let _ = writeln!(
                out,
                "\nnot run, for a capability declared absent (these prove nothing about the backend):"
            );
            for case in not_run {
                if let CaseStatus::NotRun { capability, reason } = &case.status {
                    let _ = writeln!(
                        out,
                        "  NOT RUN {}: needs {capability}, declared absent: {reason}",
                        case.name
                    );
                }
            }
        }
        let cleanup: Vec<&CaseReport> = self
            .cases
            .iter()
            .filter(|case| !case.cleanup_errors.is_empty())
            .collect();
        if !cleanup.is_empty() {
            let _ = writeln!(out, "\nclean-up failures:");
            for case in cleanup {
                let _ = writeln!(out, "  {}: {}", case.name, case.cleanup_errors.join("; "));
            }
        }
        out
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.table())
    }
}

fn list_or_none<T: AsRef<str>>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A duration as milliseconds with one decimal, or seconds past ten seconds.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10_000.0 {
        format!("{millis:.1} ms")
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Capability;

    fn row(name: &'static str, status: CaseStatus) -> CaseReport {
        CaseReport {
            group: "g",
            name,
            doc: "",
            status,
            duration: Duration::from_millis(3),
            cleanup_errors: Vec::new(),
        }
    }

    fn report(cases: Vec<CaseReport>) -> SuiteReport {
        SuiteReport {
            backend: "test".into(),
            capabilities: Capabilities::ALL
                .without(Capability::Unreachable, "no server")
                .without(Capability::AbortCommitAfterMeta, "no transactions"),
            cases,
            duration: Duration::from_millis(9),
        }
    }

    #[test]
    fn zero_cases_run_is_not_a_success() {
        assert!(!report(vec![]).is_success());
        let only_skipped = report(vec![row(
            "a",
            CaseStatus::NotRun {
                capability: "unreachable".into(),
                reason: "no server".into(),
            },
        )]);
        assert!(!only_skipped.is_success());
        assert_eq!(only_skipped.not_run_names(), ["a"]);
    }

    #[test]
    fn one_failure_fails_the_run() {
        let run = report(vec![
            row("a", CaseStatus::Passed),
            row(
                "b",
                CaseStatus::Failed {
                    message: "expected 1, found 2".into(),
                },
            ),
        ]);
        assert!(!run.is_success());
        assert_eq!(run.failed_names(), ["b"]);
        let table = run.table();
        assert!(table.contains("g/b"), "{table}");
        assert!(table.contains("FAIL"), "{table}");
        assert!(table.contains("b: expected 1, found 2"), "{table}");
        assert!(
            table.contains(
                "capabilities: raw-writes   declared absent: unreachable (no server), \
                 abort-commit-after-meta (no transactions)"
            ),
            "{table}"
        );
        assert!(table.contains("1 passed, 1 failed, 0 not run"), "{table}");
    }

    #[test]
    fn passing_run_lists_not_run_reasons() {
        let run = report(vec![
            row("a", CaseStatus::Passed),
            row(
                "c",
                CaseStatus::NotRun {
                    capability: "unreachable".into(),
                    reason: "no server".into(),
                },
            ),
        ]);
        assert!(run.is_success());
        let table = run.table();
        assert!(
            table.contains("NOT RUN c: needs unreachable, declared absent: no server"),
            "{table}"
        );
        assert!(table.contains("1 passed, 0 failed, 1 not run"), "{table}");
    }
}
