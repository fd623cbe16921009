//! `seawall-eval`: production failure scenarios through four client stacks (naive, tower, tower-resilience, Seawall), side by side.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::{Parser, ValueEnum};
use seawall::limit::Discipline;
use seawall_eval::report::{csv, json, markdown, table, verdicts};
use seawall_eval::scenario::Stack;
use seawall_eval::{evaluate, scenario, svg};

/// Runs production failure scenarios against a simulated dependency with four client stacks
/// (a naive client, tower's built-in middleware, tower-resilience, and Seawall's standard
/// pipeline) and prints what each measured, side by side, with the best stack per measure.
///
/// Simulated runs use a paused clock: minutes of traffic take seconds, and the same seed gives
/// byte-identical results.
#[derive(Debug, Parser)]
#[command(name = "seawall-eval", version)]
struct Options {
    /// Run this scenario (repeatable; default: all).
    #[arg(long = "scenario", value_name = "NAME", value_parser = PossibleValuesParser::new(scenario::names()))]
    scenarios: Vec<String>,
    /// Run this stack (repeatable; default: all four).
    #[arg(long = "stack", value_name = "NAME", value_enum)]
    stacks: Vec<Stack>,
    /// List the scenarios and what they reproduce, then exit.
    #[arg(long)]
    list: bool,
    /// Seed of every random choice.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Where to write report.md, results.json, results.csv and the timelines.
    #[arg(long, value_name = "DIR", default_value = "target/seawall-eval")]
    out: PathBuf,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// With --redis: run the scenarios that apply against these real servers, through a
    /// fault proxy, in real time (12 s each).
    #[arg(long, value_name = "URL", requires = "redis")]
    postgres: Option<String>,
    /// The Redis server of real mode (with --postgres).
    #[arg(long, value_name = "URL", requires = "postgres")]
    redis: Option<String>,
    /// The database limit's queue discipline for the Seawall stacks, in place of the
    /// preset's: `fifo`, or `codel:INTERVAL_MS:TARGET_MS` (controlled delay).
    #[arg(long, value_name = "DISCIPLINE", value_parser = parse_queue)]
    queue: Option<Discipline>,
}

/// `fifo` or `codel:INTERVAL_MS:TARGET_MS`, checked as the limit's builder checks it.
fn parse_queue(spec: &str) -> Result<Discipline, String> {
    let discipline = match spec.split(':').collect::<Vec<_>>().as_slice() {
        ["fifo"] => Discipline::Fifo,
        ["codel", interval, target] => {
            let ms = |value: &str| {
                value
                    .parse::<u64>()
                    .map(std::time::Duration::from_millis)
                    .map_err(|_| format!("{value:?} is not a whole number of milliseconds"))
            };
            Discipline::ControlledDelay {
                interval: ms(interval)?,
                target: ms(target)?,
            }
        }
        _ => return Err("expected `fifo` or `codel:INTERVAL_MS:TARGET_MS`".to_owned()),
    };
    seawall::limit::ConcurrencyLimitLayer::builder(1)
        .discipline(discipline)
        .build()
        .map(|_| discipline)
        .map_err(|error| error.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A Markdown table and the verdicts.
    Table,
    /// The results as JSON.
    Json,
    /// The results as CSV.
    Csv,
}

fn main() -> ExitCode {
    let options = Options::parse();
    let mut all = scenario::all(options.seed);
    for scenario in &mut all {
        scenario.queue = options.queue;
    }
    if options.list {
        for scenario in &all {
            println!("{:<20} {}", scenario.name, scenario.reproduces);
        }
        return ExitCode::SUCCESS;
    }
    let targets = match (&options.postgres, &options.redis) {
        (Some(postgres), Some(redis)) => Some(seawall_eval::real::Targets {
            postgres: postgres.clone(),
            redis: redis.clone(),
        }),
        _ => None,
    };
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|s| options.scenarios.is_empty() || options.scenarios.iter().any(|n| n == s.name))
        .filter(|s| {
            let applies = targets.is_none() || seawall_eval::real::SCENARIOS.contains(&s.name);
            if !applies {
                eprintln!("{}: simulated only, skipped in real mode", s.name);
            }
            applies
        })
        .collect();

    if let Err(error) = std::fs::create_dir_all(&options.out) {
        eprintln!("error: cannot create {}: {error}", options.out.display());
        return ExitCode::FAILURE;
    }
    let mut stacks = options.stacks.clone();
    if stacks.is_empty() {
        stacks = Stack::ALL.to_vec();
    }
    stacks.sort();
    stacks.dedup();
    let progress = std::io::stderr().is_terminal();
    let total = chosen.len();
    let mut results = Vec::new();
    for (i, scenario) in chosen.into_iter().enumerate() {
        if progress {
            eprint!("\r[{}/{total}] {:<24}", i + 1, scenario.name);
        }
        let (result, runs) = match &targets {
            None => evaluate(scenario, options.seed, &stacks),
            Some(targets) => {
                match seawall_eval::evaluate_real(
                    seawall_eval::real::shortened(&scenario),
                    options.seed,
                    &stacks,
                    targets,
                ) {
                    Ok(done) => done,
                    Err(message) => {
                        eprintln!("error: {message}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let picture = svg::timeline(&result.scenario, &runs.iter().collect::<Vec<_>>());
        let path = options.out.join(format!("{}.svg", result.scenario.name));
        if let Err(error) = std::fs::write(&path, picture) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        results.push(result);
    }
    if progress {
        eprintln!("\r{:<40}", "");
    }

    let table = table(&results);
    let verdicts = verdicts(&results);
    let json = json(options.seed, &results);
    let report = markdown(options.seed, &results);
    for (name, content) in [
        ("report.md", &report),
        ("results.json", &json),
        ("results.csv", &csv(&results)),
    ] {
        let path = options.out.join(name);
        if let Err(error) = std::fs::write(&path, content) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    match options.format {
        Format::Table => {
            print!("{table}\n{verdicts}");
            println!(
                "\nreport, JSON, CSV and timelines written to {}",
                options.out.display()
            );
        }
        Format::Json => print!("{json}"),
        Format::Csv => print!("{}", csv(&results)),
    }
    ExitCode::SUCCESS
}
