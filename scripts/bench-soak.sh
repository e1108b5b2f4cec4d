#!/usr/bin/env bash
# Memory over a long run: loops a real clip (default the Pexels clip) into a video of MINUTES
# minutes (default 60, stream copy, no re-encoding), annotates it with records, samples the
# process's resident memory every INTERVAL seconds (default 2) and prints it at 10 %, 50 % and
# the end of the run, and its maximum. Flat memory: the end within 5 MiB of the 10 % mark.
#   [INTERVAL=2] scripts/bench-soak.sh [MINUTES] [VIDEO] [annotate flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
video=${2:-../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4}
shift $(($# < 2 ? $# : 2))
interval=${INTERVAL:-2}
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
length=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$video")
loops=$(echo "($minutes * 60 / $length + 0.999) / 1" | bc)
ffmpeg -v error -y -stream_loop "$((loops - 1))" -i "$video" -c copy -t "$((minutes * 60))" "$work/long.mp4"
frames=$(ffprobe -v error -select_streams v -show_entries stream=nb_frames -of csv=p=0 "$work/long.mp4")
echo "soak: $video looped $loops times: $minutes min, $frames frames"

"$bin" annotate --quiet "$work/long.mp4" -o "$work/out.mp4" --json "$work/faces.jsonl" "$@" > "$work/log" 2>&1 &
pid=$!
start=$(date +%s.%N)
: > "$work/rss"
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && echo "$(echo "$(date +%s.%N) - $start" | bc -l) $rss" >> "$work/rss"
  sleep "$interval"
done
wait "$pid" || { cat "$work/log"; echo "annotate failed" >&2; exit 1; }
grep -- " -> " "$work/log" || true
awk '
  { t[NR] = $1; r[NR] = $2; if ($2 > max) max = $2 }
  END {
    n = NR; total = t[n];
    for (i = 1; i <= n; i++) { if (!a && t[i] >= 0.1 * total) a = i; if (!b && t[i] >= 0.5 * total) b = i }
    printf "RSS (MiB): at 10 %% %.1f, at 50 %% %.1f, at the end %.1f, max %.1f; end - 10 %%: %+.1f MiB over %.0f s (%d samples)\n",
      r[a] / 1024, r[b] / 1024, r[n] / 1024, max / 1024, (r[n] - r[a]) / 1024, total, n
  }' "$work/rss"
