//! `cargo xtask bench-report`: runs `sds bench --json` against every backend and writes
//! `BENCHMARKS.md` with its charts.
//!
//! The backends, in order: `memory://`, RocksDB without and with fsync (in
//! `target/bench-report/rocksdb`), PostgreSQL and Redis at `SDS_BENCH_POSTGRES_URL` /
//! `SDS_BENCH_REDIS_URL` (else `SDS_TEST_*`, else the local defaults), and a three-master
//! Redis Cluster started for the run when `redis-server` and `redis-cli` are installed. A
//! backend whose run fails (not landed in this build, server unreachable, cluster not
//! startable) is listed as left out, with the reason, and the report goes on.
//!
//! # Extra sections
//!
//! `SDS_BENCH_BIN=/path/to/sds` benchmarks that binary instead of building one in the release
//! profile.
//!
//! Other benchmarks add their results to the report by leaving JSON files in
//! `target/bench-report/` (directly in it; subdirectories are this task's own). Each file
//! holds one section or a list of them:
//!
//! ```json
//! {"title": "Protocol throughput", "table": "| case | msgs/s |\n|---|---:|\n| 1 channel | 5000 |",
//!  "notes": "optional markdown shown under the table"}
//! ```
//!
//! `title` becomes a `##` heading, `table` (any markdown, usually a table; the key
//! `markdown` is read the same) is copied as is.
//! Files are read in name order; one that does not parse is named in the report as left
//! out, with why.

mod charts;
mod cluster;
mod data;
mod machine;
mod markdown;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use data::{BackendRun, ExtraSection, Outcome};

/// Options of `bench-report`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// `sds bench --quick` for every backend (seconds instead of minutes).
    pub quick: bool,
    /// Leave the Redis Cluster out without trying to start one.
    pub no_cluster: bool,
}

/// Parses the arguments after `bench-report`.
pub(crate) fn parse(args: &[OsString]) -> Result<Options, String> {
    let mut options = Options::default();
    for arg in args {
        match arg.to_str() {
            Some("--quick") => options.quick = true,
            Some("--no-cluster") => options.no_cluster = true,
            _ => {
                return Err(format!(
                    "`bench-report` takes --quick and --no-cluster, not `{}`",
                    arg.to_string_lossy()
                ));
            }
        }
    }
    Ok(options)
}

/// The target directory cargo builds into.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn server_url(variables: &[&str], default: &str) -> String {
    variables
        .iter()
        .find_map(|name| std::env::var(name).ok())
        .unwrap_or_else(|| default.to_owned())
}

/// Runs `sds bench --json` against `url`: the parsed report, or why it is left out.
fn bench_one(sds: &Path, url: &str, quick: bool, raw_dir: &Path, file: &str) -> Outcome {
    let mut command = Command::new(sds);
    command.args(["bench", "--backend", url, "--json"]);
    if quick {
        command.arg("--quick");
    }
    let output = match command.stderr(Stdio::piped()).output() {
        Ok(output) => output,
        Err(err) => return Outcome::LeftOut(format!("cannot run {}: {err}", sds.display())),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("sds bench failed")
            .trim_start_matches("error: ")
            .to_owned();
        return Outcome::LeftOut(reason);
    }
    let _ = std::fs::write(raw_dir.join(file), stdout.as_bytes());
    match data::parse_measured(&stdout) {
        Ok(measured) => Outcome::Measured(measured),
        Err(err) => Outcome::LeftOut(format!("unreadable sds bench output: {err}")),
    }
}

/// `url` as the report shows it: paths under the repository relative to it, any password
/// hidden.
fn shown_url(url: &str, root: &Path) -> String {
    let url = url.replace(&format!("{}/", root.display()), "");
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') && !userinfo.contains('/') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url,
    }
}

/// The extra sections in `dir/*.json`, and the files that could not be read.
fn extra_sections(dir: &Path) -> (Vec<ExtraSection>, Vec<(String, String)>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut sections = Vec::new();
    let mut unreadable = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let source = format!("target/bench-report/{name}");
        match std::fs::read_to_string(&path)
            .map_err(|err| err.to_string())
            .and_then(|json| data::parse_extra(&json, &source))
        {
            Ok(found) => sections.extend(found),
            Err(err) => unreadable.push((source, err)),
        }
    }
    (sections, unreadable)
}

/// The `sds` binary to benchmark: `SDS_BENCH_BIN` when set (a binary built some other way,
/// e.g. with other optimization settings), else the release build made here. Returns it
/// and how it was built, for the report.
fn sds_binary(root: &Path, cargo: &OsString) -> Result<(PathBuf, String), String> {
    if let Some(binary) = std::env::var_os("SDS_BENCH_BIN") {
        let binary = PathBuf::from(binary);
        return Ok((
            binary.clone(),
            format!("the binary in SDS_BENCH_BIN ({})", binary.display()),
        ));
    }
    eprintln!("xtask: building sds (release)");
    let built = Command::new(cargo)
        .args(["build", "--release", "-p", "sds", "--bin", "sds"])
        .current_dir(root)
        .status();
    if !built.is_ok_and(|status| status.success()) {
        return Err("`cargo build --release -p sds` failed".to_owned());
    }
    Ok((
        target_dir(root).join("release").join("sds"),
        "release profile".to_owned(),
    ))
}

/// The whole task: build, run every backend, write the report and the charts.
pub(crate) fn run(root: &Path, cargo: &OsString, options: &Options) -> ExitCode {
    let (sds, build) = match sds_binary(root, cargo) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("xtask: error: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Before the runs: the load average is the machine's, not ours.
    let machine = machine::describe();
    let report_dir = target_dir(root).join("bench-report");
    let raw_dir = report_dir.join("backends");
    let rocksdb_dir = report_dir.join("rocksdb");
    let _ = std::fs::remove_dir_all(&rocksdb_dir);
    if let Err(err) = std::fs::create_dir_all(&raw_dir) {
        eprintln!("xtask: error: cannot create {}: {err}", raw_dir.display());
        return ExitCode::FAILURE;
    }

    let mut backends: Vec<(String, Result<String, String>)> = vec![
        ("memory".to_owned(), Ok("memory://".to_owned())),
        (
            "rocksdb".to_owned(),
            Ok(format!(
                "rocksdb://{}?sync=false",
                rocksdb_dir.join("sync-off").display()
            )),
        ),
        (
            "rocksdb (fsync)".to_owned(),
            Ok(format!(
                "rocksdb://{}?sync=true",
                rocksdb_dir.join("sync-on").display()
            )),
        ),
        (
            "postgres".to_owned(),
            Ok(server_url(
                &["SDS_BENCH_POSTGRES_URL", "SDS_TEST_POSTGRES_URL"],
                "postgres://postgres@127.0.0.1:5432/test",
            )),
        ),
        (
            "redis".to_owned(),
            Ok(server_url(
                &["SDS_BENCH_REDIS_URL", "SDS_TEST_REDIS_URL"],
                "redis://127.0.0.1:6379",
            )),
        ),
    ];
    let cluster = if options.no_cluster {
        Err("not tried (--no-cluster)".to_owned())
    } else {
        cluster::LocalCluster::start(&report_dir.join("redis-cluster"))
    };
    backends.push((
        "redis cluster".to_owned(),
        cluster
            .as_ref()
            .map(cluster::LocalCluster::url)
            .map_err(|err| format!("could not start a local three-master cluster: {err}")),
    ));

    let mut runs = Vec::new();
    for (index, (label, url)) in backends.into_iter().enumerate() {
        let started = Instant::now();
        let (url, outcome) = match url {
            Ok(url) => {
                eprintln!("xtask: sds bench --backend {url}");
                let file = format!("{index}-{}.json", label.replace([' ', '(', ')'], ""));
                let outcome = bench_one(&sds, &url, options.quick, &raw_dir, &file);
                (url, outcome)
            }
            Err(why) => ("–".to_owned(), Outcome::LeftOut(why)),
        };
        match &outcome {
            Outcome::Measured(_) => eprintln!(
                "xtask: {label}: measured in {:.0} s",
                started.elapsed().as_secs_f64()
            ),
            Outcome::LeftOut(why) => eprintln!("xtask: {label}: left out: {why}"),
        }
        let url = shown_url(&url, root);
        runs.push(BackendRun {
            label,
            url,
            outcome,
        });
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&rocksdb_dir);

    let (extras, unreadable) = extra_sections(&report_dir);
    let measured: Vec<(&str, &data::Measured)> = runs
        .iter()
        .filter_map(|run| match &run.outcome {
            Outcome::Measured(m) => Some((run.label.as_str(), m)),
            Outcome::LeftOut(_) => None,
        })
        .collect();
    let chart_dir = root.join("docs").join("bench");
    if let Err(err) = std::fs::create_dir_all(&chart_dir) {
        eprintln!("xtask: error: cannot create {}: {err}", chart_dir.display());
        return ExitCode::FAILURE;
    }
    let mut charts = Vec::new();
    let drawn = [
        (
            "commit.svg",
            "Commit latency per backend next to its raw baseline",
            charts::commit_chart(&chart_dir.join("commit.svg"), &measured),
        ),
        (
            "history.svg",
            "Commit latency against history size",
            charts::history_chart(
                &chart_dir.join("history.svg"),
                "Commit latency (median) against history size, log-log",
                "commit_history",
                &measured,
            ),
        ),
        (
            "load.svg",
            "load_channel latency against history size",
            charts::history_chart(
                &chart_dir.join("load.svg"),
                "load_channel latency (median) against history size, log-log",
                "load_channel",
                &measured,
            ),
        ),
    ];
    for (file, alt, result) in drawn {
        match result {
            Ok(()) => charts.push((alt.to_owned(), format!("docs/bench/{file}"))),
            Err(err) => eprintln!("xtask: warning: {file}: {err}"),
        }
    }
    let command = if options.quick {
        "cargo xtask bench-report --quick"
    } else {
        "cargo xtask bench-report"
    };
    let page = markdown::render(&markdown::Page {
        date: machine::today(),
        build,
        command: command.to_owned(),
        machine: &machine,
        runs: &runs,
        extras: &extras,
        unreadable: &unreadable,
        charts: &charts,
    });
    let path = root.join("BENCHMARKS.md");
    if let Err(err) = std::fs::write(&path, page) {
        eprintln!("xtask: error: cannot write {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "xtask: wrote {} and {} charts in docs/bench/ ({} of {} backends measured)",
        path.display(),
        charts.len(),
        measured.len(),
        runs.len()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let args = |words: &[&str]| -> Vec<OsString> { words.iter().map(OsString::from).collect() };
        assert_eq!(parse(&args(&[])), Ok(Options::default()));
        assert_eq!(
            parse(&args(&["--quick", "--no-cluster"])),
            Ok(Options {
                quick: true,
                no_cluster: true
            })
        );
        assert!(parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn urls_are_shown_without_passwords_or_the_checkout_path() {
        let root = Path::new("/work/repo");
        assert_eq!(
            shown_url("rocksdb:///work/repo/target/x?sync=true", root),
            "rocksdb://target/x?sync=true"
        );
        assert_eq!(
            shown_url("postgres://u:secret@h:5432/db", root),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            shown_url("postgres://postgres@127.0.0.1/test", root),
            "postgres://postgres@127.0.0.1/test"
        );
    }

    #[test]
    fn extra_sections_are_read_in_name_order_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"title": "Second", "table": "| x |"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"title": "First", "table": "| y |"}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("c.json"), "{").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        std::fs::create_dir(dir.path().join("backends")).unwrap();
        let (sections, unreadable) = extra_sections(dir.path());
        let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["First", "Second"]);
        assert_eq!(unreadable.len(), 1);
        assert!(unreadable[0].0.ends_with("c.json"));
    }
}
