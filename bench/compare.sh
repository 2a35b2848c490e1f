#!/usr/bin/env bash
# Run the Switchboard benchmark (bench/rust, crate switchboard-bench) and the Python
# reference (bench/python/workload.py on livekit-agents 1.8.9), section by section and
# interleaved, then merge both into target/bench/compare.json and print one table.
#
#   bench/compare.sh               # full run, both sides
#   bench/compare.sh --quick       # fewer samples and session counts, a fast check
#   bench/compare.sh --rust-only   # our side only (no venv, no Python)
#   bench/compare.sh --sections latency,memory
#
# See bench/README.md for the figures and the JSON contract.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/bench"
RESULTS="$OUT/results"
VENV="$OUT/venv"
REQ="$ROOT/bench/python/requirements.txt"
WORKLOAD="$ROOT/bench/python/workload.py"
MERGE="$ROOT/bench/python/merge.py"

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --rust-only        skip the Python side entirely
  --python-only      skip the Rust side
  --quick            fewer samples / session counts (a fast check, not for reporting)
  --sections LIST    comma list of latency,session,memory,throughput,cold (default: all)
Environment overrides (comma lists / numbers):
  BENCH_SAMPLES, BENCH_MIN_TURNS, BENCH_COLD_RUNS, BENCH_THROUGHPUT_SESSIONS,
  BENCH_RUST_MEMORY_SESSIONS, BENCH_PY_MEMORY_SESSIONS
EOF
}

RUST=1
PYTHON=1
QUICK=0
SECTIONS="latency,session,memory,throughput,cold"
while [ $# -gt 0 ]; do
    case "$1" in
        --rust-only) PYTHON=0 ;;
        --python-only) RUST=0 ;;
        --quick) QUICK=1 ;;
        --sections) shift; SECTIONS="${1:?--sections needs a list}" ;;
        --sections=*) SECTIONS="${1#--sections=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    SAMPLES=${BENCH_SAMPLES:-100}
    MIN_TURNS=${BENCH_MIN_TURNS:-500}
    COLD_RUNS=${BENCH_COLD_RUNS:-3}
    TP_SESSIONS=${BENCH_THROUGHPUT_SESSIONS:-1,10,100}
    RUST_MEM_SESSIONS=${BENCH_RUST_MEMORY_SESSIONS:-1,10,100}
    PY_MEM_SESSIONS=${BENCH_PY_MEMORY_SESSIONS:-1,10,100}
else
    SAMPLES=${BENCH_SAMPLES:-500}
    MIN_TURNS=${BENCH_MIN_TURNS:-2000}
    COLD_RUNS=${BENCH_COLD_RUNS:-5}
    TP_SESSIONS=${BENCH_THROUGHPUT_SESSIONS:-1,10,100,1000}
    RUST_MEM_SESSIONS=${BENCH_RUST_MEMORY_SESSIONS:-1,10,100,1000,10000,100000}
    # 10,000 Python sessions need ~3 GiB and well over 10 min; 100,000 would not fit in RAM
    PY_MEM_SESSIONS=${BENCH_PY_MEMORY_SESSIONS:-1,10,100,1000}
fi

say() { printf '== %s\n' "$*" >&2; }

if ! command -v python3 >/dev/null 2>&1; then
    echo "compare.sh: python3 is needed for the merge step" >&2
    exit 1
fi

rm -rf "$RESULTS"
mkdir -p "$RESULTS/rust" "$RESULTS/python"

# ---------------------------------------------------------------- rust side set-up
rust_skip() { echo "rust side skipped: $*" >&2; RUST=0; }
if [ "$RUST" = 1 ]; then
    if ! command -v cargo >/dev/null 2>&1; then
        rust_skip "cargo not found"
    elif [ ! -f "$ROOT/bench/rust/Cargo.toml" ]; then
        rust_skip "bench/rust/ (crate switchboard-bench) does not exist yet"
    elif ! (cd "$ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null) \
            | python3 -c 'import json,sys; sys.exit(0 if any(p["name"]=="switchboard-bench" for p in json.load(sys.stdin)["packages"]) else 1)'; then
        rust_skip "bench/rust exists but package switchboard-bench is not in the workspace (add \"bench/rust\" to [workspace] members in Cargo.toml)"
    else
        say "building switchboard-bench (release)"
        if ! (cd "$ROOT" && cargo build --release -q -p switchboard-bench) >"$OUT/rust-build.log" 2>&1; then
            rust_skip "cargo build --release -p switchboard-bench failed (see target/bench/rust-build.log)"
        fi
    fi
fi

# -------------------------------------------------------------- python side set-up
py_skip() { echo "python side skipped: $*" >&2; PYTHON=0; }
if [ "$PYTHON" = 1 ]; then
    want_stamp="$(sha256sum "$REQ" | cut -d' ' -f1) $(python3 -c 'import platform; print(platform.python_version())')"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.bench-stamp" 2>/dev/null)" = "$want_stamp" ]; then
        say "python venv up to date ($VENV)"
    else
        say "creating python venv at target/bench/venv (pip install -r bench/python/requirements.txt)"
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV" >"$OUT/venv.log" 2>&1; then
            py_skip "python3 -m venv failed (see target/bench/venv.log)"
        elif ! "$VENV/bin/pip" install -q -r "$REQ" >>"$OUT/venv.log" 2>&1; then
            py_skip "pip install -r bench/python/requirements.txt failed (see target/bench/venv.log)"
        else
            echo "$want_stamp" >"$VENV/.bench-stamp"
        fi
    fi
fi

if [ "$RUST" = 0 ] && [ "$PYTHON" = 0 ]; then
    echo "compare.sh: neither side can run, nothing to compare" >&2
    exit 1
fi

# ------------------------------------------------------------------------ running
# run_side SIDE MODE ARGS... -> $RESULTS/SIDE/MODE.json (stdout), progress on stderr
run_side() {
    local side="$1" mode="$2"; shift 2
    local dir="$RESULTS/$side"
    cat /proc/loadavg >"$dir/$mode.loadavg" 2>/dev/null || true
    say "$side $mode $*  (loadavg $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null))"
    local rc
    if [ "$side" = rust ]; then
        (cd "$ROOT" && cargo run --release -q -p switchboard-bench -- "$mode" --json "$@") \
            >"$dir/$mode.json" 2> >(tee "$dir/$mode.log" >&2)
        rc=$?
    else
        "$VENV/bin/python" "$WORKLOAD" "$mode" --json "$@" \
            >"$dir/$mode.json" 2> >(tee "$dir/$mode.log" >&2)
        rc=$?
    fi
    wait  # for the tee
    if [ $rc -ne 0 ]; then
        echo "$side $mode failed (exit $rc, see target/bench/results/$side/$mode.log)" >&2
        [ "$mode" = verify ] || rm -f "$dir/$mode.json"
        return 1
    fi
    return 0
}

section_args() {  # section side -> extra CLI args
    case "$1" in
        latency|session) echo "--samples $SAMPLES" ;;
        memory) if [ "$2" = rust ]; then echo "--sessions $RUST_MEM_SESSIONS --turns 5"
                else echo "--sessions $PY_MEM_SESSIONS --turns 5"; fi ;;
        throughput) echo "--sessions $TP_SESSIONS --min-turns $MIN_TURNS" ;;
        cold) echo "--runs $COLD_RUNS" ;;
    esac
}

# the workflow must match the reference table before anything is measured
if [ "$RUST" = 1 ] && ! run_side rust verify; then
    rust_skip "verify failed: the Rust workload does not match the reference table"
fi
if [ "$PYTHON" = 1 ] && ! run_side python verify; then
    py_skip "verify failed: the Python workload does not match the reference table"
fi

T0=$(date +%s)
IFS=',' read -r -a SECTION_LIST <<<"$SECTIONS"
for section in "${SECTION_LIST[@]}"; do
    case "$section" in
        latency|session|memory|throughput|cold) ;;
        *) echo "compare.sh: unknown section '$section'" >&2; continue ;;
    esac
    for side in rust python; do
        if [ "$side" = rust ] && [ "$RUST" = 0 ]; then continue; fi
        if [ "$side" = python ] && [ "$PYTHON" = 0 ]; then continue; fi
        # shellcheck disable=SC2046  # word-splitting the args is intended
        run_side "$side" "$section" $(section_args "$section" "$side") || true
    done
done
say "sections done in $(( $(date +%s) - T0 )) s"

[ "$QUICK" = 1 ] && echo "(--quick: fewer samples and session counts, not for reporting)"
python3 "$MERGE" --results "$RESULTS" --out "$OUT/compare.json"
