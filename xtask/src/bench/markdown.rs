//! `BENCHMARKS.md`: the machine, each backend's figures beside its raw baseline, the
//! issue-15 targets, the charts and any extra sections.

use std::fmt::Write as _;

use super::data::{BackendRun, ExtraSection, Figure, Measured, Outcome};
use super::machine::Machine;

/// The targets.
pub(crate) const COMMIT_TARGET: f64 = 1.3;
pub(crate) const FLATNESS_TARGET: f64 = 1.2;
pub(crate) const LOAD_TARGET: f64 = 2.0;

/// Everything the page shows.
pub(crate) struct Page<'a> {
    pub date: String,
    /// How the benchmarked `sds` binary was built.
    pub build: String,
    pub command: String,
    pub machine: &'a Machine,
    pub runs: &'a [BackendRun],
    pub extras: &'a [ExtraSection],
    /// Extra-section files that could not be read, with why.
    pub unreadable: &'a [(String, String)],
    /// (alt text, path relative to the repository root) of each chart.
    pub charts: &'a [(String, String)],
}

/// A duration in microseconds with a unit that keeps it short.
pub(crate) fn duration(micros: f64) -> String {
    if micros >= 10_000.0 {
        format!("{:.1} ms", micros / 1_000.0)
    } else if micros >= 1_000.0 {
        format!("{:.2} ms", micros / 1_000.0)
    } else if micros >= 100.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{micros:.1} µs")
    }
}

/// `met` or `missed`, with the margin to the target.
fn verdict(value: f64, target: f64) -> String {
    if value <= target {
        format!(
            "**{value:.2}x** met ({:.1}% under {target}x)",
            (1.0 - value / target) * 100.0
        )
    } else {
        format!(
            "**{value:.2}x** missed ({:.1}% over {target}x)",
            (value / target - 1.0) * 100.0
        )
    }
}

fn measured(runs: &[BackendRun]) -> impl Iterator<Item = (&BackendRun, &Measured)> {
    runs.iter().filter_map(|run| match &run.outcome {
        Outcome::Measured(measured) => Some((run, measured)),
        Outcome::LeftOut(_) => None,
    })
}

/// The whole page.
pub(crate) fn render(page: &Page<'_>) -> String {
    let mut out = String::new();
    let quick = measured(page.runs).any(|(_, m)| m.quick);
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated on {} by `{}`{}. Every figure is the median of alternating samples of the \
         backend and of its **raw baseline**: the same bytes written or read with the \
         store's own client, on the same server or disk, with the same durability setting \
         (see `sds/src/bench/baseline.rs`). *ratio* = backend median / baseline median. \
         *spread* = interquartile range / median. Run `sds bench --backend URL` to measure \
         your own server.\n",
        page.date,
        page.command,
        if quick {
            " in **quick** mode (few samples: indicative only)"
        } else {
            ""
        }
    );

    let _ = writeln!(out, "## Machine\n");
    let machine = page.machine;
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| CPU | {} |", machine.cpu);
    let _ = writeln!(out, "| cores | {} |", machine.cores);
    let _ = writeln!(out, "| memory | {} |", machine.memory);
    let _ = writeln!(out, "| OS | {} |", machine.os);
    let _ = writeln!(
        out,
        "| load average at the start (1, 5, 15 min) | {} |",
        machine.load
    );
    let _ = writeln!(out, "| Rust | {} ({}) |", machine.rustc, page.build);
    for (run, m) in measured(page.runs) {
        if let Some(version) = &m.server_version {
            let _ = writeln!(out, "| {} | {version} |", run.label);
        }
    }
    out.push('\n');

    let _ = writeln!(out, "## Backends\n");
    let _ = writeln!(out, "| backend | URL | status |\n|---|---|---|");
    for run in page.runs {
        let status = match &run.outcome {
            Outcome::Measured(m) => format!(
                "measured{}",
                m.durability
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Outcome::LeftOut(why) => format!("left out: {}", why.replace('|', "\\|")),
        };
        let _ = writeln!(out, "| {} | `{}` | {status} |", run.label, run.url);
    }
    out.push('\n');

    targets(&mut out, page.runs);

    if !page.charts.is_empty() {
        let _ = writeln!(out, "## Charts\n");
        for (alt, path) in page.charts {
            let _ = writeln!(out, "![{alt}]({path})\n");
        }
    }

    commit_summary(&mut out, page.runs);
    for (run, m) in measured(page.runs) {
        backend_table(&mut out, &run.label, m);
    }
    snapshot_table(&mut out, page.runs);

    for extra in page.extras {
        let _ = writeln!(out, "## {}\n", extra.title);
        let _ = writeln!(out, "{}\n", extra.table.trim_end());
        if let Some(notes) = &extra.notes {
            let _ = writeln!(out, "{}\n", notes.trim_end());
        }
        let _ = writeln!(out, "<sub>from `{}`</sub>\n", extra.source);
    }
    for (file, why) in page.unreadable {
        let _ = writeln!(out, "*Extra section `{file}` left out: {why}*\n");
    }
    out
}

/// Which targets of issue 15 each real backend meets, and by how much.
fn targets(out: &mut String, runs: &[BackendRun]) {
    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(
        out,
        "From issue 15: commit within {COMMIT_TARGET}x of the raw baseline (worst snapshot \
         profile shown), commit latency flat in history size (largest / smallest history \
         at most {FLATNESS_TARGET}), `load_channel` of 10,000 entries within {LOAD_TARGET}x \
         of the raw range read. Memory is shown for reference: it has no durable \
         baseline.\n"
    );
    let _ = writeln!(
        out,
        "| backend | commit, steady/100B | commit, worst profile | history flatness | load 10k |\n\
         |---|---|---|---|---|"
    );
    for (run, m) in measured(runs) {
        let steady = m
            .figure("commit", "steady/100B")
            .map_or("–".to_owned(), |f| verdict(f.ratio, COMMIT_TARGET));
        let worst = m
            .figures
            .iter()
            .filter(|f| f.workload == "commit")
            .max_by(|a, b| a.ratio.total_cmp(&b.ratio))
            .map_or("–".to_owned(), |f| {
                format!("{} ({})", verdict(f.ratio, COMMIT_TARGET), f.case)
            });
        let flat = m.flatness.as_ref().map_or("–".to_owned(), |flat| {
            format!(
                "{} ({} vs {}; raw {:.2}x)",
                verdict(flat.backend_ratio, FLATNESS_TARGET),
                flat.large,
                flat.small,
                flat.baseline_ratio
            )
        });
        let load = m
            .figure("load_channel", "10000 entries")
            .map_or("–".to_owned(), |f| verdict(f.ratio, LOAD_TARGET));
        let label = if m.is_real() {
            run.label.clone()
        } else {
            format!("{} (reference)", run.label)
        };
        let _ = writeln!(out, "| {label} | {steady} | {worst} | {flat} | {load} |");
    }
    out.push('\n');
}

/// The steady commit of every backend side by side.
fn commit_summary(out: &mut String, runs: &[BackendRun]) {
    let _ = writeln!(out, "## Commit latency, every backend\n");
    let _ = writeln!(
        out,
        "One delivery (snapshot + one history append + one eviction) into a channel of 1,000 \
         entries.\n"
    );
    let _ = writeln!(
        out,
        "| backend | steady/100B | baseline | ratio | pathological/1000B | baseline | ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for (run, m) in measured(runs) {
        let cell = |case: &str| {
            m.figure("commit", case)
                .map_or("– | – | –".to_owned(), |f| {
                    format!(
                        "{} | {} | {:.2}x",
                        duration(f.median_us),
                        duration(f.baseline_median_us),
                        f.ratio
                    )
                })
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            run.label,
            cell("steady/100B"),
            cell("pathological/1000B")
        );
    }
    out.push('\n');
}

fn figure_row(figure: &Figure) -> String {
    let mut row = format!(
        "| {} | {} | {} | {} | ±{:.0}% | {} | ±{:.0}% | {:.2}x | {} |",
        figure.workload,
        figure.case,
        duration(figure.median_us),
        duration(figure.p99_us),
        figure.spread_pct / 2.0,
        duration(figure.baseline_median_us),
        figure.baseline_spread_pct / 2.0,
        figure.ratio,
        figure.baseline_name
    );
    if let Some((name, median, ratio)) = &figure.alt {
        let _ = write!(
            row,
            "\n| | | | | | {} | | {ratio:.2}x | {name} |",
            duration(*median)
        );
    }
    row
}

/// Every figure of one backend.
fn backend_table(out: &mut String, label: &str, m: &Measured) {
    let _ = writeln!(out, "## {label}\n");
    let _ = writeln!(
        out,
        "| workload | case | median | p99 | spread | baseline | spread | ratio | baseline does |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|"
    );
    for figure in &m.figures {
        let _ = writeln!(out, "{}", figure_row(figure));
    }
    if let Some(flat) = &m.flatness {
        let _ = writeln!(
            out,
            "\nCommit at {} entries over {} entries: {:.2}x (raw baseline: {:.2}x).",
            flat.large, flat.small, flat.backend_ratio, flat.baseline_ratio
        );
    }
    out.push('\n');
}

/// The encoded snapshot sizes (the same for every backend).
fn snapshot_table(out: &mut String, runs: &[BackendRun]) {
    let Some((_, m)) = measured(runs).next() else {
        return;
    };
    let _ = writeln!(out, "## Encoded snapshot sizes\n");
    let _ = writeln!(
        out,
        "| profile | payload | outgoing | incoming | repair entries (each way) | bytes |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for s in &m.snapshots {
        let _ = writeln!(
            out,
            "| {} | {} B | {} | {} | {} | {} |",
            s.profile, s.payload_bytes, s.outgoing, s.incoming, s.repairs, s.encoded_bytes
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::data::Flatness;

    fn figure(workload: &str, case: &str, ratio: f64) -> Figure {
        Figure {
            workload: workload.to_owned(),
            case: case.to_owned(),
            history: 1_000,
            median_us: 13.0 * ratio,
            p99_us: 40.0,
            spread_pct: 10.0,
            baseline_median_us: 13.0,
            baseline_spread_pct: 8.0,
            baseline_name: "one WriteBatch".to_owned(),
            ratio,
            alt: None,
        }
    }

    #[test]
    fn the_page_says_which_targets_are_met() {
        let machine = Machine {
            cpu: "CPU X".to_owned(),
            cores: 2,
            memory: "8.0 GiB".to_owned(),
            os: "Linux".to_owned(),
            rustc: "rustc 1.90".to_owned(),
            load: "0.10 0.20 0.30".to_owned(),
        };
        let runs = vec![
            BackendRun {
                label: "rocksdb".to_owned(),
                url: "rocksdb:///tmp/x".to_owned(),
                outcome: Outcome::Measured(Measured {
                    kind: "rocksdb".to_owned(),
                    durability: Some("sync off".to_owned()),
                    server_version: Some("RocksDB".to_owned()),
                    quick: false,
                    figures: vec![
                        figure("commit", "steady/100B", 1.1),
                        figure("commit", "pathological/1000B", 1.5),
                        figure("load_channel", "10000 entries", 1.8),
                    ],
                    snapshots: Vec::new(),
                    flatness: Some(Flatness {
                        small: 1_000,
                        large: 100_000,
                        backend_ratio: 1.05,
                        baseline_ratio: 1.0,
                    }),
                }),
            },
            BackendRun {
                label: "postgres".to_owned(),
                url: "postgres://p".to_owned(),
                outcome: Outcome::LeftOut("not landed".to_owned()),
            },
        ];
        let page = render(&Page {
            date: "2026-11-28".to_owned(),
            build: "release profile".to_owned(),
            command: "cargo xtask bench-report".to_owned(),
            machine: &machine,
            runs: &runs,
            extras: &[ExtraSection {
                title: "Protocol".to_owned(),
                table: "| a |\n|---|".to_owned(),
                notes: None,
                source: "p.json".to_owned(),
            }],
            unreadable: &[],
            charts: &[("commit".to_owned(), "docs/bench/commit.svg".to_owned())],
        });
        assert!(page.contains("| CPU | CPU X |"));
        assert!(page.contains("left out: not landed"));
        assert!(page.contains("**1.10x** met"));
        assert!(page.contains("**1.50x** missed"));
        assert!(page.contains("pathological/1000B)"));
        assert!(page.contains("**1.05x** met"));
        assert!(page.contains("## Protocol"));
        assert!(page.contains("![commit](docs/bench/commit.svg)"));
    }
}
