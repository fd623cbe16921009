//! The command line: generated help, and a mistake answered with exit code 2 and a message
//! naming the flag and what it accepts.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_seawall-eval"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn help_lists_every_option() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for flag in [
        "--scenario",
        "--list",
        "--seed",
        "--out",
        "--format",
        "--stack",
        "--postgres",
        "--redis",
        "--queue",
    ] {
        assert!(out.contains(flag), "{flag} missing from:\n{out}");
    }
}

#[test]
fn a_queue_discipline_the_limit_would_refuse_is_named_at_once() {
    let (code, _, err) = run(&["--queue", "codel:10:20"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("discipline.target"), "{err}");
    let (code, _, err) = run(&["--queue", "lifo"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("codel:INTERVAL_MS:TARGET_MS"), "{err}");
}

#[test]
fn mistakes_are_named_with_what_is_accepted() {
    let (code, _, err) = run(&["--scenario", "pool-exhaustoin"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("invalid value 'pool-exhaustoin' for '--scenario <NAME>'"),
        "{err}"
    );
    assert!(err.contains("pool-exhaustion"), "{err}");

    let (code, _, err) = run(&["--seed", "many"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("'--seed <N>'"), "{err}");

    let (code, _, err) = run(&["--postgres", "postgres://127.0.0.1/postgres"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--redis <URL>"), "{err}");

    let (code, _, err) = run(&["--stack", "resilience4j"]);
    assert_eq!(code, Some(2));
    for stack in ["naive", "tower", "tower-resilience", "seawall"] {
        assert!(err.contains(stack), "{stack} missing from:\n{err}");
    }

    let (code, _, err) = run(&["--format", "xml"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("table") && err.contains("json") && err.contains("csv"),
        "{err}"
    );
}

#[test]
fn list_names_every_scenario() {
    let (code, out, _) = run(&["--list"]);
    assert_eq!(code, Some(0));
    for name in seawall_eval::scenario::names() {
        assert!(
            out.lines().any(|line| line.starts_with(name)),
            "{name} missing"
        );
    }
}

#[test]
fn chosen_stacks_alone_are_run() {
    let out_dir = std::env::temp_dir().join(format!("seawall-eval-cli-{}", std::process::id()));
    let (code, out, err) = run(&[
        "--scenario",
        "retry-storm",
        "--stack",
        "seawall",
        "--stack",
        "tower",
        "--format",
        "csv",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let stacks: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(stacks, ["tower", "seawall"], "{out}");
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("## Stacks"), "{report}");
    assert!(!report.contains("**naive**"), "{report}");
    std::fs::remove_dir_all(out_dir).unwrap();
}
