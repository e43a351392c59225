//! The `sds` command-line tool: the simulator (the main job), the conformance suite, a
//! stored-channel inspector and backend benchmarks.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sds::Backend;
use sds::simulation::{
    LossBursts, NetworkConditions, Partition, ProtocolProfile, Scenario, Simulation,
    SimulationConfig,
};

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
    Simulate(Box<SimulateArgs>),
    /// Run the persistence conformance suite against a backend.
    Conformance {
        /// Backend URL, e.g. memory:// or rocksdb:///tmp/sds-conformance.
        #[arg(long)]
        backend: String,
    },
    /// List the namespaces and channels a backend stores, or print one stored channel's
    /// snapshot and history.
    ///
    /// Opens the store read-only: nothing is created or written, and a path that holds no
    /// database is refused. Without --channel it lists (every namespace, or the one given);
    /// with --namespace and --channel it prints that channel. Exit status: 0 when shown or
    /// listed, 1 when the named channel is not stored, 2 when the backend cannot be opened
    /// or read.
    Inspect {
        /// Backend URL, e.g. rocksdb:///var/lib/app/sds.
        #[arg(long)]
        backend: String,
        /// The node's namespace (list only its channels when no --channel is given).
        #[arg(long)]
        namespace: Option<String>,
        /// The channel id (needs --namespace).
        #[arg(long, requires = "namespace")]
        channel: Option<String>,
    },
    /// Measure a backend next to its raw baseline: commit, load and drop latencies, each
    /// beside the same bytes written or read with the store's own client.
    ///
    /// Writes into a namespace of its own (and a scratch area for the baseline) and removes
    /// it all at the end. Progress goes to stderr, the table (or --json) to stdout. Exit
    /// status: 0 when every workload ran, 2 when the backend cannot be opened or fails.
    Bench {
        /// Backend URL, e.g. rocksdb:///tmp/sds-bench?sync=true, postgres://…, redis://….
        #[arg(long)]
        backend: String,
        /// A short run (seconds): fewer samples and 10,000 instead of 100,000 entries for
        /// the history-size comparison.
        #[arg(long)]
        quick: bool,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Network preset; the figures below override its values when given.
    #[arg(long, value_enum, default_value_t = Scenario::Lossy)]
    scenario: Scenario,
    /// Protocol timings: `default` is the protocol's real defaults
    /// (`ReliabilityConfig::default()`, timers of tens of seconds to minutes), `scaled`
    /// the same shape in seconds.
    ///
    /// `default` is the default because it is the honest test: it is what applications
    /// ship with, and long network delays only show what they do to repair against the
    /// real timers; `scaled` converges faster in virtual time and flatters the protocol.
    #[arg(long, value_enum, default_value_t = ProtocolProfile::Default)]
    protocol: ProtocolProfile,
    /// Number of participants.
    #[arg(long, default_value_t = 5)]
    participants: usize,
    /// Content messages sent in total, an equal share by each participant.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Probability that a copy is lost, 0..1 (outside loss bursts).
    #[arg(long)]
    loss: Option<f64>,
    /// Probability that a copy arrives twice, 0..1.
    #[arg(long)]
    duplication: Option<f64>,
    /// Probability that a copy is held back (reordered) by up to 2 s, 0..1.
    #[arg(long)]
    reorder: Option<f64>,
    /// Largest base one-way network delay in milliseconds.
    #[arg(long)]
    max_delay_ms: Option<u64>,
    /// Share of copies delayed by seconds (by --long-delay-min-ms..--long-delay-max-ms
    /// more), 0..1.
    #[arg(long)]
    long_delay: Option<f64>,
    /// Extra delay of a long-delayed copy, at least, in milliseconds.
    #[arg(long)]
    long_delay_min_ms: Option<u64>,
    /// Extra delay of a long-delayed copy, at most, in milliseconds.
    #[arg(long)]
    long_delay_max_ms: Option<u64>,
    /// Loss during a burst, 0..1; turns bursts on (per receiver, alternating with good
    /// periods) if the scenario has none.
    #[arg(long)]
    burst_loss: Option<f64>,
    /// Mean length of a loss burst in milliseconds (turns bursts on).
    #[arg(long)]
    burst_ms: Option<u64>,
    /// Mean time between two loss bursts in milliseconds (turns bursts on).
    #[arg(long)]
    burst_gap_ms: Option<u64>,
    /// Seconds into the run when the participants split into two sides that cannot hear
    /// each other (turns the partition on).
    #[arg(long)]
    partition_at_secs: Option<u64>,
    /// Seconds the partition lasts before it heals; 0 turns the partition off.
    #[arg(long)]
    partition_secs: Option<u64>,
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

impl SimulateArgs {
    /// The scenario's network with the explicit figures applied over it.
    fn network(&self) -> NetworkConditions {
        let mut network = self.scenario.network();
        let set = |field: &mut f64, value: Option<f64>| *field = value.unwrap_or(*field);
        set(&mut network.loss, self.loss);
        set(&mut network.duplication, self.duplication);
        set(&mut network.reorder, self.reorder);
        set(&mut network.long_delay, self.long_delay);
        if let Some(max) = self.max_delay_ms {
            network.max_delay_ms = max;
            network.min_delay_ms = network.min_delay_ms.min(max);
        }
        if let Some(min) = self.long_delay_min_ms {
            network.long_delay_min_ms = min;
        }
        if let Some(max) = self.long_delay_max_ms {
            network.long_delay_max_ms = max;
        }
        if self.burst_loss.is_some() || self.burst_ms.is_some() || self.burst_gap_ms.is_some() {
            let bursts = network.bursts.get_or_insert_with(LossBursts::default);
            set(&mut bursts.burst_loss, self.burst_loss);
            bursts.mean_burst_ms = self.burst_ms.unwrap_or(bursts.mean_burst_ms);
            bursts.mean_gap_ms = self.burst_gap_ms.unwrap_or(bursts.mean_gap_ms);
        }
        if self.partition_at_secs.is_some() || self.partition_secs.is_some() {
            let preset = network.partition.clone().unwrap_or_default();
            let start_ms = self
                .partition_at_secs
                .map_or(preset.start_ms, |secs| secs.saturating_mul(1000));
            let duration_ms = self
                .partition_secs
                .map_or(preset.duration_ms, |secs| secs.saturating_mul(1000));
            network.partition = (duration_ms > 0).then_some(Partition {
                start_ms,
                duration_ms,
            });
        }
        network
    }
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
            Command::Simulate(args) => simulate(*args).await,
            Command::Conformance { backend } => conformance(&backend).await,
            Command::Inspect {
                backend,
                namespace,
                channel,
            } => inspect(&backend, namespace.as_deref(), channel.as_deref()).await,
            Command::Bench {
                backend,
                quick,
                json,
            } => bench(&backend, quick, json).await,
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
    let config = SimulationConfig {
        participants: args.participants,
        messages: args.messages,
        restarts: args.restarts,
        seed: args.seed,
        scenario: args.scenario,
        network: args.network(),
        repair: !args.no_repair,
        settle_limit_ms: args.settle_secs.saturating_mul(1000),
        resend: !args.no_resend,
        protocol: args.protocol.config(),
        ..SimulationConfig::default()
    };

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
            "simulating {} participants, {} messages, scenario {}, protocol {}, {} restarts, \
             seed {}, backend {}",
            config.participants,
            config.messages,
            config.scenario,
            args.protocol,
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
    let namespaces: Vec<&str> = report
        .participants
        .iter()
        .map(|participant| participant.id.as_str())
        .collect();
    let stored = storage_note(&backend, _temporary.is_some(), &namespaces, &config.channel);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => out(&json),
            Err(err) => return fail(&format!("cannot serialize the report: {err}")),
        }
        // stdout stays one JSON document.
        eprintln!("{stored}");
    } else {
        out(&report.to_string());
        out(&stored);
    }
    if report.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Where the run wrote: the backend URL, the namespaces and the channel, and how to inspect
/// them (or why they cannot be: a store that ends with the run).
fn storage_note(backend: &Backend, temporary: bool, namespaces: &[&str], channel: &str) -> String {
    let url = backend.describe();
    let mut note = format!(
        "stored in {url}: namespaces {}, channel {channel:?}",
        namespaces.join(", ")
    );
    if !backend.is_persistent() {
        note.push_str("\n(in memory: gone when the run ends; run with --dir DIR, or --backend rocksdb:///DIR, to keep it)");
    } else if temporary {
        note.push_str(
            "\n(a temporary directory, removed when the run ends; use --dir DIR to keep it and inspect it)",
        );
    } else if let Some(first) = namespaces.first() {
        let _ = write!(
            note,
            "\ninspect with: sds inspect --backend {url} --namespace {first} --channel {channel}"
        );
    }
    note
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

async fn inspect(url: &str, namespace: Option<&str>, channel: Option<&str>) -> ExitCode {
    let backend = match Backend::open_read_only(url).await {
        Ok(backend) => backend,
        Err(err) => return fail(&err.to_string()),
    };
    let (Some(namespace), Some(channel)) = (namespace, channel) else {
        return match sds::inspect::list_channels(&backend, namespace).await {
            Ok(text) => {
                out(text.trim_end());
                ExitCode::SUCCESS
            }
            Err(err) => fail(&format!("cannot list the stored channels: {err}")),
        };
    };
    match sds::inspect::inspect_channel(&backend, namespace, channel).await {
        Ok(text) => {
            out(text.trim_end());
            ExitCode::SUCCESS
        }
        Err(err @ sds::inspect::InspectError::NotStored { .. }) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
        Err(err) => fail(&format!("cannot load channel {channel:?}: {err}")),
    }
}

async fn bench(url: &str, quick: bool, json: bool) -> ExitCode {
    let options = sds::bench::BenchOptions::builder().quick(quick).build();
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = sds::bench::run(url, &options, &mut |progress| {
        bar.set_length(progress.total);
        bar.set_position(progress.done);
        bar.set_message(progress.step);
    })
    .await;
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(err) => return fail(&err.to_string()),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => out(&text),
            Err(err) => return fail(&format!("cannot serialize the report: {err}")),
        }
    } else {
        out(report.table().trim_end());
    }
    ExitCode::SUCCESS
}
