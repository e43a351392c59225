//! The report's charts, as SVG: commit latency per backend next to its raw baseline, and
//! latency against history size (commit and load).

use std::path::Path;

use plotters::prelude::*;

use super::data::Measured;
use super::markdown::duration;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 480;

/// Series colours: one per backend, its baseline in a lighter shade of the same.
const COLORS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

fn color(index: usize) -> RGBColor {
    COLORS[index % COLORS.len()]
}

/// The log-scale bounds that hold every value with some room.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|value| *value > 0.0)
        .fold((f64::MAX, f64::MIN), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    if low > high {
        (1.0, 10.0)
    } else {
        (low / 2.0, high * 2.0)
    }
}

fn draw_error(err: impl std::fmt::Display) -> String {
    format!("cannot draw the chart: {err}")
}

/// Grouped bars, log scale: for each backend, the commit median of the steady and the
/// pathological profile, each next to its raw baseline.
pub(crate) fn commit_chart(path: &Path, backends: &[(&str, &Measured)]) -> Result<(), String> {
    let cases = ["steady/100B", "pathological/1000B"];
    // (backend index, bar index within the group, median, label of the series)
    let mut bars = Vec::new();
    for (index, (_, m)) in backends.iter().enumerate() {
        for (case_index, case) in cases.iter().enumerate() {
            if let Some(figure) = m.figure("commit", case) {
                bars.push((index, case_index * 2, figure.median_us));
                bars.push((index, case_index * 2 + 1, figure.baseline_median_us));
            }
        }
    }
    let (low, high) = bounds(bars.iter().map(|bar| bar.2));
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let groups = backends.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Commit latency (median, log scale): backend next to its raw baseline",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(groups as f64 - 0.5), (low..high).log_scale())
        .map_err(draw_error)?;
    let names: Vec<String> = backends.iter().map(|(name, _)| name.to_string()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups + 1)
        .x_label_formatter(&|x| {
            let index = x.round();
            if (x - index).abs() < 1e-6 && index >= 0.0 {
                names.get(index as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("median per commit")
        .y_label_formatter(&|y| duration(*y))
        .draw()
        .map_err(draw_error)?;
    let series = [
        ("steady/100B, backend", color(0).filled()),
        ("steady/100B, raw baseline", color(0).mix(0.35).filled()),
        ("pathological/1000B, backend", color(1).filled()),
        (
            "pathological/1000B, raw baseline",
            color(1).mix(0.35).filled(),
        ),
    ];
    let bar_width = 0.8 / series.len() as f64;
    for (slot, (label, style)) in series.iter().enumerate() {
        let rectangles = bars
            .iter()
            .filter(|bar| bar.1 == slot)
            .map(|&(group, _, median)| {
                let left = group as f64 - 0.4 + slot as f64 * bar_width;
                Rectangle::new([(left, low), (left + bar_width * 0.9, median)], *style)
            });
        let style = *style;
        chart
            .draw_series(rectangles)
            .map_err(draw_error)?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)
}

/// One backend's points (history size, median): its own and its baseline's.
type Line = (String, Vec<(f64, f64)>, Vec<(f64, f64)>);

/// Lines, log-log: the median of `workload` against the history size, per backend (solid)
/// and its raw baseline (thin, same colour).
pub(crate) fn history_chart(
    path: &Path,
    title: &str,
    workload: &str,
    backends: &[(&str, &Measured)],
) -> Result<(), String> {
    let lines: Vec<Line> = backends
        .iter()
        .map(|(name, m)| {
            let mut points: Vec<(f64, f64, f64)> = m
                .figures
                .iter()
                .filter(|figure| figure.workload == workload)
                .map(|figure| {
                    (
                        figure.history as f64,
                        figure.median_us,
                        figure.baseline_median_us,
                    )
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (
                name.to_string(),
                points.iter().map(|p| (p.0, p.1)).collect(),
                points.iter().map(|p| (p.0, p.2)).collect(),
            )
        })
        .collect();
    let all = || lines.iter().flat_map(|line| line.1.iter().chain(&line.2));
    let (x_low, x_high) = bounds(all().map(|point| point.0));
    let (y_low, y_high) = bounds(all().map(|point| point.1));
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((x_low..x_high).log_scale(), (y_low..y_high).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("history entries stored")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("median")
        .y_label_formatter(&|y| duration(*y))
        .draw()
        .map_err(draw_error)?;
    for (index, (name, backend, baseline)) in lines.iter().enumerate() {
        let solid = color(index);
        chart
            .draw_series(LineSeries::new(backend.clone(), solid.stroke_width(3)))
            .map_err(draw_error)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], solid.stroke_width(3))
            });
        chart
            .draw_series(backend.iter().map(|p| Circle::new(*p, 4, solid.filled())))
            .map_err(draw_error)?;
        let light = solid.mix(0.45);
        chart
            .draw_series(LineSeries::new(baseline.clone(), light.stroke_width(1)))
            .map_err(draw_error)?
            .label(format!("{name}, raw baseline"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], light.stroke_width(1))
            });
        chart
            .draw_series(baseline.iter().map(|p| Circle::new(*p, 3, light.filled())))
            .map_err(draw_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::data::Figure;

    fn figure(workload: &str, case: &str, history: u64, median: f64) -> Figure {
        Figure {
            workload: workload.to_owned(),
            case: case.to_owned(),
            history,
            median_us: median,
            p99_us: median * 2.0,
            spread_pct: 5.0,
            baseline_median_us: median / 1.5,
            baseline_spread_pct: 5.0,
            baseline_name: "raw".to_owned(),
            ratio: 1.5,
            alt: None,
        }
    }

    #[test]
    fn charts_are_svg_files() {
        let measured = Measured {
            kind: "rocksdb".to_owned(),
            durability: None,
            server_version: None,
            quick: true,
            figures: vec![
                figure("commit", "steady/100B", 1_000, 12.0),
                figure("commit", "pathological/1000B", 1_000, 80.0),
                figure("commit_history", "1000 entries", 1_000, 12.0),
                figure("commit_history", "100000 entries", 100_000, 13.0),
            ],
            snapshots: Vec::new(),
            flatness: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let backends = [("rocksdb", &measured), ("again", &measured)];
        let commit = dir.path().join("commit.svg");
        commit_chart(&commit, &backends).unwrap();
        let history = dir.path().join("history.svg");
        history_chart(&history, "t", "commit_history", &backends).unwrap();
        for path in [commit, history] {
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(svg.contains("rocksdb"));
        }
    }
}
