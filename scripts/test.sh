#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: unit tests and the CLI tests on the real data in
# ../shared/data, the vendored burn-flex's own tests (with emolens's convolution, pooling and
# batch-norm changes, built with the features emolens builds it with), then the Slurm job-array
# test on a throw-away local Slurm cluster. Tests that need that data fail, loudly, when it is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo test --release
cargo test --release -p burn-flex --lib --features x86-v4
scripts/slurm/test-annotate-array.sh
