//! The `sds-conformance` command-line runner, run as a process.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn runner(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sds-conformance"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn memory_backend_prints_a_passing_table() {
    let (code, stdout, stderr) = runner(&[
        "--backend",
        "memory://",
        "--filter",
        "history/",
        "--filter",
        "hints/",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("backend: memory"), "{stdout}");
    assert!(
        stdout.contains("history/evict_removes_exactly_the_named_ids"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hints/hint_of_an_evicted_message_is_gone"),
        "{stdout}"
    );
    assert!(
        stdout.contains("11 passed, 0 failed, 0 not run"),
        "{stdout}"
    );
    assert!(!stdout.contains("roundtrip/"), "{stdout}");
}

/// A case needing a capability the memory harness declares absent is listed by name with
/// the capability and the declared reason, in the table and on stderr; it is never counted
/// as passed, and a run of only such cases proves nothing and fails.
#[test]
fn not_run_cases_are_named_with_their_missing_capability() {
    let (code, stdout, stderr) =
        runner(&["--backend", "memory://", "--filter", "corrupt_snapshot"]);
    assert_eq!(
        code,
        Some(1),
        "only a not-run case: nothing proven\n{stdout}"
    );
    assert!(stdout.contains("0 passed, 0 failed, 1 not run"), "{stdout}");
    assert!(
        stdout.contains("declared absent: raw-writes (the in-memory backend keeps decoded values"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "NOT RUN corrupt_snapshot_fails_bootstrap_as_corrupt: needs raw-writes, declared absent:"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "NOT RUN: load_failures/corrupt_snapshot_fails_bootstrap_as_corrupt: needs raw-writes"
        ),
        "{stderr}"
    );

    // Next to a case that runs and passes, the run succeeds and still names the absence…
    let (code, stdout, stderr) = runner(&[
        "--backend",
        "memory://",
        "--filter",
        "drop_is_idempotent",
        "--filter",
        "corrupt_snapshot",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("1 passed, 0 failed, 1 not run"), "{stdout}");
    assert!(
        stderr.contains("NOT RUN: load_failures/corrupt_snapshot"),
        "{stderr}"
    );
    // …and --require-all makes any declared absence a failure.
    let (code, stdout, _) = runner(&[
        "--backend",
        "memory://",
        "--filter",
        "drop_is_idempotent",
        "--filter",
        "corrupt_snapshot",
        "--require-all",
    ]);
    assert_eq!(code, Some(1), "{stdout}");
}

/// Every case whose capability the memory harness offers runs: the whole suite's not-run
/// cases are exactly those needing raw-writes or unreachable.
#[test]
fn whole_memory_run_does_not_run_only_declared_absences() {
    let (code, stdout, stderr) = runner(&["--backend", "memory://", "--filter", "load_failures/"]);
    assert_eq!(
        code,
        Some(1),
        "load_failures has no case memory can run\n{stdout}"
    );
    let not_run: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("NOT RUN: "))
        .collect();
    assert_eq!(not_run.len(), 4, "{stderr}");
    assert!(
        not_run
            .iter()
            .all(|line| line.contains("needs raw-writes") || line.contains("needs unreachable")),
        "{stderr}"
    );
}

#[test]
fn backends_not_built_in_are_unavailable_not_passing() {
    for url in [
        "rocksdb:///tmp/sds",
        "postgres://127.0.0.1/test",
        "redis://127.0.0.1:6379",
    ] {
        let (code, stdout, stderr) = runner(&["--backend", url]);
        assert_eq!(code, Some(2), "{url}: {stdout}{stderr}");
        assert!(
            stderr.contains("unavailable: backend not built in this crate yet"),
            "{stderr}"
        );
        assert!(!stdout.contains("passed"), "{stdout}");
    }
    let (code, _, stderr) = runner(&["--backend", "ftp://nowhere"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown backend scheme"), "{stderr}");
}

#[test]
fn no_matching_case_is_a_failure() {
    let (code, _, stderr) = runner(&["--backend", "memory://", "--filter", "no-such-case"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no case matched"), "{stderr}");
}

#[test]
fn list_names_every_case() {
    let (code, stdout, _) = runner(&["--list"]);
    assert_eq!(code, Some(0));
    for case in sds_persist_conformance::CASES {
        assert!(
            stdout.contains(&format!("{}/{}", case.group, case.name)),
            "{}",
            case.name
        );
    }
}
