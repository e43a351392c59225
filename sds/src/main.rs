//! The `sds` command-line tool: the simulator (the main job), the conformance suite and
//! a stored-channel inspector.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sds::Backend;
use sds::simulation::{Simulation, SimulationConfig};

#[derive(Debug, Parser)]
#[command(
    name = "sds",
    version,
    about = "Scalable Data Sync: simulate, test and inspect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run participants over a lossy simulated network until they converge.
    Simulate(SimulateArgs),
    /// Run the persistence conformance suite against a backend.
    Conformance {
        /// Backend URL, e.g. memory:// or rocksdb:///tmp/sds-conformance.
        #[arg(long)]
        backend: String,
    },
    /// Print a stored channel's snapshot and history.
    Inspect {
        /// Backend URL, e.g. rocksdb:///var/lib/app/sds.
        #[arg(long)]
        backend: String,
        /// The node's namespace.
        #[arg(long)]
        namespace: String,
        /// The channel id.
        #[arg(long)]
        channel: String,
    },
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Number of participants.
    #[arg(long, default_value_t = 5)]
    participants: usize,
    /// Content messages sent in total.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Probability that a copy is lost, 0..1.
    #[arg(long, default_value_t = 0.2)]
    loss: f64,
    /// Probability that a copy arrives twice, 0..1.
    #[arg(long, default_value_t = 0.05)]
    duplication: f64,
    /// Probability that a copy is held back (reordered), 0..1.
    #[arg(long, default_value_t = 0.1)]
    reorder: f64,
    /// Largest one-way network delay in milliseconds.
    #[arg(long, default_value_t = 200)]
    max_delay_ms: u64,
    /// Crashes, each followed by a restart from persistence.
    #[arg(long, default_value_t = 2)]
    restarts: usize,
    /// Seed of every random choice; the same seed reproduces the run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Virtual seconds allowed after the last send for repairs to finish.
    #[arg(long, default_value_t = 1800)]
    settle_secs: u64,
    /// Backend URL (default: RocksDB in a temporary directory, or --dir).
    #[arg(long)]
    backend: Option<String>,
    /// Directory for the default RocksDB backend (kept after the run).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Disable SDS-R repairs.
    #[arg(long)]
    no_repair: bool,
    /// Disable resending unacknowledged messages.
    #[arg(long)]
    no_resend: bool,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the async runtime: {err}")),
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Simulate(args) => simulate(args).await,
            Command::Conformance { backend } => conformance(&backend).await,
            Command::Inspect {
                backend,
                namespace,
                channel,
            } => inspect(&backend, &namespace, &channel).await,
        }
    })
}

/// Writes to stdout, tolerating a closed pipe (`sds inspect … | head`): a reader that went
/// away is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

async fn open(url: &str) -> Result<Backend, ExitCode> {
    Backend::open(url)
        .await
        .map_err(|err| fail(&err.to_string()))
}

async fn simulate(args: SimulateArgs) -> ExitCode {
    let mut config = SimulationConfig {
        participants: args.participants,
        messages: args.messages,
        restarts: args.restarts,
        seed: args.seed,
        repair: !args.no_repair,
        settle_limit_ms: args.settle_secs.saturating_mul(1000),
        resend: !args.no_resend,
        ..SimulationConfig::default()
    };
    config.network.loss = args.loss;
    config.network.duplication = args.duplication;
    config.network.reorder = args.reorder;
    config.network.max_delay_ms = args.max_delay_ms;
    config.network.min_delay_ms = config.network.min_delay_ms.min(args.max_delay_ms);

    // The temporary directory lives until the end of the run.
    let mut _temporary = None;
    let url = match (args.backend, args.dir) {
        (Some(url), _) => url,
        (None, Some(dir)) => format!("rocksdb://{}", dir.display()),
        (None, None) if cfg!(feature = "rocksdb") => match tempfile::tempdir() {
            Ok(dir) => {
                let url = format!("rocksdb://{}", dir.path().display());
                _temporary = Some(dir);
                url
            }
            Err(err) => return fail(&format!("cannot create a temporary directory: {err}")),
        },
        (None, None) => "memory://".to_string(),
    };
    let backend = match open(&url).await {
        Ok(backend) => backend,
        Err(code) => return code,
    };
    let simulation = match Simulation::new(config.clone(), &backend) {
        Ok(simulation) => simulation,
        Err(err) => return fail(&err.to_string()),
    };
    if !args.json {
        out(&format!(
            "simulating {} participants, {} messages, loss {:.0}%, {} restarts, seed {}, backend {}",
            config.participants,
            config.messages,
            config.network.loss * 100.0,
            config.restarts,
            config.seed,
            backend.describe()
        ));
    }
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.messages as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} sent {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = simulation
        .run(|progress| {
            bar.set_position(progress.sent as u64);
            bar.set_message(format!(
                "{}/{} deliveries",
                progress.deliveries, progress.deliveries_needed
            ));
        })
        .await;
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(err) => return fail(&err.to_string()),
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => out(&json),
            Err(err) => return fail(&format!("cannot serialize the report: {err}")),
        }
    } else {
        out(&report.to_string());
    }
    if report.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn conformance(url: &str) -> ExitCode {
    match sds::conformance_runner::run_url(url).await {
        Ok(report) => {
            out(&report.table());
            if report.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => fail(&err.to_string()),
    }
}

async fn inspect(url: &str, namespace: &str, channel: &str) -> ExitCode {
    let backend = match open(url).await {
        Ok(backend) => backend,
        Err(code) => return code,
    };
    match sds::inspect::inspect_channel(&backend, namespace, channel).await {
        Ok(text) => {
            out(text.trim_end());
            ExitCode::SUCCESS
        }
        Err(err) => fail(&format!("cannot load channel {channel:?}: {err}")),
    }
}
