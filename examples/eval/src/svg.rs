//! Timeline pictures: per second, the outcomes of the requests sent, their p99 latency, the
//! calls inside the dependency, and the breaker's state; one panel per stack, in report order.

use std::fmt::Write as _;

use seawall::breaker::State;

use crate::report::{outcomes_by_second, p99_by_second};
use crate::scenario::{Run, Scenario};

const WIDTH: f64 = 960.0;
const PANEL: f64 = 170.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 120.0;
const TOP: f64 = 72.0;
const GAP: f64 = 52.0;

/// The timeline of `scenario`'s runs, one panel per stack, as an SVG document.
pub fn timeline(scenario: &Scenario, runs: &[&Run]) -> String {
    let seconds = scenario.duration.as_secs() as usize;
    let height = TOP + runs.len() as f64 * (PANEL + GAP) + 20.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="16" font-weight="bold">{name}</text>
<text x="{LEFT}" y="40" fill="#555">{reproduces}; the fault is on over the thin red line.</text>
<text x="{LEFT}" y="56" fill="#555">Bars: requests per second (green in time, red failed or late, grey refused at once). Orange: p99 latency. Blue: calls at the dependency.</text>
"##,
        name = scenario.name,
        reproduces = scenario.reproduces,
    );
    let plot_width = WIDTH - LEFT - RIGHT;
    let step = plot_width / seconds as f64;
    let outcome_max = runs
        .iter()
        .flat_map(|run| outcomes_by_second(run, seconds))
        .map(|(a, b, c)| a + b + c)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let latency_max = runs
        .iter()
        .flat_map(|run| p99_by_second(run, seconds))
        .map(|d| d.as_secs_f64())
        .fold(0.001, f64::max);
    let in_flight_max = runs
        .iter()
        .flat_map(|run| run.peak_by_second.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;

    for (panel, run) in runs.iter().enumerate() {
        let top = TOP + panel as f64 * (PANEL + GAP) + 20.0;
        let bottom = top + PANEL;
        let _ = writeln!(
            svg,
            r##"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"##,
            top - 6.0,
            run.stack.name()
        );
        // The fault window.
        let (from, to) = (
            scenario.fault.0.as_secs_f64(),
            scenario.fault.1.as_secs_f64(),
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{PANEL}" fill="#fbe9e7"/>"##,
            LEFT + from * step,
            (to - from) * step
        );
        // Outcome bars.
        for (second, (ok, failed, rejected)) in
            outcomes_by_second(run, seconds).into_iter().enumerate()
        {
            let x = LEFT + second as f64 * step + 1.0;
            let mut y = bottom;
            for (count, color) in [(ok, "#43a047"), (failed, "#e53935"), (rejected, "#9e9e9e")] {
                let h = count as f64 / outcome_max * PANEL;
                if h > 0.0 {
                    y -= h;
                    let _ = writeln!(
                        svg,
                        r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{color}" fill-opacity="0.55"/>"##,
                        (step - 2.0).max(1.0)
                    );
                }
            }
        }
        // p99 latency and dependency in-flight.
        let line = |values: Vec<f64>, max: f64| {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    format!(
                        "{:.1},{:.1}",
                        LEFT + (i as f64 + 0.5) * step,
                        bottom - v / max * PANEL
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let p99: Vec<f64> = p99_by_second(run, seconds)
            .iter()
            .map(|d| d.as_secs_f64())
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#fb8c00" stroke-width="2"/>"##,
            line(p99, latency_max)
        );
        let in_flight: Vec<f64> = (0..seconds)
            .map(|s| run.peak_by_second.get(s).copied().unwrap_or(0) as f64)
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#1e88e5" stroke-width="1.5"/>"##,
            line(in_flight, in_flight_max)
        );
        // The breaker's state as a band under the panel.
        for (second, state) in run.breaker_by_second.iter().take(seconds).enumerate() {
            let Some(state) = state else { continue };
            let color = match state {
                State::Closed => "#a5d6a7",
                State::Open | State::ForcedOpen => "#ef9a9a",
                State::HalfOpen => "#ffcc80",
                State::Disabled => "#e0e0e0",
            };
            let _ = writeln!(
                svg,
                r##"<rect x="{:.1}" y="{:.1}" width="{step:.1}" height="8" fill="{color}"/>"##,
                LEFT + second as f64 * step,
                bottom + 4.0
            );
        }
        // Axes and labels.
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#333"/>
<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>
<text x="{:.1}" y="{:.1}" text-anchor="end">{outcome_max:.0} req/s</text>
<text x="{:.1}" y="{:.1}">{:.0} ms p99</text>
<text x="{:.1}" y="{:.1}" fill="#1e88e5">{in_flight_max:.0} in flight</text>
<text x="{LEFT}" y="{:.1}" fill="#555">0 s</text>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{seconds} s{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            top + 10.0,
            WIDTH - RIGHT + 4.0,
            top + 10.0,
            latency_max * 1_000.0,
            WIDTH - RIGHT + 4.0,
            top + 26.0,
            bottom + 32.0,
            WIDTH - RIGHT,
            bottom + 32.0,
            if run.breaker_by_second.iter().any(Option::is_some) {
                "   (band: breaker closed / open / half-open)"
            } else {
                ""
            }
        );
    }
    svg.push_str("</svg>\n");
    svg
}
