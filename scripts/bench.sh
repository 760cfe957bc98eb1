#!/usr/bin/env bash
# The chain benchmark: four ops as WASM plugins against the same ops native, one thread.
# Extra arguments go to `weir bench` (e.g. --events 200000 --rounds 7).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --target wasm32-wasip2 --target-dir target/wasm -p weir-bench-ops
cargo build --release -p weir
./target/release/weir bench "$@"
