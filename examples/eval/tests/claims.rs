//! The claims the README makes, checked on the simulated runs of every stack, and the
//! evaluation's determinism.

use seawall_eval::report::{ScenarioResult, better_on, json, markdown};
use seawall_eval::scenario::Stack;
use seawall_eval::{evaluate, scenario};

fn results(seed: u64) -> Vec<ScenarioResult> {
    scenario::all(seed)
        .into_iter()
        .map(|s| evaluate(s, seed, &Stack::ALL).0)
        .collect()
}

fn find<'a>(results: &'a [ScenarioResult], name: &str) -> &'a ScenarioResult {
    results
        .iter()
        .find(|r| r.scenario.name == name)
        .expect("scenario")
}

fn of(result: &ScenarioResult, stack: Stack) -> &seawall_eval::report::Metrics {
    result.metrics(stack).expect("every stack ran")
}

#[test]
fn claims_hold_and_runs_repeat_exactly() {
    let first = results(1);

    // The same seed gives byte-identical results, and the report prints every stack's
    // configuration.
    let again = results(1);
    assert_eq!(json(1, &first), json(1, &again));
    let report = markdown(1, &first);
    assert_eq!(report, markdown(1, &again));
    for stack in Stack::ALL.into_iter().chain([Stack::SeawallPipeline]) {
        assert!(report.contains(stack.config()), "{}", stack.name());
        assert!(json(1, &first).contains(&format!("\"name\": \"{}\"", stack.name())));
    }

    for result in &first {
        let name = result.scenario.name;
        // Four stacks, in report order, and the pipeline alone next to Seawall where Seawall
        // adds a layer to it.
        let mut expected = Stack::ALL.to_vec();
        if ["long-tail", "database-down"].contains(&name) {
            expected.insert(3, Stack::SeawallPipeline);
        }
        assert_eq!(
            result.runs.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            expected,
            "{name}"
        );
        let (naive, seawall) = (of(result, Stack::Naive), of(result, Stack::Seawall));
        // No Seawall request finishes after its deadline; caller errors are never retried.
        assert_eq!(seawall.past_deadline, 0, "{name}");
        assert_eq!(seawall.caller_errors_retried, 0, "{name}");
        // The naive client does better than Seawall on no measure, but for the calls a hedge
        // spends by design (checked against its budget below).
        let mut naive_better = better_on(naive, seawall);
        if name == "long-tail" {
            naive_better.retain(|m| *m != "wasted calls per request during the fault");
        }
        assert_eq!(naive_better, Vec::<&str>::new(), "{name}");
        // The verdict names, plainly, every measure Seawall was not best on.
        for (measure, best) in &result.best {
            if !best.contains(&Stack::Seawall) {
                let (_, missed) = result
                    .verdict
                    .split_once("seawall not best on ")
                    .unwrap_or_else(|| panic!("{name}: {}", result.verdict));
                assert!(missed.contains(measure), "{name}: {}", result.verdict);
            }
        }
        if result
            .best
            .iter()
            .all(|(_, best)| best.contains(&Stack::Seawall))
        {
            assert!(result.verdict.ends_with("seawall best on every measure"));
        }
    }

    let storm = find(&first, "retry-storm");
    let (naive, seawall) = (of(storm, Stack::Naive), of(storm, Stack::Seawall));
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
    // Against every stack, Seawall wastes the fewest calls on a dependency that fails them all.
    for stack in [Stack::Tower, Stack::TowerResilience] {
        assert!(
            seawall.wasted_calls_during_fault < of(storm, stack).wasted_calls_during_fault,
            "{}",
            stack.name()
        );
    }

    // With its recovery probe, Seawall serves again within a second of the dependency's
    // return.
    let restart = find(&first, "dependency-restart");
    let recovery = of(restart, Stack::Seawall)
        .recovery_s
        .expect("the fault ends before the run");
    assert!(recovery.is_some_and(|s| s <= 1), "{recovery:?}");

    // The naive client and tower's stack retry caller errors (neither classifies errors):
    // the measure can see it.
    let transient = find(&first, "transient-errors");
    assert!(of(transient, Stack::Naive).caller_errors_retried > 0);
    assert!(of(transient, Stack::Tower).caller_errors_retried > 0);
    // Fast faults are retried fast: p99 at most 1.1x naive's (which retries at once).
    let (naive, seawall) = (of(transient, Stack::Naive), of(transient, Stack::Seawall));
    assert!(
        seawall.p99 <= naive.p99.mul_f64(1.1),
        "{:?} vs {:?}",
        seawall.p99,
        naive.p99
    );

    // On a long tail, the hedge cuts p99 to a fraction of every other stack's, for at most
    // its budget's 10 % more calls.
    let tail = find(&first, "long-tail");
    let (hedged, alone) = (of(tail, Stack::Seawall), of(tail, Stack::SeawallPipeline));
    for stack in [
        Stack::Naive,
        Stack::Tower,
        Stack::TowerResilience,
        Stack::SeawallPipeline,
    ] {
        assert!(
            hedged.p99.mul_f64(3.0) < of(tail, stack).p99,
            "{}: {:?} vs {:?}",
            stack.name(),
            hedged.p99,
            of(tail, stack).p99
        );
    }
    assert!(
        hedged.attempts_per_request <= 1.1,
        "{}",
        hedged.attempts_per_request
    );
    assert!(hedged.attempts_per_request > alone.attempts_per_request);
    // Never fewer served: the pipeline alone may shed a few calls while slow ones hold the
    // limit (its standing queue), the hedge answers them.
    assert!(hedged.success_pct >= alone.success_pct);

    // With the database down, the stale cache answers the reads it cannot: every request is
    // served, where the pipeline alone fails the reads that missed the cache.
    let down = find(&first, "database-down");
    let (fallback, alone) = (of(down, Stack::Seawall), of(down, Stack::SeawallPipeline));
    assert_eq!(fallback.success_pct, 100.0);
    assert!(alone.success_pct < 95.0, "{}", alone.success_pct);
    for (measure, best) in &down.best {
        if *measure == "success" {
            assert_eq!(best, &[Stack::Seawall]);
        }
    }

    // A different seed gives different numbers, and the same comparison with the naive client.
    let second = results(2);
    assert_ne!(json(1, &first), json(1, &second));
    for (a, b) in first.iter().zip(&second) {
        let pair = |r: &ScenarioResult| {
            (
                better_on(of(r, Stack::Seawall), of(r, Stack::Naive)),
                better_on(of(r, Stack::Naive), of(r, Stack::Seawall)),
            )
        };
        assert_eq!(pair(a), pair(b), "{}", a.scenario.name);
    }
}

/// A subset of stacks runs alone, and its verdict only speaks of the stacks that ran.
#[test]
fn a_subset_of_stacks_is_compared_among_itself() {
    let scenario = scenario::all(1)
        .into_iter()
        .find(|s| s.name == "retry-storm")
        .expect("scenario");
    let (result, runs) = evaluate(scenario, 1, &[Stack::Tower, Stack::Seawall]);
    assert_eq!(runs.len(), 2);
    assert!(!result.verdict.contains("naive"), "{}", result.verdict);
    assert!(
        !result.verdict.contains("tower-resilience"),
        "{}",
        result.verdict
    );
}
