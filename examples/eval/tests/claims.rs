//! The claims the README makes, checked on the simulated runs, and the evaluation's
//! determinism.

use seawall_eval::report::{ScenarioResult, json};
use seawall_eval::{evaluate, scenario};

fn results(seed: u64) -> Vec<ScenarioResult> {
    scenario::all(seed)
        .into_iter()
        .map(|s| evaluate(s, seed).0)
        .collect()
}

fn find<'a>(results: &'a [ScenarioResult], name: &str) -> &'a ScenarioResult {
    results
        .iter()
        .find(|r| r.scenario.name == name)
        .expect("scenario")
}

#[test]
fn claims_hold_and_runs_repeat_exactly() {
    let first = results(1);

    // The same seed gives byte-identical results.
    assert_eq!(json(1, &first), json(1, &results(1)));

    for result in &first {
        let (naive, seawall) = (&result.runs[0].1, &result.runs[1].1);
        let name = result.scenario.name;
        // Seawall's success rate is at least naive's (within half a point: a statistical tie).
        assert!(
            seawall.success_pct + 0.5 >= naive.success_pct,
            "{name}: seawall {:.2} % < naive {:.2} %",
            seawall.success_pct,
            naive.success_pct
        );
        // No Seawall request finishes after its deadline.
        assert_eq!(seawall.past_deadline, 0, "{name}");
        // Caller errors are never retried by Seawall.
        assert_eq!(seawall.caller_errors_retried, 0, "{name}");
        // Naive does better on no measure, by the verdict computed from the numbers.
        assert!(
            result.verdict.ends_with("naive better on nothing"),
            "{name}: {}",
            result.verdict
        );
    }

    let storm = find(&first, "retry-storm");
    let (naive, seawall) = (&storm.runs[0].1, &storm.runs[1].1);
    assert!(
        seawall.attempts_during_fault <= 1.1,
        "{}",
        seawall.attempts_during_fault
    );
    assert!(
        naive.attempts_during_fault > 2.0,
        "{}",
        naive.attempts_during_fault
    );

    // With its recovery probe, Seawall serves again within a second of the dependency's
    // return.
    let restart = find(&first, "dependency-restart");
    let recovery = restart.runs[1]
        .1
        .recovery_s
        .expect("the fault ends before the run");
    assert!(recovery.is_some_and(|s| s <= 1), "{recovery:?}");

    // The naive client does retry caller errors: the measure can see it.
    let transient = find(&first, "transient-errors");
    assert!(transient.runs[0].1.caller_errors_retried > 0);
    // Fast faults are retried fast: p99 at most 1.1x naive's (which retries at once).
    let (naive, seawall) = (&transient.runs[0].1, &transient.runs[1].1);
    assert!(
        seawall.p99 <= naive.p99.mul_f64(1.1),
        "{:?} vs {:?}",
        seawall.p99,
        naive.p99
    );

    // A different seed gives different numbers but the same verdicts.
    let second = results(2);
    assert_ne!(json(1, &first), json(1, &second));
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.verdict, b.verdict, "{}", a.scenario.name);
    }
}
