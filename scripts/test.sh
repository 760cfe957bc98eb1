#!/usr/bin/env bash
# Runs every test: unit tests, the plugins' native tests, and the integration tests
# (which build their wasm fixtures themselves, and start Tansu and noida-db per test:
# installed here when absent). Release mode: wasmtime compiles plugins
# far faster optimised, and the quickstart and benches share the same build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup-test-services.sh
# cargo-installed tansu; pip's script dirs (a pyenv shim may not exist until a rehash).
export PATH="$HOME/.cargo/bin:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
cargo fmt --all --check
cargo test --release --workspace "$@"
