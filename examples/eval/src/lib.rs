//! The evaluation: production failure scenarios run against a simulated dependency with and
//! without Seawall, measured side by side. The binary (`cargo run --release -p seawall-eval`)
//! prints the table and writes the report; this library is what it and its tests share.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

pub mod report;
pub mod scenario;
pub mod sim;
pub mod svg;

use report::{ScenarioResult, measure, verdict};
use scenario::{Scenario, Stack, run};

/// Runs `scenario` with both stacks and measures them.
pub fn evaluate(scenario: Scenario, seed: u64) -> (ScenarioResult, Vec<scenario::Run>) {
    let runs: Vec<_> = [Stack::Naive, Stack::Seawall]
        .into_iter()
        .map(|stack| run(&scenario, stack, seed))
        .collect();
    let metrics: Vec<_> = runs
        .iter()
        .map(|run| (run.stack, measure(&scenario, run)))
        .collect();
    let verdict = verdict(&metrics[0].1, &metrics[1].1);
    (
        ScenarioResult {
            scenario,
            runs: metrics,
            verdict,
        },
        runs,
    )
}
