#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time (issue #13). Not part of CI: too slow.
#
#   ./scripts/fuzz.sh                    # every target, 60 s each
#   ./scripts/fuzz.sh --seconds 300 doc_parse reply_apply
#   ./scripts/fuzz.sh --no-host          # skip config_load, which builds all of `weir`
#
# Needs a nightly toolchain; installs cargo-fuzz when absent. Targets are built optimised
# with debug assertions and overflow checks and no sanitizer (`-s none`): Weir is safe
# Rust, and libFuzzer still catches panics, aborts, stack overflows, leaks past
# -rss_limit_mb and hangs past -timeout. New inputs go to fuzz/target/corpus/<target>
# (not committed); the seeds in fuzz/corpus/<target> are only read. A crashing input is
# written to fuzz/artifacts/<target>/ and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
host=1
targets=()
while (($#)); do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --no-host) host=0; shift ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

features=()
if ((host == 0)); then
    features=(--no-default-features)
fi
if ((${#targets[@]} == 0)); then
    targets=(doc_parse batch_decode reply_apply reply_build)
    if ((host)); then
        targets+=(config_load)
    fi
fi

fuzz=(cargo +nightly fuzz)
build_flags=(-s none "${features[@]}")
echo "building ${targets[*]}"
for target in "${targets[@]}"; do
    "${fuzz[@]}" build "${build_flags[@]}" "$target"
done

mkdir -p fuzz/target/logs
failed=()
printf '\n%-14s %8s %14s %10s %s\n' target seconds executions exec/s result
for target in "${targets[@]}"; do
    scratch="fuzz/target/corpus/$target"
    mkdir -p "$scratch"
    corpora=("$scratch")
    if [[ -d "fuzz/corpus/$target" ]]; then
        corpora+=("fuzz/corpus/$target")
    fi
    log="fuzz/target/logs/$target.log"
    start=$(date +%s)
    result=ok
    if ! "${fuzz[@]}" run "${build_flags[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1; then
        result="CRASH (see $log)"
        failed+=("$target")
    fi
    elapsed=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf '%-14s %8s %14s %10s %s\n' "$target" "$elapsed" "${runs:-?}" "${rate:-?}" "$result"
done

if ((${#failed[@]})); then
    echo
    for target in "${failed[@]}"; do
        echo "== $target"
        grep -E -m1 -A4 "panicked at|ERROR: libFuzzer|deadly signal|SUMMARY" \
            "fuzz/target/logs/$target.log" || true
        grep -E "^artifact_prefix|Test unit written to" "fuzz/target/logs/$target.log" || true
    done
    exit 1
fi
