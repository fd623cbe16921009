//! Metrics from runs, and the report: table, JSON, CSV, verdicts.

use std::fmt::Write as _;
use std::time::Duration;

use seawall::FailureKind;

use crate::scenario::{Outcome, Run, Scenario, Stack};

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Requests sent.
    pub requests: usize,
    /// Share answered within the deadline, in percent.
    pub success_pct: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
    /// Requests that finished after their deadline.
    pub past_deadline: usize,
    /// Most calls inside the dependency at once.
    pub peak_in_flight: u64,
    /// Calls at the dependency per request.
    pub attempts_per_request: f64,
    /// Calls at the dependency per request sent while the fault was on.
    pub attempts_during_fault: f64,
    /// Seconds from the end of the fault to the first second with 99 % success, when the
    /// fault ends before the run does; `None` if it never recovered.
    pub recovery_s: Option<Option<u64>>,
    /// Requests refused at once (under a millisecond) by a Seawall layer.
    pub fast_rejections: usize,
    /// Requests retried after a caller error (must be zero).
    pub caller_errors_retried: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Requests sent in each second of the run, by outcome: (success, failure, rejected).
pub fn outcomes_by_second(run: &Run, seconds: usize) -> Vec<(usize, usize, usize)> {
    let mut buckets = vec![(0, 0, 0); seconds];
    for record in &run.records {
        let second = (record.sent.as_secs() as usize).min(seconds - 1);
        let bucket = &mut buckets[second];
        match record.outcome {
            Outcome::Success => bucket.0 += 1,
            Outcome::Failure => bucket.1 += 1,
            Outcome::Rejected => bucket.2 += 1,
        }
    }
    buckets
}

/// The 99th percentile latency of the requests sent in each second.
pub fn p99_by_second(run: &Run, seconds: usize) -> Vec<Duration> {
    let mut buckets: Vec<Vec<Duration>> = vec![Vec::new(); seconds];
    for record in &run.records {
        let second = (record.sent.as_secs() as usize).min(seconds - 1);
        buckets[second].push(record.latency);
    }
    buckets
        .into_iter()
        .map(|mut latencies| {
            latencies.sort();
            percentile(&latencies, 0.99)
        })
        .collect()
}

/// Measures one run of `scenario`.
pub fn measure(scenario: &Scenario, run: &Run) -> Metrics {
    let mut latencies: Vec<Duration> = run.records.iter().map(|r| r.latency).collect();
    latencies.sort();
    let requests = run.records.len();
    let successes = run
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Success)
        .count();
    let calls: usize = run.calls.iter().map(Vec::len).sum();
    let (mut fault_calls, mut fault_requests) = (0, 0);
    for (record, calls) in run.records.iter().zip(&run.calls) {
        if (scenario.fault.0..scenario.fault.1).contains(&record.sent) {
            fault_requests += 1;
            fault_calls += calls.len();
        }
    }
    let seconds = scenario.duration.as_secs() as usize;
    let recovery_s = (scenario.fault.1 < scenario.duration).then(|| {
        let end = scenario.fault.1.as_secs() as usize;
        outcomes_by_second(run, seconds)
            .iter()
            .enumerate()
            .skip(end)
            .find(|(_, (ok, failed, rejected))| {
                let total = ok + failed + rejected;
                total > 0 && *ok as f64 >= 0.99 * total as f64
            })
            .map(|(second, _)| (second - end) as u64)
    });
    let caller_errors_retried = run
        .calls
        .iter()
        .filter(|calls| {
            calls
                .iter()
                .position(|class| class.and_then(|c| c.kind()) == Some(FailureKind::Invalid))
                .is_some_and(|at| at + 1 < calls.len())
        })
        .count();
    Metrics {
        requests,
        success_pct: 100.0 * successes as f64 / requests.max(1) as f64,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        past_deadline: run
            .records
            .iter()
            .filter(|r| r.latency > scenario.deadline)
            .count(),
        peak_in_flight: run.peak_by_second.iter().copied().max().unwrap_or(0),
        attempts_per_request: calls as f64 / requests.max(1) as f64,
        attempts_during_fault: fault_calls as f64 / fault_requests.max(1) as f64,
        recovery_s,
        fast_rejections: run
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Rejected)
            .count(),
        caller_errors_retried,
    }
}

/// A one-line verdict from the measured numbers: which stack did better on each measure.
pub fn verdict(naive: &Metrics, seawall: &Metrics) -> String {
    let mut better = Vec::new();
    let mut worse = Vec::new();
    // Differences within a relative 1 %, or within the measure's own noise (`slack`), are ties:
    // verdicts must not flip with the seed.
    let mut compare =
        |name: &str, seawall_value: f64, naive_value: f64, higher_is_better: bool, slack: f64| {
            let (s, n) = if higher_is_better {
                (seawall_value, naive_value)
            } else {
                (-seawall_value, -naive_value)
            };
            let tolerance = (0.01 * seawall_value.abs().max(naive_value.abs())).max(slack);
            if s > n + tolerance {
                better.push(name.to_owned());
            } else if n > s + tolerance {
                worse.push(name.to_owned());
            }
        };
    compare("success", seawall.success_pct, naive.success_pct, true, 0.5);
    compare(
        "p99 latency",
        seawall.p99.as_secs_f64(),
        naive.p99.as_secs_f64(),
        false,
        0.005,
    );
    compare(
        "requests past deadline",
        seawall.past_deadline as f64,
        naive.past_deadline as f64,
        false,
        1.0,
    );
    compare(
        "calls per request during the fault",
        seawall.attempts_during_fault,
        naive.attempts_during_fault,
        false,
        0.02,
    );
    compare(
        "peak in-flight",
        seawall.peak_in_flight as f64,
        naive.peak_in_flight as f64,
        false,
        2.0,
    );
    if let (Some(s), Some(n)) = (seawall.recovery_s, naive.recovery_s) {
        let as_secs = |r: Option<u64>| r.map_or(1e6, |s| s as f64);
        compare("recovery", as_secs(s), as_secs(n), false, 1.0);
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "nothing".to_owned()
        } else {
            items.join(", ")
        }
    };
    format!(
        "seawall better on {}; naive better on {}",
        list(&better),
        list(&worse)
    )
}

/// The results of one scenario: both runs measured.
#[derive(Debug)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// (stack, metrics), naive first.
    pub runs: Vec<(Stack, Metrics)>,
    /// The verdict line.
    pub verdict: String,
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1_000.0)
}

fn recovery(r: Option<Option<u64>>) -> String {
    match r {
        None => "-".to_owned(),
        Some(None) => "never".to_owned(),
        Some(Some(s)) => format!("{s} s"),
    }
}

/// One run's cells, in column order: `precise` for CSV (more decimals, bare numbers), else
/// for the table.
fn cells(scenario: &str, stack: Stack, m: &Metrics, precise: bool) -> Vec<String> {
    let recovery = recovery(m.recovery_s);
    vec![
        scenario.to_owned(),
        stack.name().to_owned(),
        m.requests.to_string(),
        if precise {
            format!("{:.3}", m.success_pct)
        } else {
            format!("{:.1} %", m.success_pct)
        },
        ms(m.p50),
        ms(m.p99),
        ms(m.max),
        m.past_deadline.to_string(),
        m.peak_in_flight.to_string(),
        format!("{:.*}", if precise { 4 } else { 2 }, m.attempts_per_request),
        format!(
            "{:.*}",
            if precise { 4 } else { 2 },
            m.attempts_during_fault
        ),
        if precise {
            recovery.trim_end_matches(" s").to_owned()
        } else {
            recovery
        },
        m.fast_rejections.to_string(),
    ]
}

/// The side-by-side table, as Markdown.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | stack | requests | success | p50 ms | p99 ms | max ms | past deadline | peak in-flight | calls/req | calls/req in fault | recovery | fast rejections |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for result in results {
        for (stack, m) in &result.runs {
            let _ = writeln!(
                out,
                "| {} |",
                cells(result.scenario.name, *stack, m, false).join(" | ")
            );
        }
    }
    out
}

/// The verdicts, one line per scenario.
pub fn verdicts(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    for result in results {
        let _ = writeln!(out, "- {}: {}", result.scenario.name, result.verdict);
    }
    out
}

/// Rounds to `places` decimals, so the JSON carries the figures the table shows.
fn rounded(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    seed: u64,
    scenarios: Vec<JsonScenario<'a>>,
}

#[derive(serde::Serialize)]
struct JsonScenario<'a> {
    name: &'a str,
    reproduces: &'a str,
    verdict: &'a str,
    runs: Vec<JsonRun>,
}

#[derive(serde::Serialize)]
struct JsonRun {
    stack: &'static str,
    requests: usize,
    success_pct: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    past_deadline: usize,
    peak_in_flight: u64,
    attempts_per_request: f64,
    attempts_during_fault: f64,
    /// `null` when the scenario has no fault, `"never"` when it did not recover.
    recovery_s: serde_json::Value,
    fast_rejections: usize,
    caller_errors_retried: usize,
}

/// The results as JSON (stable field order and number formatting: the same seed gives the
/// same bytes).
pub fn json(seed: u64, results: &[ScenarioResult]) -> String {
    let report = JsonReport {
        seed,
        scenarios: results
            .iter()
            .map(|result| JsonScenario {
                name: result.scenario.name,
                reproduces: result.scenario.reproduces,
                verdict: &result.verdict,
                runs: result
                    .runs
                    .iter()
                    .map(|(stack, m)| JsonRun {
                        stack: stack.name(),
                        requests: m.requests,
                        success_pct: rounded(m.success_pct, 3),
                        p50_ms: rounded(m.p50.as_secs_f64() * 1e3, 1),
                        p99_ms: rounded(m.p99.as_secs_f64() * 1e3, 1),
                        max_ms: rounded(m.max.as_secs_f64() * 1e3, 1),
                        past_deadline: m.past_deadline,
                        peak_in_flight: m.peak_in_flight,
                        attempts_per_request: rounded(m.attempts_per_request, 4),
                        attempts_during_fault: rounded(m.attempts_during_fault, 4),
                        recovery_s: match m.recovery_s {
                            None => serde_json::Value::Null,
                            Some(None) => "never".into(),
                            Some(Some(s)) => s.into(),
                        },
                        fast_rejections: m.fast_rejections,
                        caller_errors_retried: m.caller_errors_retried,
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut out = serde_json::to_string_pretty(&report).expect("the report serializes");
    out.push('\n');
    out
}

/// The results as CSV.
pub fn csv(results: &[ScenarioResult]) -> String {
    let mut out = String::from(
        "scenario,stack,requests,success_pct,p50_ms,p99_ms,max_ms,past_deadline,peak_in_flight,attempts_per_request,attempts_during_fault,recovery_s,fast_rejections,caller_errors_retried\n",
    );
    for result in results {
        for (stack, m) in &result.runs {
            let mut row = cells(result.scenario.name, *stack, m, true);
            row.push(m.caller_errors_retried.to_string());
            let _ = writeln!(out, "{}", row.join(","));
        }
    }
    out
}
