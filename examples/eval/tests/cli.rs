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
        "--postgres",
        "--redis",
    ] {
        assert!(out.contains(flag), "{flag} missing from:\n{out}");
    }
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
