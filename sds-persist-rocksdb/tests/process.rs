//! Tests that need a second process: crash consistency under SIGKILL, a lock held by another
//! process, and a directory the process may not read.
//!
//! The test binary re-executes itself as the child: it runs only `child_process_entry`,
//! which does nothing unless `SDS_ROCKSDB_TEST_CHILD` names a role. Parent and child talk in
//! lines on the child's stdout ("START n", "ACK i", "READY", …).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use sds_codec::storage::{
    ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage, OutgoingEntry, encode_buffered_message,
};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::Persistence;
use sds_persist_rocksdb::{RocksDbError, RocksDbPersistence};

const CHILD_ROLE: &str = "SDS_ROCKSDB_TEST_CHILD";
const CHILD_PATH: &str = "SDS_ROCKSDB_TEST_PATH";
const CHILD_TEST: &str = "child_process_entry";
const CHANNEL: &str = "crash-channel";
const NAMESPACE: &str = "crash-node";

/// Messages of the last `WINDOW` operations stay in the history; older ones are evicted.
const WINDOW: u64 = 10;
/// How many kills the crash test performs.
const KILLS: usize = 30;
/// The most operations one child commits before exiting on its own.
const MAX_OPS_PER_CHILD: u64 = 2_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------
// The operation sequence of the crash test: operation i is fully determined by i.

fn logged(id: String, lamport: u64, size: usize) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            sender_id: "crash-sender".into(),
            message_id: id,
            channel_id: CHANNEL.into(),
            lamport_timestamp: Some(lamport),
            // Varied, multi-kilobyte payloads make every batch span several WAL blocks.
            content: Some(vec![b'x'; size]),
            ..Default::default()
        }),
        retrieval_hint: None,
    }
}

fn payload_size(i: u64) -> usize {
    // Deterministic spread between 64 B and ~12 KiB.
    64 + usize::try_from(i.wrapping_mul(7_919) % 12_000).expect("small")
}

fn message_pair(i: u64) -> [LoggedMessage; 2] {
    [
        logged(format!("m{i:06}a"), i + 1, payload_size(i)),
        logged(format!("m{i:06}b"), i + 1, payload_size(i + 1)),
    ]
}

/// The snapshot after operation i: lamport i + 1 and the last three sent messages.
fn meta_after(i: u64) -> ChannelMeta {
    ChannelMeta {
        lamport: i + 1,
        outgoing: (i.saturating_sub(2)..=i)
            .map(|k| OutgoingEntry {
                message: message_pair(k)[0]
                    .message
                    .as_ref()
                    .map(encode_buffered_message)
                    .unwrap_or_default(),
                sent_at_ms: i64::try_from(k).expect("small"),
                resend_attempts: 0,
                possible_acks: 0,
            })
            .collect(),
        ..ChannelMeta::empty()
    }
}

/// Operation i: save the new snapshot, append two messages, evict those of operation
/// i - WINDOW.
fn operation(i: u64) -> (ChannelMeta, HistoryUpdate) {
    let evict = match i.checked_sub(WINDOW) {
        Some(old) => message_pair(old)
            .iter()
            .map(|row| row.message_id().to_owned())
            .collect(),
        None => Vec::new(),
    };
    (
        meta_after(i),
        HistoryUpdate {
            append: message_pair(i).to_vec(),
            evict,
        },
    )
}

/// The stored state once the first `applied` operations are committed.
fn expected_state(applied: u64) -> ChannelData {
    let Some(last) = applied.checked_sub(1) else {
        return ChannelData::empty();
    };
    let first = (last + 1).saturating_sub(WINDOW);
    ChannelData {
        meta: Some(meta_after(last)),
        history: (first..=last).flat_map(message_pair).collect(),
    }
}

/// How many operations a loaded state says were applied (the snapshot's lamport).
fn applied_count(data: &ChannelData) -> u64 {
    data.meta.as_ref().map_or(0, |meta| meta.lamport)
}

// ---------------------------------------------------------------------------------------
// The child side.

/// Entry point of the re-executed child; a no-op in a normal test run.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let path = std::env::var(CHILD_PATH).expect("child needs a path");
    match role.as_str() {
        "crash" => crash_child(Path::new(&path)),
        "hold-lock" => hold_lock_child(Path::new(&path)),
        "permission" => permission_child(Path::new(&path)),
        other => panic!("unknown child role {other:?}"),
    }
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(format!("{line}\n").as_bytes())
        .expect("write to parent");
    stdout.flush().expect("flush to parent");
}

fn crash_child(path: &Path) {
    let db = RocksDbPersistence::builder(path)
        .namespace(NAMESPACE)
        .sync_writes(true)
        .open()
        .expect("child opens the database");
    runtime().block_on(async {
        let loaded = db.load_channel(CHANNEL).await.expect("child loads");
        let start = applied_count(&loaded);
        say(&format!("START {start}"));
        for i in start..start + MAX_OPS_PER_CHILD {
            let (meta, update) = operation(i);
            db.commit(CHANNEL, Some(&meta), Some(&update))
                .await
                .expect("child commits");
            say(&format!("ACK {i}"));
        }
    });
}

fn hold_lock_child(path: &Path) {
    let _db = RocksDbPersistence::builder(path)
        .open()
        .expect("child opens the database");
    say("READY");
    // Hold the database until the parent closes our stdin.
    let mut sink = Vec::new();
    std::io::stdin()
        .read_to_end(&mut sink)
        .expect("read stdin to EOF");
}

fn permission_child(path: &Path) {
    let err = RocksDbPersistence::builder(path)
        .open()
        .expect_err("an unreadable directory must not open");
    assert!(
        matches!(err, RocksDbError::PermissionDenied { .. }),
        "expected PermissionDenied, got {err:?}"
    );
    say("PERMISSION-DENIED-OK");
}

// ---------------------------------------------------------------------------------------
// The parent side.

fn spawn_child(role: &str, path: &Path, program: Option<&[&str]>) -> Child {
    let exe = std::env::current_exe().expect("own test binary");
    let mut command = match program {
        // Run the test binary under a wrapper (e.g. setpriv with its options).
        Some([wrapper, args @ ..]) => {
            let mut command = Command::new(wrapper);
            command.args(args).arg(&exe);
            command
        }
        _ => Command::new(&exe),
    };
    command
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role)
        .env(CHILD_PATH, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

fn child_stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// The next protocol line from the child, skipping the test harness's own output; `None`
/// at end of stream.
fn next_line(lines: &mut std::io::Lines<BufReader<ChildStdout>>) -> Option<String> {
    for line in lines.by_ref() {
        let line = line.expect("read child stdout");
        // The harness prints "test child_process_entry ... " without a newline, so the first
        // protocol word may sit at the end of its line.
        let found = ["START ", "ACK ", "READY", "PERMISSION-DENIED-OK"]
            .iter()
            .filter_map(|word| line.find(word))
            .min();
        if let Some(at) = found {
            return Some(line[at..].to_owned());
        }
    }
    None
}

fn parse_number(line: &str, word: &str) -> Option<u64> {
    line.strip_prefix(word)?.trim().parse().ok()
}

/// SplitMix64: a tiny seeded generator, so a failing run can be replayed from its seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn load_in_parent(path: &Path) -> ChannelData {
    let db = RocksDbPersistence::builder(path)
        .namespace(NAMESPACE)
        .open()
        .expect("reopen after kill");
    runtime()
        .block_on(db.load_channel(CHANNEL))
        .expect("load after kill")
}

#[test]
fn crash_consistency_under_sigkill() {
    let seed = std::env::var("SDS_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5d5_c0de_u64);
    eprintln!("crash test seed {seed} (set SDS_CRASH_SEED to replay)");
    let mut rng = SplitMix64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");

    // Operations applied, as verified after the previous kill.
    let mut applied = 0u64;
    let mut kills = 0usize;
    let mut killed_before_start = 0usize;
    let mut kills_after_write_before_ack = 0usize;
    let mut max_acks_in_one_run = 0u64;

    for cycle in 0..KILLS {
        let mut child = spawn_child("crash", &path, None);
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();

        // One cycle in six kills the child at once: during start-up, WAL replay, open.
        let immediate = rng.below(6) == 0;
        let target = 1 + rng.below(40);
        let mut last_ack: Option<u64> = None;
        if immediate {
            killed_before_start += 1;
        } else {
            let start_line = next_line(&mut lines).unwrap_or_else(|| {
                panic!(
                    "cycle {cycle}: child died before START:\n{}",
                    child_stderr(&mut child)
                )
            });
            let start = parse_number(&start_line, "START ").expect("START n");
            assert_eq!(
                start, applied,
                "cycle {cycle}: child resumed from another state"
            );
            let mut acks = 0;
            while acks < target {
                let Some(line) = next_line(&mut lines) else {
                    panic!(
                        "cycle {cycle}: child exited after {acks} acks:\n{}",
                        child_stderr(&mut child)
                    );
                };
                last_ack = Some(parse_number(&line, "ACK ").expect("ACK i"));
                acks += 1;
            }
            // Move the kill to a random point inside the next commit.
            let mut spin = 0u64;
            for _ in 0..rng.below(300_000) {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
        }
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        assert!(
            !status.success(),
            "cycle {cycle}: child was not killed: {status}"
        );
        kills += 1;

        // Acks the child printed before it died but we had not read yet count too.
        while let Some(line) = next_line(&mut lines) {
            if let Some(i) = parse_number(&line, "ACK ") {
                last_ack = Some(i);
            }
        }
        let acked = last_ack.map_or(applied, |i| i + 1);
        if let Some(i) = last_ack {
            max_acks_in_one_run = max_acks_in_one_run.max(i + 1 - applied);
        }

        let loaded = load_in_parent(&path);
        let found = applied_count(&loaded);
        assert!(
            found == acked || found == acked + 1,
            "cycle {cycle}: {found} operations survived, but {acked} were acknowledged \
             (an acknowledged operation was lost or the state jumped ahead)"
        );
        if found == acked + 1 {
            // The kill landed after the write and before the ACK reached us.
            kills_after_write_before_ack += 1;
        }
        assert!(
            loaded == expected_state(found),
            "cycle {cycle}: state is not exactly the state after operation {found}: torn commit \
             (meta lamport {found}, history ids {:?})",
            loaded
                .history
                .iter()
                .map(|row| row.message_id().to_owned())
                .collect::<Vec<_>>()
        );
        applied = found;
    }

    eprintln!(
        "crash test: {kills} kills ({killed_before_start} during start-up), {applied} operations \
         committed in total, at most {max_acks_in_one_run} acked in one run, \
         {kills_after_write_before_ack} kills between write and ack"
    );
    assert!(kills >= 20);
    assert!(applied > 0, "no operation ever committed");
}

#[test]
fn a_lock_held_by_another_process_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let mut child = spawn_child("hold-lock", &path, None);
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = next_line(&mut lines);
    assert_eq!(
        ready.as_deref(),
        Some("READY"),
        "child did not open the database:\n{}",
        child_stderr(&mut child)
    );

    let err = RocksDbPersistence::builder(&path)
        .open()
        .expect_err("the database is held by the child");
    assert!(matches!(err, RocksDbError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked"), "{err}");

    // Closing the child's stdin lets it exit and release the lock.
    drop(child.stdin.take());
    let status = child.wait().expect("reap the child");
    assert!(
        status.success(),
        "child failed: {}",
        child_stderr(&mut child)
    );
    RocksDbPersistence::builder(&path)
        .open()
        .expect("open once the other process is gone");
}

/// Restores a directory's permissions when dropped, so the temporary directory can be
/// removed even when the test fails.
struct RestorePermissions<'a>(&'a Path);

impl Drop for RestorePermissions<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o700));
    }
}

/// An unreadable directory gives `PermissionDenied`. Root bypasses file permissions
/// (CAP_DAC_OVERRIDE), so when this test runs privileged it checks through a child that runs
/// without those capabilities (`setpriv --bounding-set`); it fails, rather than passing
/// silently, if it cannot drop them.
#[test]
fn an_unreadable_directory_is_a_typed_error() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("unreadable");
    std::fs::create_dir(&path).expect("create dir");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let _restore = RestorePermissions(&path);

    if std::fs::read_dir(&path).is_err() {
        // Unprivileged: the permission bits apply to us directly.
        permission_child(&path);
        return;
    }

    let wrapper = [
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search",
        "--inh-caps=-dac_override,-dac_read_search",
    ];
    let mut child = spawn_child("permission", &path, Some(&wrapper));
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let verdict = next_line(&mut lines);
    let status = child.wait().expect("reap the child");
    assert!(
        status.success() && verdict.as_deref() == Some("PERMISSION-DENIED-OK"),
        "running privileged, the check needs a child without CAP_DAC_OVERRIDE via setpriv; \
         it did not succeed ({status}):\n{}",
        child_stderr(&mut child)
    );
}
