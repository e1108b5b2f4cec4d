#!/usr/bin/env bash
# Recipe ablations for the emotion model, measured on FER2013 PublicTest (never PrivateTest):
# the same FER+ training (votes as soft targets, seed 1) as is, with random erasing, with mixup,
# with both, and 1.5x as wide (--width 48, about half the images/s). Each variant trains in OUT/NAME/ with checkpoints every epoch and is resumed
# where it stopped, so the script can be run again in a later session to go on. At the end it
# prints each variant's best PublicTest accuracy (FER+ majority labels), its epoch and its
# images/s.
#   [EPOCHS=10] [MAX_STEPS=N] scripts/ablate-recipe.sh OUT
# MAX_STEPS shortens every epoch (a quick check of the script itself).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: scripts/ablate-recipe.sh OUT" >&2; exit 2; }
out=$1
epochs=${EPOCHS:-10}
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
data=../shared/data/fer2013
variants=("baseline:" "erase:--erase 0.25" "mixup:--mixup 0.2" "erase-mixup:--erase 0.25 --mixup 0.2"
  "width48:--width 48")

for variant in "${variants[@]}"; do
  name=${variant%%:*}
  flags=${variant#*:}
  dir="$out/$name"
  mkdir -p "$dir"
  resume=()
  [ -f "$dir/ckpt/state.json" ] && resume=(--resume)
  [ -f "$dir/model.onnx" ] && { echo "$name: done"; continue; }
  echo "$name: training ($epochs epochs${flags:+, $flags})"
  # shellcheck disable=SC2086  # the flags are words
  "$bin" train --data "$data/Training" --val "$data/PublicTest" \
    --ferplus "$data/ferplus/fer2013new.csv" --labels soft --seed 1 --epochs "$epochs" \
    ${MAX_STEPS:+--max-steps "$MAX_STEPS"} $flags "${resume[@]}" \
    -o "$dir/model.onnx" --checkpoint-dir "$dir/ckpt" >>"$dir/train.log" 2>&1
done

printf '%-12s %10s %6s %8s\n' variant "PublicTest" epoch "img/s"
for variant in "${variants[@]}"; do
  name=${variant%%:*}
  python3 - "$out/$name/ckpt/state.json" "$name" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
best = max(state["history"], key=lambda e: e["val_accuracy"])
speed = sum(e["images_per_second"] for e in state["history"]) / len(state["history"])
print(f'{sys.argv[2]:<12} {best["val_accuracy"]:10.4f} {best["epoch"]:6d} {speed:8.1f}')
PY
done
