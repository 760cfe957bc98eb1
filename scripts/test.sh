#!/usr/bin/env bash
# Runs every test: unit tests, the plugins' native tests, and the integration tests
# (which build their wasm fixtures themselves). Release mode: wasmtime compiles plugins
# far faster optimised, and the quickstart and benches share the same build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all --check
cargo test --release --workspace "$@"
