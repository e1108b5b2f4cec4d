#!/usr/bin/env bash
# Training speed of `emolens` builds, measured in one run: each binary trains the same 60 steps
# (FER2013 Training with FER+ soft labels, batch 64, seed 1) RUNS times, the binaries taking
# turns, and the best images/s of each is printed, with its ratio to the first binary's.
#   [RUNS=3] [STEPS=60] scripts/bench-train.sh REFERENCE_BINARY [BINARY...]
# BINARY defaults to target/release/emolens. A reference from an older commit:
#   git worktree add ../emolens-ref <commit> && (cd ../emolens-ref && cargo build --release)
#   scripts/bench-train.sh ../emolens-ref/target/release/emolens
# Nothing else should run meanwhile (no training, build or test): the machine's two cores are
# what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/bench-train.sh REFERENCE_BINARY [BINARY...]" >&2; exit 2; }
[ $# -ge 2 ] || set -- "$1" target/release/emolens
runs=${RUNS:-3}
steps=${STEPS:-60}
data=../shared/data/fer2013
for bin in "$@"; do
  [ -x "$bin" ] || { echo "$bin: not an executable; build it first" >&2; exit 1; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

declare -A best
for run in $(seq "$runs"); do
  for bin in "$@"; do
    "$bin" train --data "$data/Training" --val "$data/PublicTest" \
      --ferplus "$data/ferplus/fer2013new.csv" --labels soft --seed 1 --epochs 1 \
      --max-steps "$steps" -o "$out/model.onnx" --checkpoint-dir "$out/ckpt" \
      >"$out/log" 2>&1 || { cat "$out/log" >&2; exit 1; }
    rate=$(sed -n 's/^epoch 1\/1: .*, \([0-9.]*\) img\/s$/\1/p' "$out/log")
    [ -n "$rate" ] || { echo "$bin: no images/s in its log" >&2; cat "$out/log" >&2; exit 1; }
    echo "run $run: $bin: $rate img/s" >&2
    if [ -z "${best[$bin]:-}" ] || [ "$(echo "$rate > ${best[$bin]}" | bc)" = 1 ]; then
      best[$bin]=$rate
    fi
    rm -rf "$out/ckpt" "$out/model.onnx"
  done
done

printf '%s training steps of batch 64, best of %s runs\n' "$steps" "$runs"
for bin in "$@"; do
  printf '%-60s %6s img/s  %5.2fx\n' "$bin" "${best[$bin]}" "$(echo "${best[$bin]} / ${best[$1]}" | bc -l)"
done
