//! The evaluation: production failure scenarios run against a simulated dependency through
//! four client stacks (naive, tower, tower-resilience, Seawall), measured side by side. The
//! binary (`cargo run --release -p seawall-eval`) prints the table and writes the report;
//! this library is what it and its tests share.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

pub mod peers;
pub mod real;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod svg;

use report::{ScenarioResult, measure};
use scenario::{Scenario, Stack, run};

/// Runs `scenario` with each of `stacks` on the simulated dependency and measures them.
pub fn evaluate(
    scenario: Scenario,
    seed: u64,
    stacks: &[Stack],
) -> (ScenarioResult, Vec<scenario::Run>) {
    let runs: Vec<_> = scenario
        .stacks(stacks)
        .into_iter()
        .map(|stack| run(&scenario, stack, seed))
        .collect();
    summarize(scenario, runs)
}

/// Runs `scenario` in real time with each of `stacks` against real servers (see
/// [`real::shortened`] for the usual length).
pub fn evaluate_real(
    scenario: Scenario,
    seed: u64,
    stacks: &[Stack],
    targets: &real::Targets,
) -> Result<(ScenarioResult, Vec<scenario::Run>), String> {
    let runs = scenario
        .stacks(stacks)
        .into_iter()
        .map(|stack| real::run(&scenario, stack, seed, targets))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(summarize(scenario, runs))
}

fn summarize(scenario: Scenario, runs: Vec<scenario::Run>) -> (ScenarioResult, Vec<scenario::Run>) {
    let metrics: Vec<_> = runs
        .iter()
        .map(|run| (run.stack, measure(&scenario, run)))
        .collect();
    (ScenarioResult::new(scenario, metrics), runs)
}
