#!/usr/bin/env bash
# A longer fuzz pass over the parsers' property tests (records reader, FER2013 CSV, manifest,
# FER+ votes, CK+ unit table, model metadata, and the CLI's window, part and shard values):
# CASES inputs per property (default 20000; the normal test run tries 256). Prints the inputs
# tried and the time taken; any panic, unbounded report or insane value fails it.
#   [CASES=20000] scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cases=${CASES:-20000}
cargo test --release --lib --no-run >/dev/null 2>&1
start=$(date +%s.%N)
log=$(PROPTEST_CASES=$cases cargo test --release --lib fuzz:: 2>&1) || { echo "$log"; exit 1; }
end=$(date +%s.%N)
properties=$(echo "$log" | grep -c "^test .*fuzz::.* ok$")
manifest=$(echo "$log" | grep -c "^test .*manifest.*fuzz::.* ok$")
tried=$(( (properties - manifest) * cases + manifest * cases / 4 ))
printf 'fuzz: %d properties, %d inputs tried in %.0f s, no failure\n' "$properties" "$tried" "$(echo "$end - $start" | bc -l)"
