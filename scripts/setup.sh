#!/usr/bin/env bash
# Installs what building Weir needs beyond a Rust toolchain: the wasm32-wasip2 target.
set -euo pipefail
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
