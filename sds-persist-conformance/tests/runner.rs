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

#[test]
fn not_run_cases_are_listed_and_fail_under_require_all() {
    let (code, stdout, _) = runner(&["--backend", "memory://", "--filter", "corrupt_snapshot"]);
    assert_eq!(
        code,
        Some(1),
        "only a not-run case: nothing proven\n{stdout}"
    );
    assert!(stdout.contains("not run"), "{stdout}");
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
    let (code, stdout, _) = runner(&[
        "--backend",
        "memory://",
        "--filter",
        "drop_is_idempotent",
        "--filter",
        "corrupt_snapshot",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
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
