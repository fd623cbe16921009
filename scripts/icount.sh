#!/usr/bin/env bash
# Instructions per request through each stack, counted by valgrind (deterministic, unlike
# wall-clock benches on a shared machine): callgrind's total for N requests minus its total
# for none, divided by N. Not part of scripts/test.sh.
#
#   scripts/icount.sh [N] [STACK...]     (stacks: bare tower_trio seawall_standard breaker breaker_window
#                                          recloser failsafe tower_resilience limit tower_concurrency_limit
#                                          retry tower_retry deadline attempt_timeout tower_timeout
#                                          fallback hedge hedge_learnt tower_hedge bare_classified
#                                          old_request_span client_span)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
shift || true
stacks=("$@")
[ ${#stacks[@]} -gt 0 ] || stacks=(bare tower_trio seawall_standard breaker breaker_window recloser failsafe tower_resilience limit tower_concurrency_limit retry tower_retry deadline attempt_timeout tower_timeout fallback hedge hedge_learnt tower_hedge bare_classified old_request_span client_span)
command -v valgrind >/dev/null || { echo "icount: valgrind is not installed" >&2; exit 1; }
cargo build --quiet --release -p seawall-benches --example icount
bin=target/release/examples/icount
total() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 | awk '/Collected/ {print $NF}'; }
printf '| stack | instructions per request |\n|---|---:|\n'
for stack in "${stacks[@]}"; do
    none=$(total "$stack" 0)
    some=$(total "$stack" "$n")
    printf '| %s | %s |\n' "$stack" "$(( (some - none) / n ))"
done
