//! `cargo xtask repair-sweep`: what SDS-R repair costs across loss rates (issue 15, item 4).
//!
//! Builds `sds` once (dev profile, as the main job), then runs `sds simulate --json` on the
//! in-memory backend (the protocol does not depend on the backend, and memory keeps a sweep
//! of many runs short) for each setting and seed: the default scenario (`lossy`, 20% loss)
//! and `--loss 0.05` / `--loss 0.40` over it; with `--all-scenarios` also the `gentle`,
//! `bursty` and `partition-and-heal` presets. It prints one Markdown table (rebroadcasts per
//! repaired delivery, convergence time after the last send, deliveries) and writes it to
//! `target/bench-report/repair-efficiency.json` (`{"title", "markdown"}`), which the
//! benchmark report includes.
//!
//! Runs go two at a time. Arguments after `--` are passed to every `sds simulate`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Mutex;

/// What to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOptions {
    /// Seeds each setting runs with.
    pub seeds: Vec<u64>,
    /// Also run the other network presets.
    pub all_scenarios: bool,
    /// Extra arguments for every `sds simulate`.
    pub extra: Vec<OsString>,
}

/// Parses the arguments after `cargo xtask repair-sweep`: `[--seeds N] [--all-scenarios]
/// [-- SIMULATE-ARGS...]`.
pub fn parse(args: Vec<OsString>) -> Result<SweepOptions, String> {
    let mut options = SweepOptions {
        seeds: (1..=3).collect(),
        all_scenarios: false,
        extra: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--seeds") => {
                let count = args
                    .next()
                    .and_then(|value| value.to_str().and_then(|v| v.parse::<u64>().ok()))
                    .filter(|count| *count > 0)
                    .ok_or("`--seeds` takes a count of at least 1")?;
                options.seeds = (1..=count).collect();
            }
            Some("--all-scenarios") => options.all_scenarios = true,
            Some("--") => {
                options.extra = args.by_ref().collect();
            }
            _ => {
                return Err(format!(
                    "unknown repair-sweep argument `{}`",
                    arg.to_string_lossy()
                ));
            }
        }
    }
    Ok(options)
}

/// One row of the table: a label and the `sds simulate` arguments that make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// What the row shows.
    pub label: &'static str,
    /// Arguments for `sds simulate`.
    pub args: Vec<&'static str>,
}

/// The settings to run, in table order.
pub fn settings(all_scenarios: bool) -> Vec<Setting> {
    let mut settings = vec![
        Setting {
            label: "lossy, 5% loss",
            args: vec!["--loss", "0.05"],
        },
        Setting {
            label: "lossy, 20% loss (default)",
            args: vec![],
        },
        Setting {
            label: "lossy, 40% loss",
            args: vec!["--loss", "0.40"],
        },
    ];
    if all_scenarios {
        for (label, scenario) in [
            ("gentle", "gentle"),
            ("bursty", "bursty"),
            ("partition-and-heal", "partition-and-heal"),
        ] {
            settings.push(Setting {
                label,
                args: vec!["--scenario", scenario],
            });
        }
    }
    settings
}

/// What one `sds simulate --json` run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The verdict.
    pub converged: bool,
    /// Time from the last send to convergence, if it converged.
    pub settle_ms: Option<u64>,
    /// Repair rebroadcasts, all participants.
    pub rebroadcasts: u64,
    /// Messages that reached a participant lacking them through a repair.
    pub repaired: u64,
    /// Copies the network lost.
    pub lost: u64,
    /// Resends of unacknowledged messages.
    pub resends: u64,
}

/// Reads the fields the table needs from `sds simulate --json` output.
pub fn parse_report(json: &str) -> Result<RunResult, String> {
    let report: serde_json::Value =
        serde_json::from_str(json).map_err(|err| format!("not a simulation report: {err}"))?;
    let number = |field: &str| {
        report
            .get(field)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("the report has no number `{field}`"))
    };
    let resends = report
        .get("participants")
        .and_then(serde_json::Value::as_array)
        .map(|participants| {
            participants
                .iter()
                .filter_map(|p| p.get("resends").and_then(serde_json::Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    Ok(RunResult {
        converged: report
            .get("converged")
            .and_then(serde_json::Value::as_bool)
            .ok_or("the report has no `converged`")?,
        settle_ms: report.get("settle_ms").and_then(serde_json::Value::as_u64),
        rebroadcasts: number("repair_rebroadcasts")?,
        repaired: number("repaired_deliveries")?,
        lost: number("packets_lost")?,
        resends,
    })
}

/// The runs of one setting, summed up.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The setting's label.
    pub label: &'static str,
    /// One result per seed, in seed order.
    pub runs: Vec<RunResult>,
}

fn ratio(rebroadcasts: u64, repaired: u64) -> Option<f64> {
    (repaired > 0).then(|| rebroadcasts as f64 / repaired as f64)
}

fn mean(values: &[u64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<u64>() as f64 / values.len() as f64)
}

impl Row {
    /// The table line.
    pub fn markdown(&self) -> String {
        let converged = self.runs.iter().filter(|run| run.converged).count();
        let rebroadcasts: u64 = self.runs.iter().map(|run| run.rebroadcasts).sum();
        let repaired: u64 = self.runs.iter().map(|run| run.repaired).sum();
        let lost: u64 = self.runs.iter().map(|run| run.lost).sum();
        let resends: u64 = self.runs.iter().map(|run| run.resends).sum();
        let per_seed: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|run| ratio(run.rebroadcasts, run.repaired))
            .collect();
        let spread = match (
            per_seed.iter().copied().reduce(f64::min),
            per_seed.iter().copied().reduce(f64::max),
        ) {
            (Some(low), Some(high)) => format!("{low:.2}–{high:.2}"),
            _ => "–".to_string(),
        };
        let overall =
            ratio(rebroadcasts, repaired).map_or("–".to_string(), |r| format!("{r:.2}"));
        let settles: Vec<u64> = self.runs.iter().filter_map(|run| run.settle_ms).collect();
        let settle = match (mean(&settles), settles.iter().max()) {
            (Some(mean), Some(max)) => {
                format!("{:.1} s (max {:.1} s)", mean / 1000.0, *max as f64 / 1000.0)
            }
            _ => "–".to_string(),
        };
        let runs = self.runs.len().max(1) as f64;
        format!(
            "| {} | {converged}/{} | **{overall}** ({spread}) | {settle} | {:.0} | {:.0} | {:.0} | {:.0} |",
            self.label,
            self.runs.len(),
            repaired as f64 / runs,
            rebroadcasts as f64 / runs,
            lost as f64 / runs,
            resends as f64 / runs,
        )
    }
}

/// The whole table, with a line saying how it was made.
pub fn markdown(rows: &[Row], seeds: &[u64]) -> String {
    let mut text = format!(
        "`cargo xtask repair-sweep`: 5 participants x 200 messages, 2 restarts, protocol \
         defaults, in-memory backend; seeds {}. Ratio: all rebroadcasts over all repaired \
         deliveries (per-seed range in brackets). Counts are means per run.\n\n",
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    text.push_str(
        "| setting | converged | rebroadcasts per repaired delivery | convergence after last send | repaired deliveries | rebroadcasts | copies lost | resends |\n",
    );
    text.push_str("|---|---|---|---|---|---|---|---|\n");
    for row in rows {
        text.push_str(&row.markdown());
        text.push('\n');
    }
    text
}

/// `{"title": ..., "markdown": ...}`, as the benchmark report reads extra sections.
pub fn report_json(markdown: &str) -> String {
    serde_json::json!({
        "title": "Repair efficiency (SDS-R) across loss rates",
        "markdown": markdown,
    })
    .to_string()
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else `target` at the workspace root.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"))
}

/// Runs one simulation and reads its report.
fn simulate(
    binary: &Path,
    setting: &Setting,
    seed: u64,
    extra: &[OsString],
) -> Result<RunResult, String> {
    let output = Command::new(binary)
        .arg("simulate")
        .args(["--json", "--backend", "memory://", "--seed"])
        .arg(seed.to_string())
        .args(&setting.args)
        .args(extra)
        .output()
        .map_err(|err| format!("cannot run {}: {err}", binary.display()))?;
    // Exit status 1 is a run that did not converge: still a row of the table.
    if output.status.code().is_none_or(|code| code > 1) {
        return Err(format!(
            "`sds simulate` ({}, seed {seed}) failed with {}: {}",
            setting.label,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_report(&String::from_utf8_lossy(&output.stdout))
        .map_err(|err| format!("{} seed {seed}: {err}", setting.label))
}

/// One run's place (setting, seed) and what it reported.
type Outcome = ((usize, usize), Result<RunResult, String>);

/// Runs the sweep: build, simulate every setting and seed (two at a time), print and write
/// the table.
pub fn run(options: &SweepOptions, root: &Path) -> ExitCode {
    let build: Vec<OsString> = ["build", "--quiet", "-p", "sds", "--bin", "sds"]
        .into_iter()
        .map(OsString::from)
        .collect();
    let built = crate::run_cargo(&build);
    if built != ExitCode::SUCCESS {
        return built;
    }
    let binary = target_dir(root).join("debug").join("sds");
    let settings = settings(options.all_scenarios);
    let jobs: Vec<(usize, usize)> = (0..settings.len())
        .flat_map(|setting| (0..options.seeds.len()).map(move |seed| (setting, seed)))
        .collect();
    let queue = Mutex::new(jobs.into_iter());
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut queue| queue.next());
                    let Some((setting, seed_index)) = next else {
                        break;
                    };
                    let (Some(chosen), Some(seed)) =
                        (settings.get(setting), options.seeds.get(seed_index))
                    else {
                        break;
                    };
                    eprintln!("xtask: simulating {}, seed {seed}", chosen.label);
                    let result = simulate(&binary, chosen, *seed, &options.extra);
                    if let Ok(mut results) = results.lock() {
                        results.push(((setting, seed_index), result));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(key, _)| *key);
    let mut rows: Vec<Row> = settings
        .iter()
        .map(|setting| Row {
            label: setting.label,
            runs: Vec::new(),
        })
        .collect();
    for ((setting, _), result) in results {
        match result {
            Ok(run) => {
                if let Some(row) = rows.get_mut(setting) {
                    row.runs.push(run);
                }
            }
            Err(message) => {
                eprintln!("xtask: error: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    let table = markdown(&rows, &options.seeds);
    println!("{table}");
    let dir = target_dir(root).join("bench-report");
    let path = dir.join("repair-efficiency.json");
    let written =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, report_json(&table)));
    match written {
        Ok(()) => {
            eprintln!("xtask: wrote {}", path.display());
            let all_converged = rows
                .iter()
                .all(|row| row.runs.iter().all(|run| run.converged));
            if all_converged {
                ExitCode::SUCCESS
            } else {
                eprintln!("xtask: some runs did not converge");
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("xtask: error: cannot write {}: {err}", path.display());
            ExitCode::FAILURE
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
    fn options_parse() {
        let options = parse(args(&[])).unwrap();
        assert_eq!(options.seeds, vec![1, 2, 3]);
        assert!(!options.all_scenarios);
        let options = parse(args(&[
            "--seeds",
            "5",
            "--all-scenarios",
            "--",
            "--participants",
            "8",
        ]))
        .unwrap();
        assert_eq!(options.seeds, vec![1, 2, 3, 4, 5]);
        assert!(options.all_scenarios);
        assert_eq!(options.extra, args(&["--participants", "8"]));
        assert!(parse(args(&["--seeds", "0"])).is_err());
        assert!(parse(args(&["--seeds"])).is_err());
        assert!(parse(args(&["--loss"])).is_err());
    }

    #[test]
    fn the_default_sweep_covers_the_three_loss_rates() {
        let labels: Vec<&str> = settings(false).iter().map(|s| s.label).collect();
        assert_eq!(labels.len(), 3);
        assert!(labels.iter().any(|l| l.contains("5%")));
        assert!(labels.iter().any(|l| l.contains("20%")));
        assert!(labels.iter().any(|l| l.contains("40%")));
        assert_eq!(settings(true).len(), 6);
    }

    #[test]
    fn a_report_is_read_and_tabled() {
        let json = r#"{"converged": true, "settle_ms": 12500, "repair_rebroadcasts": 300,
            "repaired_deliveries": 200, "packets_lost": 900,
            "participants": [{"resends": 3}, {"resends": 4}]}"#;
        let run = parse_report(json).unwrap();
        assert_eq!(
            run,
            RunResult {
                converged: true,
                settle_ms: Some(12_500),
                rebroadcasts: 300,
                repaired: 200,
                lost: 900,
                resends: 7,
            }
        );
        let row = Row {
            label: "x",
            runs: vec![
                run.clone(),
                RunResult {
                    rebroadcasts: 100,
                    ..run
                },
            ],
        };
        let line = row.markdown();
        assert!(
            line.starts_with("| x | 2/2 | **1.00** (0.50–1.50) | 12.5 s (max 12.5 s)"),
            "{line}"
        );
        let not_converged = parse_report(
            r#"{"converged": false, "settle_ms": null,
            "repair_rebroadcasts": 0, "repaired_deliveries": 0, "packets_lost": 0}"#,
        )
        .unwrap();
        assert_eq!(not_converged.settle_ms, None);
        assert!(parse_report("{}").is_err());
        assert!(parse_report("not json").is_err());
    }

    #[test]
    fn the_report_file_is_title_and_markdown() {
        let json: serde_json::Value = serde_json::from_str(&report_json("| a |\n")).unwrap();
        assert_eq!(json["markdown"], "| a |\n");
        assert!(json["title"].as_str().unwrap().contains("Repair"));
    }
}
