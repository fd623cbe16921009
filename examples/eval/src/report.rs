//! Metrics from runs, and the report: table, JSON, CSV, verdicts.

use std::fmt::Write as _;
use std::time::Duration;

use seawall::{Class, FailureKind};

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
    /// Calls at the dependency that did not give the caller its answer in time (failed,
    /// never answered, or answered after the caller's deadline), per request sent while the
    /// fault was on: the load a stack put on a failing dependency for nothing.
    pub wasted_calls_during_fault: f64,
    /// Seconds from the end of the fault to the first second with 99 % success, when the
    /// fault ends before the run does; `None` if it never recovered.
    pub recovery_s: Option<Option<u64>>,
    /// Requests refused at once (under a millisecond) by a layer of the stack.
    pub fast_rejections: usize,
    /// Requests retried after a caller error (must be zero).
    pub caller_errors_retried: usize,
    /// In the priority-spike scenario: how the requests users wait for fared during the
    /// spike and without it, and how much of the spike was served.
    pub spike: Option<Spike>,
    /// The p99 latency of the requests answered in time.
    pub answered_p99: Duration,
    /// Requests a layer of the stack refused (at once or after a wait in a queue).
    pub refused: usize,
    /// The p99 latency of those refusals: how long a refused caller waited to hear it.
    pub refused_p99: Duration,
}

/// The requests users wait for (critical), during a spike of sheddable work and outside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// Critical requests sent during the spike answered in time, in percent.
    pub critical_success_pct: f64,
    /// Their p99 latency.
    pub critical_p99: Duration,
    /// The p99 latency of critical requests sent outside the spike.
    pub calm_p99: Duration,
    /// Sheddable requests of the spike answered in time, in percent.
    pub sheddable_served_pct: f64,
}

/// The spike's figures of `run`, if the scenario has a spike.
fn spike(scenario: &Scenario, run: &Run) -> Option<Spike> {
    if scenario.spike == 0 {
        return None;
    }
    let during =
        |r: &crate::scenario::Record| (scenario.fault.0..scenario.fault.1).contains(&r.sent);
    let spiked = run.records.iter().filter(|r| during(r)).count();
    let answered = run
        .records
        .iter()
        .filter(|r| during(r) && r.outcome == Outcome::Success)
        .count();
    let (served, sent) = run.spike;
    Some(Spike {
        critical_success_pct: 100.0 * answered as f64 / spiked.max(1) as f64,
        critical_p99: p99_of(run, during),
        calm_p99: p99_of(run, |r| !during(r)),
        sheddable_served_pct: 100.0 * served as f64 / sent.max(1) as f64,
    })
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
    let (mut fault_calls, mut wasted_calls, mut fault_requests) = (0, 0, 0);
    for (record, calls) in run.records.iter().zip(&run.calls) {
        if (scenario.fault.0..scenario.fault.1).contains(&record.sent) {
            fault_requests += 1;
            fault_calls += calls.len();
            // The one useful call: the last, when it answered and the caller got it in time.
            let useful = record.outcome == Outcome::Success
                && matches!(calls.last(), Some(Some(Class::Success)));
            wasted_calls += calls.len() - usize::from(useful);
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
        wasted_calls_during_fault: wasted_calls as f64 / fault_requests.max(1) as f64,
        recovery_s,
        fast_rejections: run
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Rejected)
            .count(),
        caller_errors_retried,
        spike: spike(scenario, run),
        answered_p99: p99_of(run, |r| r.outcome == Outcome::Success),
        refused: run.records.iter().filter(|r| r.refused).count(),
        refused_p99: p99_of(run, |r| r.refused),
    }
}

/// The p99 latency of the records of `run` that `pick` picks.
fn p99_of(run: &Run, pick: impl Fn(&crate::scenario::Record) -> bool) -> Duration {
    let mut latencies: Vec<Duration> = run
        .records
        .iter()
        .filter(|r| pick(r))
        .map(|r| r.latency)
        .collect();
    latencies.sort();
    percentile(&latencies, 0.99)
}

/// A measure a verdict compares: its name, its value, whether higher is better, and the
/// difference under which two values are a tie (the measure's own noise).
struct Measure {
    name: &'static str,
    value: f64,
    higher_is_better: bool,
    slack: f64,
}

fn measures(m: &Metrics) -> Vec<Measure> {
    let measure = |name, value, higher_is_better, slack| Measure {
        name,
        value,
        higher_is_better,
        slack,
    };
    let mut out = vec![
        measure("success", m.success_pct, true, 0.5),
        measure("p99 latency", m.p99.as_secs_f64(), false, 0.005),
        measure("requests past deadline", m.past_deadline as f64, false, 1.0),
        measure(
            "wasted calls per request during the fault",
            m.wasted_calls_during_fault,
            false,
            0.02,
        ),
        measure("peak in-flight", m.peak_in_flight as f64, false, 2.0),
    ];
    if let Some(recovery) = m.recovery_s {
        out.push(measure(
            "recovery",
            recovery.map_or(1e6, |s| s as f64),
            false,
            1.0,
        ));
    }
    out
}

/// `true` when `a` beats `b` on `measure` by more than a relative 1 % and the measure's own
/// noise: differences within that are ties, so that verdicts do not flip with the seed.
fn beats(a: &Measure, b: &Measure) -> bool {
    let tolerance = (0.01 * a.value.abs().max(b.value.abs())).max(a.slack);
    if a.higher_is_better {
        a.value > b.value + tolerance
    } else {
        a.value + tolerance < b.value
    }
}

/// The measures on which `a` did better than `b`, beyond a tie.
pub fn better_on(a: &Metrics, b: &Metrics) -> Vec<&'static str> {
    measures(a)
        .iter()
        .zip(&measures(b))
        .filter(|(a, b)| beats(a, b))
        .map(|(a, _)| a.name)
        .collect()
}

/// Per measure, the stacks that did best: every stack no other beats on it. The runs are of
/// one scenario, so every run has the same measures.
pub fn best(runs: &[(Stack, Metrics)]) -> Vec<(&'static str, Vec<Stack>)> {
    let all: Vec<(Stack, Vec<Measure>)> = runs.iter().map(|(s, m)| (*s, measures(m))).collect();
    let Some((_, first)) = all.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let winners = all
                .iter()
                .filter(|(_, mine)| !all.iter().any(|(_, other)| beats(&other[i], &mine[i])))
                .map(|(stack, _)| *stack)
                .collect();
            (first[i].name, winners)
        })
        .collect()
}

/// The verdict line from the measured numbers: the best stacks on each measure, then what
/// Seawall was not best on, plainly (when it ran).
pub fn verdict(best: &[(&'static str, Vec<Stack>)], seawall_ran: bool) -> String {
    let names = |stacks: &[Stack]| {
        stacks
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = best
        .iter()
        .map(|(measure, stacks)| format!("{measure}: {}", names(stacks)))
        .collect::<Vec<_>>()
        .join("; ");
    let missed: Vec<String> = best
        .iter()
        .filter(|(_, stacks)| !stacks.contains(&Stack::Seawall))
        .map(|(measure, stacks)| format!("{measure} (best: {})", names(stacks)))
        .collect();
    if seawall_ran {
        if missed.is_empty() {
            line.push_str(" — seawall best on every measure");
        } else {
            line.push_str(&format!(" — seawall not best on {}", missed.join(", ")));
        }
    }
    line
}

/// The results of one scenario: every stack's run measured.
#[derive(Debug)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// (stack, metrics), in report order.
    pub runs: Vec<(Stack, Metrics)>,
    /// Per measure, the stacks that did best.
    pub best: Vec<(&'static str, Vec<Stack>)>,
    /// The verdict line.
    pub verdict: String,
}

impl ScenarioResult {
    /// Measures `runs` of `scenario` and computes the verdict.
    pub fn new(scenario: Scenario, runs: Vec<(Stack, Metrics)>) -> Self {
        let best = best(&runs);
        let verdict = verdict(&best, runs.iter().any(|(s, _)| *s == Stack::Seawall));
        ScenarioResult {
            scenario,
            runs,
            best,
            verdict,
        }
    }

    /// The metrics of `stack`, if it ran.
    pub fn metrics(&self, stack: Stack) -> Option<&Metrics> {
        self.runs.iter().find(|(s, _)| *s == stack).map(|(_, m)| m)
    }
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
        format!(
            "{:.*}",
            if precise { 4 } else { 2 },
            m.wasted_calls_during_fault
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
    out.push_str("| scenario | stack | requests | success | p50 ms | p99 ms | max ms | past deadline | peak in-flight | calls/req | calls/req in fault | wasted calls/req in fault | recovery | fast rejections |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for result in results {
        for (stack, m) in &result.runs {
            let _ = writeln!(
                out,
                "| {} |",
                cells(result.scenario.name, *stack, m, false).join(" | ")
            );
        }
    }
    out.push_str("\nWhat callers heard, answered or refused (a refusal heard late is a wait for nothing):\n\n");
    out.push_str("| scenario | stack | answered p99 ms | refused | refused p99 ms |\n");
    out.push_str("|---|---|---:|---:|---:|\n");
    for result in results {
        for (stack, m) in &result.runs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                result.scenario.name,
                stack.name(),
                ms(m.answered_p99),
                m.refused,
                if m.refused == 0 {
                    "-".to_owned()
                } else {
                    ms(m.refused_p99)
                },
            );
        }
    }
    let spiked: Vec<_> = results
        .iter()
        .flat_map(|r| {
            r.runs
                .iter()
                .map(move |(stack, m)| (r.scenario.name, stack, m))
        })
        .filter_map(|(name, stack, m)| m.spike.as_ref().map(|spike| (name, stack, spike)))
        .collect();
    if !spiked.is_empty() {
        out.push_str(
            "\nThe requests users wait for (critical) while sheddable work floods in:\n\n",
        );
        out.push_str("| scenario | stack | critical success during the spike | critical p99 ms during the spike | critical p99 ms without it | ratio | sheddable served |\n");
        out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
        for (name, stack, spike) in spiked {
            let _ = writeln!(
                out,
                "| {name} | {} | {:.1} % | {} | {} | {:.2}x | {:.1} % |",
                stack.name(),
                spike.critical_success_pct,
                ms(spike.critical_p99),
                ms(spike.calm_p99),
                spike.critical_p99.as_secs_f64() / spike.calm_p99.as_secs_f64().max(1e-9),
                spike.sheddable_served_pct,
            );
        }
    }
    out
}

/// The stacks the results cover, in report order.
pub fn stacks(results: &[ScenarioResult]) -> Vec<Stack> {
    let mut stacks: Vec<Stack> = results
        .iter()
        .flat_map(|r| r.runs.iter().map(|(s, _)| *s))
        .collect();
    stacks.sort();
    stacks.dedup();
    stacks
}

/// How each stack is configured, as a Markdown list.
pub fn configurations(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    for stack in stacks(results) {
        let _ = writeln!(out, "- **{}**: {}", stack.name(), stack.config());
    }
    out
}

/// The whole report, as Markdown: the table, the verdicts, how to read them, each stack's
/// configuration, and the timelines.
pub fn markdown(seed: u64, results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "# Seawall evaluation (seed {seed})\n\n{}\n## Verdicts\n\n\
         Per measure, the stacks no other stack beat (differences within 1 % or the measure's \
         own noise are ties), computed from the numbers above; then what Seawall was not best \
         on.\n\n{}\n## Stacks\n\n{}\n## Timelines\n\n",
        table(results),
        verdicts(results),
        configurations(results),
    );
    for result in results {
        let _ = write!(
            out,
            "### {}\n\n{}.\n\n![{0}]({0}.svg)\n\n",
            result.scenario.name, result.scenario.reproduces
        );
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
    stacks: Vec<JsonStack>,
    scenarios: Vec<JsonScenario<'a>>,
}

#[derive(serde::Serialize)]
struct JsonStack {
    name: &'static str,
    config: &'static str,
}

#[derive(serde::Serialize)]
struct JsonBest {
    measure: &'static str,
    stacks: Vec<&'static str>,
}

#[derive(serde::Serialize)]
struct JsonScenario<'a> {
    name: &'a str,
    reproduces: &'a str,
    verdict: &'a str,
    best: Vec<JsonBest>,
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
    wasted_calls_during_fault: f64,
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
        stacks: stacks(results)
            .into_iter()
            .map(|stack| JsonStack {
                name: stack.name(),
                config: stack.config(),
            })
            .collect(),
        scenarios: results
            .iter()
            .map(|result| JsonScenario {
                name: result.scenario.name,
                reproduces: result.scenario.reproduces,
                verdict: &result.verdict,
                best: result
                    .best
                    .iter()
                    .map(|(measure, stacks)| JsonBest {
                        measure,
                        stacks: stacks.iter().map(|s| s.name()).collect(),
                    })
                    .collect(),
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
                        wasted_calls_during_fault: rounded(m.wasted_calls_during_fault, 4),
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
        "scenario,stack,requests,success_pct,p50_ms,p99_ms,max_ms,past_deadline,peak_in_flight,attempts_per_request,attempts_during_fault,wasted_calls_during_fault,recovery_s,fast_rejections,caller_errors_retried\n",
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
