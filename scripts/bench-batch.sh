#!/usr/bin/env bash
# Throughput of batch runs on this machine: the real clips of ../shared/data/videos (COPIES times
# each, default 2) annotated by one worker, then by WORKERS workers at once (default 2, each
# `--shard K/WORKERS`), in one run. Prints wall times and hours of video annotated per hour.
#   [COPIES=2] [WORKERS=2] scripts/bench-batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${COPIES:-2}
workers=${WORKERS:-2}
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/videos"
seconds=0
while IFS= read -r clip; do
  length=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$clip")
  for copy in $(seq "$copies"); do
    name=$(basename "${clip%.*}")-$copy.${clip##*.}
    cp "$clip" "$work/videos/$name"
    echo "videos/$name" >> "$work/videos.txt"
    seconds=$(echo "$seconds + $length" | bc -l)
  done
done < <(find ../shared/data/videos -type f \( -name '*.mp4' -o -name '*.mov' \) | sort)
count=$(wc -l < "$work/videos.txt")

run() { # run WORKERS OUT: WORKERS workers over the list; prints wall seconds
  local n=$1 out=$2 start end
  start=$(date +%s.%N)
  for k in $(seq 0 $((n - 1))); do
    "$bin" annotate --quiet --list "$work/videos.txt" -o "$out" --shard "$k/$n" >/dev/null 2>&1 &
  done
  wait
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

printf 'batch: %s videos, %.1f s of video (%s copies of each real clip)\n' "$count" "$seconds" "$copies"
for n in 1 "$workers"; do
  wall=$(run "$n" "$work/out$n")
  printf '%s worker(s): %6.1f s wall, %5.1f hours of video per hour\n' "$n" "$wall" \
    "$(echo "$seconds / $wall" | bc -l)"
done
