//! `seawall-eval`: production failure scenarios with and without Seawall, side by side.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use seawall_eval::report::{csv, json, table, verdicts};
use seawall_eval::{evaluate, scenario, svg};

const HELP: &str = "\
seawall-eval: runs production failure scenarios against a simulated dependency twice, with a
naive client (no limit, 30 s timeout, 3 immediate retries on every error) and with Seawall's
standard pipeline, and prints what each stack measured, side by side.

Simulated runs use a paused clock: minutes of traffic take seconds, and the same seed gives
byte-identical results.

USAGE:
    seawall-eval [OPTIONS]

OPTIONS:
    --scenario NAME      run this scenario (repeatable; default: all)
    --list               list the scenarios and what they reproduce, then exit
    --seed N             seed of every random choice (default 1)
    --out DIR            where to write report.md, results.json and the timelines
                         (default target/seawall-eval)
    --format FORMAT      what to print: table (default), json or csv
    --postgres URL       with --redis: run the scenarios that apply against these real
    --redis URL          servers, through a fault proxy, in real time (12 s each)
    -h, --help           print this help
";

#[derive(Debug)]
struct Options {
    scenarios: Vec<String>,
    list: bool,
    seed: u64,
    out: PathBuf,
    format: Format,
    postgres: Option<String>,
    redis: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        scenarios: Vec::new(),
        list: false,
        seed: 1,
        out: PathBuf::from("target/seawall-eval"),
        format: Format::Table,
        postgres: None,
        redis: None,
    };
    let names = scenario::names();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--list" => options.list = true,
            "--scenario" => {
                let name = value("--scenario")?;
                if !names.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown scenario `{name}`; the scenarios are: {}",
                        names.join(", ")
                    ));
                }
                options.scenarios.push(name);
            }
            "--seed" => {
                let seed = value("--seed")?;
                options.seed = seed
                    .parse()
                    .map_err(|_| format!("--seed takes a whole number, not `{seed}`"))?;
            }
            "--out" => options.out = PathBuf::from(value("--out")?),
            "--postgres" => options.postgres = Some(value("--postgres")?),
            "--redis" => options.redis = Some(value("--redis")?),
            "--format" => {
                options.format = match value("--format")?.as_str() {
                    "table" => Format::Table,
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    other => {
                        return Err(format!(
                            "unknown format `{other}`; the formats are: table, json, csv"
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "unknown option `{other}`; the options are: --scenario NAME, --list, --seed N, --out DIR, --format table|json|csv, --postgres URL, --redis URL, --help"
                ));
            }
        }
    }
    if options.postgres.is_some() != options.redis.is_some() {
        return Err("real mode needs both --postgres URL and --redis URL".to_owned());
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!("try `seawall-eval --help`");
            return ExitCode::from(2);
        }
    };
    let all = scenario::all(options.seed);
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
    let progress = std::io::stderr().is_terminal();
    let total = chosen.len();
    let mut results = Vec::new();
    for (i, scenario) in chosen.into_iter().enumerate() {
        if progress {
            eprint!("\r[{}/{total}] {:<24}", i + 1, scenario.name);
        }
        let (result, runs) = match &targets {
            None => evaluate(scenario, options.seed),
            Some(targets) => {
                match seawall_eval::evaluate_real(
                    seawall_eval::real::shortened(&scenario),
                    options.seed,
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
    let mut report = format!(
        "# Seawall evaluation (seed {})\n\n{table}\n## Verdicts\n\n{verdicts}\n## Timelines\n\n",
        options.seed
    );
    for result in &results {
        report.push_str(&format!(
            "### {}\n\n{}.\n\n![{0}]({0}.svg)\n\n",
            result.scenario.name, result.scenario.reproduces
        ));
    }
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
