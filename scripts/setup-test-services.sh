#!/usr/bin/env bash
# Installs the real services the integration tests start themselves, when absent:
#   - Tansu, an Apache-Kafka-compatible broker, with in-memory storage (crates.io; the
#     first install compiles for ~15 minutes, later runs skip it);
#   - noida-db 0.2.0, an Elasticsearch API emulator (PyPI).
# Set WEIR_TEST_KAFKA / WEIR_TEST_ES_URL to run the same tests against real clusters.
set -euo pipefail
# cargo-installed tansu; pip's script dirs (a pyenv shim may not exist until a rehash).
export PATH="$HOME/.cargo/bin:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
if ! command -v tansu >/dev/null 2>&1; then
    echo "installing tansu (Kafka-compatible test broker; takes a while the first time)..."
    cargo install tansu --version 0.6.0 --locked --features dynostore
fi
noida_version=$(python3 -m pip show noida-db 2>/dev/null | sed -n 's/^Version: //p' || true)
if ! command -v noida-db >/dev/null 2>&1 || [ "$noida_version" != "0.2.0" ]; then
    echo "installing noida-db 0.2.0 (Elasticsearch emulator)..."
    python3 -m pip install --quiet "noida-db==0.2.0"
fi
