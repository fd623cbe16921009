//! The example runs against the real Redis and prints what it read.

#[test]
fn sets_and_gets_through_the_pipeline() {
    let url = seawall_tests::redis_url();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_seawall-example-minimal"))
        .env("REDIS_URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        "seawall:minimal = Some(\"hello\")\nbreaker: Closed\n"
    );
}
