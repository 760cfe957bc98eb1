#!/usr/bin/env bash
# Builds every plugin in the workspace for wasm32-wasip2 into target/wasm (a target dir of
# its own, so wasm builds never invalidate the host's).
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(drop-healthz weir-normalize weir-geoip weir-redact weir-route)
args=()
for p in "${packages[@]}"; do args+=(-p "$p"); done
cargo build --release --target wasm32-wasip2 --target-dir target/wasm "${args[@]}" "$@"
