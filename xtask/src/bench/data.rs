//! What the report is made of: the `sds bench --json` output of each backend, read from
//! JSON without a schema crate, and the extra sections other benchmarks leave behind.

use serde_json::Value;

/// One timed figure of one backend.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub workload: String,
    pub case: String,
    pub history: u64,
    pub median_us: f64,
    pub p99_us: f64,
    pub spread_pct: f64,
    pub baseline_median_us: f64,
    pub baseline_spread_pct: f64,
    pub baseline_name: String,
    pub ratio: f64,
    /// A second baseline (Redis: one SET): its name, median and the ratio to it.
    pub alt: Option<(String, f64, f64)>,
}

/// One snapshot profile's encoded size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub profile: String,
    pub payload_bytes: u64,
    pub outgoing: u64,
    pub incoming: u64,
    pub repairs: u64,
    pub encoded_bytes: u64,
}

/// Commit latency at the largest history over the smallest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flatness {
    pub small: u64,
    pub large: u64,
    pub backend_ratio: f64,
    pub baseline_ratio: f64,
}

/// Everything `sds bench --json` reported for one backend.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measured {
    pub kind: String,
    pub durability: Option<String>,
    pub server_version: Option<String>,
    pub quick: bool,
    pub figures: Vec<Figure>,
    pub snapshots: Vec<Snapshot>,
    pub flatness: Option<Flatness>,
}

impl Measured {
    /// The figure of `workload` and `case`, if measured.
    pub fn figure(&self, workload: &str, case: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|figure| figure.workload == workload && figure.case == case)
    }

    /// Whether this backend stores anything durably (every kind but memory).
    pub fn is_real(&self) -> bool {
        self.kind != "memory"
    }
}

/// One backend of the run and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BackendRun {
    /// Its name in the report (`rocksdb (fsync)`, …).
    pub label: String,
    /// The URL it was benchmarked at (password hidden by `sds bench`).
    pub url: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Measured(Measured),
    /// Not in the report, and why.
    LeftOut(String),
}

/// An extra section of the report: a title and a markdown table, from another benchmark.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExtraSection {
    pub title: String,
    pub table: String,
    pub notes: Option<String>,
    /// The file it came from.
    pub source: String,
}

fn text(value: &Value, key: &str) -> Result<String, String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{key}` is missing or not a string"))
}

fn number(value: &Value, key: &str) -> Result<f64, String> {
    value[key]
        .as_f64()
        .ok_or_else(|| format!("`{key}` is missing or not a number"))
}

fn count(value: &Value, key: &str) -> Result<u64, String> {
    value[key]
        .as_u64()
        .ok_or_else(|| format!("`{key}` is missing or not a count"))
}

fn list<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    value[key]
        .as_array()
        .ok_or_else(|| format!("`{key}` is missing or not a list"))
}

/// Reads the JSON `sds bench --json` printed.
pub(crate) fn parse_measured(json: &str) -> Result<Measured, String> {
    let root: Value = serde_json::from_str(json).map_err(|err| format!("not JSON: {err}"))?;
    if root["schema"].as_u64() != Some(1) {
        return Err(format!(
            "report schema {} (this xtask reads schema 1)",
            root["schema"]
        ));
    }
    let figures = list(&root, "figures")?
        .iter()
        .map(|figure| {
            let backend = &figure["backend"];
            let baseline = &figure["baseline"];
            let alt = match &figure["alt_baseline"] {
                Value::Null => None,
                alt => Some((
                    text(alt, "name")?,
                    number(&alt["stats"], "median_us")?,
                    number(alt, "ratio")?,
                )),
            };
            Ok(Figure {
                workload: text(figure, "workload")?,
                case: text(figure, "case")?,
                history: count(figure, "history")?,
                median_us: number(backend, "median_us")?,
                p99_us: number(backend, "p99_us")?,
                spread_pct: number(backend, "spread_pct")?,
                baseline_median_us: number(baseline, "median_us")?,
                baseline_spread_pct: number(baseline, "spread_pct")?,
                baseline_name: text(figure, "baseline_name")?,
                ratio: number(figure, "ratio")?,
                alt,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let snapshots = list(&root, "snapshots")?
        .iter()
        .map(|size| {
            Ok(Snapshot {
                profile: text(size, "profile")?,
                payload_bytes: count(size, "payload_bytes")?,
                outgoing: count(size, "outgoing")?,
                incoming: count(size, "incoming")?,
                repairs: count(size, "repairs")?,
                encoded_bytes: count(size, "encoded_bytes")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let flatness = match &root["flatness"] {
        Value::Null => None,
        flat => Some(Flatness {
            small: count(flat, "small")?,
            large: count(flat, "large")?,
            backend_ratio: number(flat, "backend_ratio")?,
            baseline_ratio: number(flat, "baseline_ratio")?,
        }),
    };
    Ok(Measured {
        kind: text(&root, "kind")?,
        durability: root["durability"].as_str().map(str::to_owned),
        server_version: root["server_version"].as_str().map(str::to_owned),
        quick: root["quick"].as_bool().unwrap_or(false),
        figures,
        snapshots,
        flatness,
    })
}

/// Reads one extra-section file: an object `{"title", "table", "notes"?}` (`markdown` is
/// read as `table` too) or a list of them.
pub(crate) fn parse_extra(json: &str, source: &str) -> Result<Vec<ExtraSection>, String> {
    let root: Value = serde_json::from_str(json).map_err(|err| format!("not JSON: {err}"))?;
    let items = match &root {
        Value::Array(items) => items.iter().collect(),
        object @ Value::Object(_) => vec![object],
        _ => return Err("expected an object or a list of objects".to_owned()),
    };
    items
        .into_iter()
        .map(|item| {
            Ok(ExtraSection {
                title: text(item, "title")?,
                // `markdown` is accepted as another name of `table`.
                table: text(item, "table").or_else(|_| {
                    text(item, "markdown").map_err(|_| {
                        "`table` (or `markdown`) is missing or not a string".to_owned()
                    })
                })?,
                notes: item["notes"].as_str().map(str::to_owned),
                source: source.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = r#"{"samples": 3, "min_us": 1.0, "median_us": 2.0, "p25_us": 1.5,
        "p75_us": 2.5, "p99_us": 3.0, "spread_pct": 50.0}"#;

    fn report() -> String {
        format!(
            r#"{{"schema": 1, "sds_version": "0.1.0", "backend": "memory://", "kind": "memory",
            "durability": null, "server_version": null, "quick": true,
            "snapshots": [{{"profile": "idle", "payload_bytes": 100, "outgoing": 0,
              "incoming": 0, "repairs": 0, "encoded_bytes": 17}}],
            "figures": [{{"workload": "commit", "case": "idle/100B", "history": 1000,
              "backend": {STATS}, "baseline": {STATS}, "baseline_name": "x", "ratio": 1.0,
              "alt_baseline": {{"name": "one SET", "stats": {STATS}, "ratio": 2.0}}}}],
            "flatness": {{"small": 1000, "large": 10000, "backend_ratio": 1.1,
              "baseline_ratio": 1.0}}}}"#
        )
    }

    #[test]
    fn reads_what_sds_bench_prints() {
        let measured = parse_measured(&report()).unwrap();
        assert_eq!(measured.kind, "memory");
        assert!(measured.quick && !measured.is_real());
        let figure = measured.figure("commit", "idle/100B").unwrap();
        assert_eq!(
            (figure.median_us, figure.p99_us, figure.ratio),
            (2.0, 3.0, 1.0)
        );
        assert_eq!(figure.alt, Some(("one SET".to_owned(), 2.0, 2.0)));
        assert_eq!(measured.snapshots[0].encoded_bytes, 17);
        assert_eq!(measured.flatness.unwrap().large, 10_000);
    }

    #[test]
    fn refuses_other_schemas_and_broken_json() {
        assert!(parse_measured(&report().replace(r#""schema": 1"#, r#""schema": 2"#)).is_err());
        assert!(parse_measured("{").is_err());
        let missing = report().replace(r#""ratio": 1.0,"#, "");
        assert!(parse_measured(&missing).unwrap_err().contains("ratio"));
    }

    #[test]
    fn extra_sections_are_one_object_or_a_list() {
        let one = r#"{"title": "Protocol", "table": "| a |\n|---|\n| 1 |"}"#;
        let sections = parse_extra(one, "p.json").unwrap();
        assert_eq!(sections[0].title, "Protocol");
        assert_eq!(sections[0].notes, None);
        let two = format!(r#"[{one}, {{"title": "R", "table": "t", "notes": "n"}}]"#);
        assert_eq!(parse_extra(&two, "r.json").unwrap().len(), 2);
        assert!(parse_extra(r#"{"title": "no table"}"#, "x").is_err());
        let aliased = parse_extra(r#"{"title": "T", "markdown": "| m |"}"#, "m").unwrap();
        assert_eq!(aliased[0].table, "| m |");
        assert!(parse_extra("3", "x").is_err());
    }
}
