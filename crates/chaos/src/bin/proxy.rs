//! `seawall-chaos-proxy`: a fault proxy for manual experiments.
//!
//! ```text
//! seawall-chaos-proxy LISTEN UPSTREAM
//! ```
//!
//! Then type commands on standard input, one per line: `pass`, `latency MS [JITTER_MS]`,
//! `blackhole`, `refuse`, `bandwidth BYTES_PER_SEC`, `cut BYTES`, `reset`, `down`, `up`,
//! `stats`, `quit`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use seawall_chaos::proxy::{Delay, Mode, Proxy};
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str =
    "usage: seawall-chaos-proxy LISTEN_ADDR UPSTREAM_ADDR (e.g. 127.0.0.1:15432 127.0.0.1:5432)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (Ok(listen), Ok(upstream)) = (listen.parse::<SocketAddr>(), upstream.parse::<SocketAddr>())
    else {
        eprintln!("error: both addresses must be IP:PORT\n{USAGE}");
        return ExitCode::from(2);
    };
    let proxy = match Proxy::start_on(listen, upstream).await {
        Ok(proxy) => proxy,
        Err(error) => {
            eprintln!("error: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "forwarding {} -> {upstream}; type `help` for commands",
        proxy.addr()
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        match words.as_slice() {
            ["pass"] => proxy.set_mode(Mode::Pass),
            ["latency", ..] if number(1).is_some() => {
                let delay = Delay {
                    fixed: Duration::from_millis(number(1).unwrap_or(0)),
                    jitter: Duration::from_millis(number(2).unwrap_or(0)),
                };
                proxy.set_mode(Mode::Latency {
                    up: delay,
                    down: delay,
                });
            }
            ["blackhole"] => proxy.set_mode(Mode::Blackhole),
            ["refuse"] => proxy.set_mode(Mode::Refuse),
            ["bandwidth", _] if number(1).is_some() => {
                proxy.set_mode(Mode::Bandwidth(number(1).unwrap_or(0)));
            }
            ["cut", _] if number(1).is_some() => {
                proxy.set_mode(Mode::CutAfter(number(1).unwrap_or(0)))
            }
            ["reset"] => proxy.reset(),
            ["down"] => proxy.down(),
            ["up"] => proxy.up(),
            ["stats"] => println!("{:?}", proxy.stats()),
            ["quit"] | ["exit"] => break,
            [] => continue,
            _ => {
                println!(
                    "commands: pass | latency MS [JITTER_MS] | blackhole | refuse | bandwidth BYTES_PER_SEC | cut BYTES | reset | down | up | stats | quit"
                );
                continue;
            }
        }
        println!("mode: {:?}", proxy.mode());
    }
    proxy.shutdown().await;
    ExitCode::SUCCESS
}
