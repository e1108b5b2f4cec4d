#!/usr/bin/env bash
# Live-mode speed and latency: plays a clip as a stand-in camera at its native rate, headless
#   emolens live --source VIDEO --realtime --no-window --stats-json STATS
# and prints the frames captured, processed and dropped, the processed share, the frame rate and
# the capture-to-output latency percentiles. Target on the project's 2-core machine: at least
# 95 % of the frames processed, p99 latency under 100 ms.
#   scripts/bench-live.sh [VIDEO]
# Default VIDEO: ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4 (640x360, 24 fps, 19.7 s).
set -euo pipefail
cd "$(dirname "$0")/.."
video=${1:-../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4}
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
[ -f "$video" ] || { echo "$video: not found" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

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
