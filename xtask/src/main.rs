//! `cargo xtask`: the repository's tasks, run through the alias in `.cargo/config.toml`.
//!
//! - `cargo xtask simulate [ARGS...]`: the main job. Checks what building RocksDB needs
//!   (libclang for bindgen, a C++ compiler), installs what is missing with apt-get on
//!   Debian/Ubuntu, then runs `cargo run -p sds -- simulate ARGS...`.
//! - `cargo xtask test [ARGS...]`: the same checks, then `cargo test --workspace ARGS...`.
//! - `cargo xtask setup [--check]`: the checks and installs alone; `--check` never installs.
//! - `cargo xtask repair-sweep [--seeds N] [--all-scenarios]`: SDS-R repair cost across loss
//!   rates, as a table (see [`repair_sweep`]).
//! - `cargo xtask bench-report [--quick] [--no-cluster]`: `sds bench` against every backend,
//!   written to `BENCHMARKS.md` with SVG charts in `docs/bench/` (see [`bench`]).
//!
//! The main job runs in the dev profile, like `cargo test`, so RocksDB's C++ (most of a cold
//! build) is compiled once for both. This crate depends on little beyond std (serde_json and
//! plotters for `bench-report`) so that it builds in seconds, before any of that.

mod bench;
mod checks;
mod repair_sweep;
mod setup;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode, ExitStatus};

const USAGE: &str = "\
usage: cargo xtask <task> [ARGS...]

tasks:
  simulate [ARGS...]  check/install the build requirements, then run
                      `cargo run -p sds -- simulate ARGS...` (the main job)
  test [ARGS...]      check/install the build requirements, then run
                      `cargo test --workspace ARGS...`
  setup [--check]     check the build requirements (libclang, a C++ compiler) and install
                      the missing ones with apt-get; --check only reports
  repair-sweep [--seeds N] [--all-scenarios] [-- SIMULATE-ARGS...]
                      SDS-R cost across loss rates: `sds simulate` at 5/20/40% loss
                      (and the other presets with --all-scenarios) over N seeds; prints a
                      table and writes target/bench-report/repair-efficiency.json
  bench-report [--quick] [--no-cluster]
                      build sds (release), run `sds bench` against memory, RocksDB (fsync
                      off and on), PostgreSQL, Redis and a local Redis Cluster, and write
                      BENCHMARKS.md with charts in docs/bench/ (plus the sections other
                      benches left in target/bench-report/*.json)
  help                print this";

/// A task and its arguments, parsed from the command line.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    /// The main job, with the arguments for `sds simulate`.
    Simulate(Vec<OsString>),
    /// The workspace tests, with extra arguments for `cargo test`.
    Test(Vec<OsString>),
    /// Only the checks and installs; `install` is false with `--check`.
    Setup {
        /// Whether missing packages may be installed.
        install: bool,
    },
    /// The repair-efficiency sweep over loss rates and seeds.
    RepairSweep(repair_sweep::SweepOptions),
    /// Benchmark every backend and write `BENCHMARKS.md`.
    BenchReport(bench::Options),
    /// Print the usage.
    Help,
}

/// Parses the arguments after `cargo xtask`.
fn parse(args: Vec<OsString>) -> Result<Task, String> {
    let mut args = args.into_iter();
    let Some(task) = args.next() else {
        return Err("no task given".to_owned());
    };
    let rest: Vec<OsString> = args.collect();
    match task.to_str() {
        Some("simulate") => Ok(Task::Simulate(rest)),
        Some("test") => Ok(Task::Test(rest)),
        Some("setup") => match rest.as_slice() {
            [] => Ok(Task::Setup { install: true }),
            [flag] if flag == "--check" => Ok(Task::Setup { install: false }),
            _ => Err("`setup` takes only `--check`".to_owned()),
        },
        Some("repair-sweep") => repair_sweep::parse(rest).map(Task::RepairSweep),
        Some("bench-report") => bench::parse(&rest).map(Task::BenchReport),
        Some("help" | "-h" | "--help") => Ok(Task::Help),
        _ => Err(format!("unknown task `{}`", task.to_string_lossy())),
    }
}

/// The cargo to run: the one that started us (cargo sets `CARGO` for `cargo run`), else the
/// one on PATH.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// The workspace root, so the tasks work from any directory of the checkout.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Runs cargo with `args` at the workspace root, output streamed, and returns its exit code.
fn run_cargo(args: &[OsString]) -> ExitCode {
    let cargo = cargo();
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprintln!("xtask: running: cargo {}", shown.join(" "));
    match Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
    {
        Ok(status) => exit_code(status),
        Err(e) => {
            eprintln!("xtask: error: cannot run {}: {e}", cargo.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}

/// The exit code to pass on: the child's own, or 128 + the signal that killed it.
fn exit_code(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    ExitCode::FAILURE
}

/// Runs the checks (and installs), then the cargo command built from `args`.
fn setup_then_cargo(args: Vec<OsString>) -> ExitCode {
    if let Err(setup::SetupError(message)) = setup::run(true) {
        eprintln!("xtask: error: {message}");
        return ExitCode::FAILURE;
    }
    run_cargo(&args)
}

fn main() -> ExitCode {
    let task = match parse(std::env::args_os().skip(1).collect()) {
        Ok(task) => task,
        Err(message) => {
            eprintln!("xtask: error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match task {
        Task::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Task::Setup { install } => match setup::run(install) {
            Ok(()) => ExitCode::SUCCESS,
            Err(setup::SetupError(message)) => {
                eprintln!("xtask: error: {message}");
                ExitCode::FAILURE
            }
        },
        Task::RepairSweep(options) => match setup::run(true) {
            Ok(()) => repair_sweep::run(&options, &workspace_root()),
            Err(setup::SetupError(message)) => {
                eprintln!("xtask: error: {message}");
                ExitCode::FAILURE
            }
        },
        Task::BenchReport(options) => match setup::run(true) {
            Ok(()) => bench::run(&workspace_root(), &cargo(), &options),
            Err(setup::SetupError(message)) => {
                eprintln!("xtask: error: {message}");
                ExitCode::FAILURE
            }
        },
        Task::Simulate(rest) => {
            // The dev profile, as `cargo test` uses: RocksDB's C++ is built once for both.
            let mut args: Vec<OsString> = ["run", "-p", "sds", "--", "simulate"]
                .into_iter()
                .map(OsString::from)
                .collect();
            args.extend(rest);
            setup_then_cargo(args)
        }
        Task::Test(rest) => {
            let mut args: Vec<OsString> = ["test", "--workspace"]
                .into_iter()
                .map(OsString::from)
                .collect();
            args.extend(rest);
            setup_then_cargo(args)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn tasks_parse_with_their_arguments() {
        assert_eq!(
            parse(args(&["simulate", "--seed", "7", "--json"])),
            Ok(Task::Simulate(args(&["--seed", "7", "--json"])))
        );
        assert_eq!(parse(args(&["simulate"])), Ok(Task::Simulate(vec![])));
        assert_eq!(
            parse(args(&["test", "-p", "sds-core"])),
            Ok(Task::Test(args(&["-p", "sds-core"])))
        );
        assert_eq!(parse(args(&["setup"])), Ok(Task::Setup { install: true }));
        assert_eq!(
            parse(args(&["setup", "--check"])),
            Ok(Task::Setup { install: false })
        );
        assert_eq!(parse(args(&["--help"])), Ok(Task::Help));
        assert_eq!(
            parse(args(&["bench-report", "--quick"])),
            Ok(Task::BenchReport(bench::Options {
                quick: true,
                no_cluster: false
            }))
        );
    }

    #[test]
    fn bad_command_lines_are_errors() {
        assert!(parse(vec![]).is_err());
        assert!(parse(args(&["build"])).is_err());
        assert!(parse(args(&["setup", "--force"])).is_err());
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
