#!/usr/bin/env bash
# Sets up everything emolens needs on Debian 12, then builds the release binary.
# Idempotent: steps that are already done are skipped, so it is safe to run before every command.
#   1. Debian packages: OpenCV, FFmpeg, clang (for the bindings), Python's pip (for step 3),
#      and for the tests Xvfb (the live window), Chromium (the report page) and Slurm with munge
#      (a throw-away local cluster, see scripts/slurm/local-cluster.sh).
#   2. A Rust toolchain (rustup) when cargo is missing or too old for the burn crates.
#   3. ONNX Runtime 1.31.1: the shared library from the PyPI onnxruntime wheel, into
#      ${XDG_DATA_HOME:-~/.local/share}/emolens/onnxruntime, where the binary looks for it.
#   4. cargo build --release.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
MIN_RUST=1.85
PACKAGES=(pkg-config clang libclang-dev libopencv-dev opencv-data libavcodec-dev libavformat-dev
  libavutil-dev libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev ffmpeg
  python3 python3-pip ca-certificates curl bc xvfb chromium fonts-dejavu-core slurm-wlm munge)

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
rust_ok() {
  command -v cargo >/dev/null &&
    [ "$(printf '%s\n%s\n' "$MIN_RUST" "$(rustc --version | cut -d' ' -f2)" | sort -V | head -1)" = "$MIN_RUST" ]
}
if ! rust_ok; then
  say "installing Rust (rustup, stable): cargo >= $MIN_RUST is needed"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal ||
    { say "could not install Rust; install it from https://rustup.rs and run this again"; exit 1; }
  . "$HOME/.cargo/env"
fi

ort_dir="${XDG_DATA_HOME:-$HOME/.local/share}/emolens/onnxruntime"
ort_lib="$ort_dir/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$ort_lib" ]; then
  say "fetching ONNX Runtime $ORT_VERSION (PyPI wheel onnxruntime==$ORT_VERSION)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --dest "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p "$ort_dir"
  python3 - "$tmp" "$ort_dir" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("onnxruntime/capi/libonnxruntime"):
            target = os.path.join(sys.argv[2], os.path.basename(name))
            with z.open(name) as src, open(target + ".partial", "wb") as dst:
                dst.write(src.read())
            os.replace(target + ".partial", target)
PY
  [ -f "$ort_lib" ] || { say "the wheel did not contain libonnxruntime.so.$ORT_VERSION"; exit 1; }
fi

say "building the release binary (first build: about 8 minutes on 2 cores)"
cargo build --release --quiet
say "ready: ./target/release/emolens (ONNX Runtime: $ort_lib)"
