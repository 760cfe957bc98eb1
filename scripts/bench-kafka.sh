#!/usr/bin/env bash
# The Kafka -> chain -> Elasticsearch benchmark: starts Tansu and noida-db on free ports
# (installed by setup-test-services.sh when absent), then `weir bench --suite kafka`.
# Extra arguments go to `weir bench` (e.g. --events 200000 --rounds 3 --workers 2;
# a later --es-url null replaces noida-db with an endpoint that accepts everything).
# Against real services instead: ./target/release/weir bench --suite kafka --brokers H:P --es-url URL
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup-test-services.sh
# cargo-installed tansu; pip's script dirs (a pyenv shim may not exist until a rehash).
export PATH="$HOME/.cargo/bin:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
./scripts/build-plugins.sh
cargo build --release -p weir
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kafka_port=$(free_port); es_port=$(free_port)
setsid tansu broker --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
tansu_pid=$!
setsid noida-db start --only elasticsearch --elasticsearch-port "$es_port" --data-dir "$work/es" >"$work/noida.log" 2>&1 &
noida_pid=$!
# Whole process groups: the noida-db on PATH may be a shim that runs the server as a child.
trap 'kill -- -$tansu_pid -$noida_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    if curl -fs "http://127.0.0.1:$es_port/" >/dev/null 2>&1 && (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null; then break; fi
    sleep 0.2
done
./target/release/weir bench --suite kafka --brokers "127.0.0.1:$kafka_port" --es-url "http://127.0.0.1:$es_port" "$@"
# The broker's own CPU over the whole run (setup and every round), for comparison.
echo "broker (tansu) CPU s, whole run: $(ps -o times= -p "$tansu_pid" | tr -d ' ')"
