//! `sds-conformance`: runs the persistence conformance suite against a backend chosen by
//! URL and prints a table; exits non-zero when a case fails or the backend is unavailable.

use std::process::ExitCode;

use clap::Parser;
use sds_persist_conformance::{CASES, CaseStatus, MemoryHarness, SuiteReport, run_selected};

/// Run the SDS persistence conformance suite against a backend.
#[derive(Debug, Parser)]
#[command(name = "sds-conformance", version)]
struct Args {
    /// The backend: `memory://` (built in). `rocksdb://<path>`, `postgres://…` and
    /// `redis://…` are recognised but not built into this runner yet.
    #[arg(long, value_name = "URL")]
    backend: Option<String>,

    /// Run only cases whose `group/name` contains one of these substrings (`hints/` picks
    /// a group, a case name picks that case).
    #[arg(long, value_name = "TEXT")]
    filter: Vec<String>,

    /// Also fail when a case did not run because the harness declares a capability it
    /// needs absent (those cases are listed, by name and capability, either way).
    #[arg(long)]
    require_all: bool,

    /// List the cases and what each proves, then exit.
    #[arg(long)]
    list: bool,
}

/// Exit status when the backend cannot be used (unknown or not built in).
const UNAVAILABLE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for case in CASES {
            println!("{}/{}\n    {}", case.group, case.name, case.doc);
        }
        return ExitCode::SUCCESS;
    }
    let Some(url) = args.backend.as_deref() else {
        eprintln!("error: --backend <URL> is required (e.g. --backend memory://)");
        return ExitCode::from(UNAVAILABLE);
    };
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    let report = match scheme {
        "memory" => run(&args, MemoryHarness::new()),
        "rocksdb" | "postgres" | "postgresql" | "redis" => {
            eprintln!("{url}: unavailable: backend not built in this crate yet");
            return ExitCode::from(UNAVAILABLE);
        }
        _ => {
            eprintln!(
                "{url}: unavailable: unknown backend scheme {scheme:?} (known: memory, rocksdb, postgres, redis)"
            );
            return ExitCode::from(UNAVAILABLE);
        }
    };
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(UNAVAILABLE);
        }
    };
    print!("{report}");
    // Repeated on stderr so a run whose stdout is filtered still says what was not proven.
    for case in &report.cases {
        if let CaseStatus::NotRun { capability, reason } = &case.status {
            eprintln!(
                "NOT RUN: {}/{}: needs {capability}, declared absent: {reason}",
                case.group, case.name
            );
        }
    }
    if report.cases.is_empty() {
        eprintln!("no case matched the filter: nothing was proven");
        return ExitCode::FAILURE;
    }
    let failed = !report.is_success() || (args.require_all && report.not_run() > 0);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run<H: sds_persist_conformance::Harness>(
    args: &Args,
    harness: H,
) -> Result<SuiteReport, std::io::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let filters = args.filter.clone();
    Ok(runtime.block_on(async move {
        run_selected(&harness, |case| {
            let path = format!("{}/{}", case.group, case.name);
            filters.is_empty() || filters.iter().any(|filter| path.contains(filter.as_str()))
        })
        .await
    }))
}
