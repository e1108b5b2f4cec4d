#!/usr/bin/env bash
# Live-mode speed and latency: plays a clip as a stand-in camera at its native rate, headless
#   emolens live --source VIDEO --realtime --no-window --stats-json STATS
# and prints the frames captured, processed and dropped, the processed share, the frame rate and
# the capture-to-output latency percentiles. Target on the project's 2-core machine: at least
# 95 % of the frames processed, p99 latency under 100 ms.
#   scripts/bench-live.sh [VIDEO...]
# Default: ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4 (640x360, 24 fps, 19.7 s) and
# the same clip scaled to 1280x720 at 30 fps (made here with ffmpeg), a webcam-sized source.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ $# -eq 0 ]; then
  pexels=../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4
  [ -f "$pexels" ] || { echo "$pexels: not found" >&2; exit 1; }
  ffmpeg -v error -y -i "$pexels" -vf "scale=1280:720,fps=30" -c:v libx264 -preset veryfast -crf 18 \
    -c:a copy "$out/pexels-720p30.mp4"
  set -- "$pexels" "$out/pexels-720p30.mp4"
fi

for video in "$@"; do
[ -f "$video" ] || { echo "$video: not found" >&2; exit 1; }
"$bin" live --source "$video" --realtime --no-window --stats-json "$out/stats.json" >/dev/null 2>"$out/stderr" || {
  cat "$out/stderr" >&2
  exit 1
}
python3 - "$out/stats.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
l = s["latency_ms"] or {}
print(f"clip: {s['source']} (--realtime --no-window)")
print(f"frames: captured {s['captured']}, processed {s['processed']}, dropped {s['dropped']}")
print(f"processed share: {100 * s['processed_share']:.1f} %")
print(f"fps: {s['fps']:.1f}")
print(f"latency ms: p50 {l.get('p50', 0):.1f}, p95 {l.get('p95', 0):.1f}, p99 {l.get('p99', 0):.1f} (max {l.get('max', 0):.1f})")
EOF
done
