//! `sds inspect` and what `sds simulate` says about where it wrote, run as a user runs them:
//! listing, a channel that is not stored, a path with no database, read-only opening.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "rocksdb")]
use std::path::Path;
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

/// Exit status `code`, one `error: …` line on stderr containing `needle`, nothing on stdout.
fn assert_error(output: &Output, code: i32, needle: &str) {
    let stderr = text(&output.stderr);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_eq!(stdout, "", "nothing may be shown on stdout");
}

/// Every entry under `dir` with its size and modification time, sorted.
#[cfg(feature = "rocksdb")]
fn tree(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                metadata.len(),
                metadata.modified().unwrap(),
            )
        })
        .collect();
    entries.sort();
    entries
}

/// A converging simulation of `participants` participants that keeps its RocksDB
/// database in `dir`; returns its stdout.
#[cfg(feature = "rocksdb")]
fn simulate_into(dir: &Path, participants: usize) -> String {
    let output = sds(&[
        "simulate",
        "--dir",
        dir.to_str().unwrap(),
        "--participants",
        &participants.to_string(),
        "--messages",
        "12",
        "--restarts",
        "0",
        "--seed",
        "5",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    stdout
}

// With no channel named, inspect lists every namespace and its channels; with only a
// namespace, that namespace's.
#[cfg(feature = "rocksdb")]
#[test]
fn inspect_lists_namespaces_and_channels_when_none_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    simulate_into(&db, 3);
    let url = format!("rocksdb://{}", db.display());

    let output = sds(&["inspect", "--backend", &url]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.starts_with(&format!("{url}: 3 namespaces, 3 stored channels\n")),
        "{stdout}"
    );
    for n in 0..3 {
        assert!(
            stdout.contains(&format!(
                "namespace \"participant-{n}\": 1 channel\n  \"simulation\"\n"
            )),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("participant-3"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "show one with: sds inspect --backend {url} --namespace"
        )),
        "{stdout}"
    );

    let output = sds(&["inspect", "--backend", &url, "--namespace", "participant-1"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.starts_with(&format!("{url}: 1 namespace, 1 stored channel\n")),
        "{stdout}"
    );
    assert!(stdout.contains("namespace \"participant-1\""), "{stdout}");
    assert!(!stdout.contains("participant-0"), "{stdout}");

    let output = sds(&["inspect", "--backend", &url, "--namespace", "nobody"]);
    assert!(output.status.success());
    assert!(
        text(&output.stdout).contains("namespace \"nobody\" of"),
        "{}",
        text(&output.stdout)
    );
}

// Before: a channel that is not stored was printed as an empty channel (history 0) with
// exit 0. After: exit 1, one error line naming it and what the namespace holds instead.
#[cfg(feature = "rocksdb")]
#[test]
fn inspect_says_when_a_named_channel_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    simulate_into(&db, 2);
    let url = format!("rocksdb://{}", db.display());

    let output = sds(&[
        "inspect",
        "--backend",
        &url,
        "--namespace",
        "participant-0",
        "--channel",
        "simulatoin",
    ]);
    assert_error(
        &output,
        1,
        &format!(
            "channel \"simulatoin\" is not stored in namespace \"participant-0\" of {url}; \
             it holds \"simulation\""
        ),
    );
    let output = sds(&[
        "inspect",
        "--backend",
        &url,
        "--namespace",
        "participant-9",
        "--channel",
        "simulation",
    ]);
    assert_error(&output, 1, "the namespace holds no channel");

    // The stored one is shown, in full.
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
    assert!(stdout.contains("history (oldest first): 12"), "{stdout}");
}

// Before: `inspect --backend rocksdb:///typo` created an empty database there and reported
// success. After: exit 2 with one error line, and nothing is created, whether the path is
// missing, an empty directory, or a directory of other files.
#[cfg(feature = "rocksdb")]
#[test]
fn inspect_refuses_a_path_without_a_database_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo");
    let url = format!("rocksdb://{}", typo.display());
    assert_error(&sds(&["inspect", "--backend", &url]), 2, "no database at");
    assert_error(
        &sds(&[
            "inspect",
            "--backend",
            &url,
            "--namespace",
            "n",
            "--channel",
            "c",
        ]),
        2,
        "nothing was created",
    );
    assert!(!typo.exists(), "inspect created {}", typo.display());
    assert_eq!(tree(dir.path()), vec![]);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let url = format!("rocksdb://{}", empty.display());
    assert_error(&sds(&["inspect", "--backend", &url]), 2, "no database at");
    assert_eq!(tree(&empty), vec![]);

    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"hello").unwrap();
    let before = tree(&other);
    let url = format!("rocksdb://{}", other.display());
    assert_error(
        &sds(&["inspect", "--backend", &url]),
        2,
        "does not hold a RocksDB database",
    );
    assert_eq!(tree(&other), before);
}

// inspect opens the store read-only: it works while another process holds the database's
// write lock (a read-write open is refused as locked meanwhile), sees that process's
// latest acknowledged writes, and leaves every file of the database untouched.
#[cfg(feature = "rocksdb")]
#[test]
fn inspect_opens_the_store_read_only() {
    use sds::Persistence as _;
    use sds::conformance::cases::fixtures::{append, logged, meta_with_lamport};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let url = format!("rocksdb://{}", db.display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // This test process is the writer and keeps the database open throughout.
    let writer = sds::rocksdb::RocksDbPersistence::builder(&db)
        .namespace("node")
        .open()
        .unwrap();
    runtime
        .block_on(writer.commit(
            "room",
            Some(&meta_with_lamport(42)),
            Some(&append(vec![
                logged("room", "m1", 1),
                logged("room", "m2", 2),
            ])),
        ))
        .unwrap();

    assert_error(
        &sds(&["simulate", "--backend", &url, "--messages", "5"]),
        2,
        "locked",
    );

    let before = tree(&db);
    let output = sds(&["inspect", "--backend", &url]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("namespace \"node\": 1 channel\n  \"room\"\n"),
        "{}",
        text(&output.stdout)
    );
    let output = sds(&[
        "inspect",
        "--backend",
        &url,
        "--namespace",
        "node",
        "--channel",
        "room",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("lamport 42,"), "{stdout}");
    assert!(stdout.contains("history (oldest first): 2"), "{stdout}");
    assert_eq!(tree(&db), before, "inspect changed the database's files");
    drop(writer);
}

// memory:// keeps nothing between processes: inspect says so instead of listing nothing,
// and a named channel is not stored.
#[test]
fn inspect_on_memory_says_there_is_nothing_to_list() {
    let output = sds(&["inspect", "--backend", "memory://"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.starts_with("memory:// has nothing to list: an in-memory store lives only"),
        "{stdout}"
    );
    assert_error(
        &sds(&[
            "inspect",
            "--backend",
            "memory://",
            "--namespace",
            "a",
            "--channel",
            "b",
        ]),
        1,
        "channel \"b\" is not stored in namespace \"a\" of memory://",
    );
}

// simulate names the backend URL, the namespaces and the channel it wrote, after the
// verdict line (left intact), and the inspect command it prints works as printed.
#[cfg(feature = "rocksdb")]
#[test]
fn simulate_names_what_it_wrote_and_how_to_inspect_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let stdout = simulate_into(&db, 3);
    let url = format!("rocksdb://{}", db.display());
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.iter().any(|line| line.starts_with(
            "verdict: CONVERGED: every participant delivered all 12 messages in causal order"
        )),
        "{stdout}"
    );
    assert!(
        lines.contains(
            &format!(
                "stored in {url}: namespaces participant-0, participant-1, participant-2, \
             channel \"simulation\""
            )
            .as_str()
        ),
        "{stdout}"
    );
    let command = lines
        .iter()
        .find_map(|line| line.strip_prefix("inspect with: sds "))
        .unwrap_or_else(|| panic!("no inspect command in\n{stdout}"));
    let args: Vec<&str> = command.split(' ').collect();
    assert_eq!(
        args,
        [
            "inspect",
            "--backend",
            url.as_str(),
            "--namespace",
            "participant-0",
            "--channel",
            "simulation"
        ]
    );
    let output = sds(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("history (oldest first): 12"),
        "{}",
        text(&output.stdout)
    );
}

// A store that ends with the run is named too, with why it cannot be inspected; --json
// keeps stdout one JSON document and says it on stderr.
#[test]
fn simulate_says_when_what_it_wrote_is_gone() {
    let output = sds(&[
        "simulate",
        "--backend",
        "memory://",
        "--participants",
        "2",
        "--messages",
        "6",
        "--restarts",
        "0",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "stored in memory://: namespaces participant-0, participant-1, channel \"simulation\"\n\
             (in memory: gone when the run ends"
        ),
        "{stdout}"
    );

    #[cfg(feature = "rocksdb")]
    {
        let output = sds(&["simulate", "--messages", "6", "--restarts", "0"]);
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("stored in rocksdb://"), "{stdout}");
        assert!(
            stdout.contains("(a temporary directory, removed when the run ends; use --dir DIR"),
            "{stdout}"
        );
        assert!(!stdout.contains("inspect with:"), "{stdout}");
    }

    let output = sds(&[
        "simulate",
        "--backend",
        "memory://",
        "--messages",
        "6",
        "--restarts",
        "0",
        "--json",
    ]);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["converged"], true);
    assert!(
        text(&output.stderr).contains("stored in memory://: namespaces participant-0"),
        "{}",
        text(&output.stderr)
    );
}
