#!/usr/bin/env bash
# Sets up, builds the plugins and the host, and runs the quickstart pipeline over the
# sample logs: output in target/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build-plugins.sh
cargo build --release -p weir
./target/release/weir check --config examples/quickstart.toml
./target/release/weir run --config examples/quickstart.toml
echo
echo "first events written (target/quickstart/events.ndjson):"
head -n 3 target/quickstart/events.ndjson
echo "dead letters (target/quickstart/dead-letter.ndjson): $(wc -l < target/quickstart/dead-letter.ndjson)"
echo "try: ./target/release/weir test --config examples/quickstart.toml --input examples/logs/sample.ndjson | less"
