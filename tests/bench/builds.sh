#!/usr/bin/env bash
# Build-against-build benchmark: two sluiced binaries on the accept path.
#
# What it measures
#   Whether a change to sluiced made it faster or cheaper, which the
#   Postfix comparisons (accept.sh) cannot show: the disk of this VM drifts
#   by tens of percent within minutes, more than most changes are worth.
#   So the two builds take turns in ABBA order (A B, B A, A B, ...), each
#   turn a fresh sluiced on its own spool, WARMUP messages, then REPEAT
#   runs of smtp-source (the line accept.sh uses), each followed by a
#   bounded wait until its messages are in the Maildir. Per run it prints
#   the accept rate and sluiced's own CPU time per message (utime + stime
#   from /proc/PID/stat, delivery included); at the end the medians of both
#   and the ratio B/A.
#
# How to run (as root; installs postfix for smtp-source if missing,
# without starting it):
#   cp build/sluiced /tmp/sluiced.old      # before the change
#   make                                   # after it
#   bash tests/bench/builds.sh /tmp/sluiced.old build/sluiced
#   ENV_B="X=1" bash tests/bench/builds.sh build/sluiced build/sluiced
#
# Environment variables
#   ROUNDS=4        ABBA rounds (each runs both builds once)
#   REPEAT=3        measured runs per turn
#   WARMUP=200      messages before a turn's runs (not measured)
#   COUNT=2000      messages per run
#   SIZE=1024       payload bytes (smtp-source -l)
#   SESSIONS=10     concurrent sessions (smtp-source -s)
#   EXTRA_YAML=""   lines appended to both configurations (a pipeline, say)
#   ENV_A, ENV_B    extra environment for build A / B ("NAME=value ...")
#   KEEP=0          1: keep the temp dir
#   BENCH_DIR=/tmp  where the temp dir is made (the file system measured)
#
# The spools and Maildirs stay until the end: deleting thousands of files
# makes ext4 without a journal slower at creating files for the next few
# minutes (bench README), which would favour whichever build ran later.
set -euo pipefail

NAME=builds.sh
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
LIB="$ROOT/tests/bench/bench_lib.py"
# shellcheck source=tests/bench/bench_common.sh
source "$ROOT/tests/bench/bench_common.sh"

[[ $# -eq 2 ]] || die "usage: $0 SLUICED_A SLUICED_B"
BIN_A=$(readlink -f "$1")
BIN_B=$(readlink -f "$2")
[[ -x $BIN_A && -x $BIN_B ]] || die "both arguments must be sluiced binaries"
ROUNDS=${ROUNDS:-4}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-200}
COUNT=${COUNT:-2000}
SIZE=${SIZE:-1024}
SESSIONS=${SESSIONS:-10}
KEEP=${KEEP:-0}
check_positive ROUNDS REPEAT COUNT SIZE SESSIONS
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a number (got '$WARMUP')"

install_deps
TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/sluice-builds.XXXXXX")
RAW="$TMP/raw.tsv"
: >"$RAW"

# cpu_ticks PID - utime + stime of the process, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# turn SIDE N - one fresh sluiced of build SIDE (A or B), its runs
turn() {
    local side=$1 n=$2 bin envs dir port t0 t1 c0 c1
    if [[ $side == A ]]; then bin=$BIN_A; envs=${ENV_A:-}; else bin=$BIN_B; envs=${ENV_B:-}; fi
    dir="$TMP/$side.$n"
    mkdir -p "$dir/spool" "$dir/mail"
    port=$("$PY" "$LIB" freeport)
    sluiced_yaml "$dir/spool" "$port" "$dir/mail" \
        "allow_root_filters: true"$'\n'"${EXTRA_YAML:-}" >"$dir/sluiced.yaml"
    # shellcheck disable=SC2086
    env $envs "$bin" -c "$dir/sluiced.yaml" </dev/null 2>"$dir/sluiced.log" &
    SLUICE_PID=$!
    "$PY" "$LIB" waitport "$port" 10 "$SLUICE_PID" ||
        die "sluiced ($side) did not start; see $dir/sluiced.log"
    local src=("$SMTP_SOURCE" -d -M bench-client.example.test
        -f bench@example.test -t bench@example.test -s "$SESSIONS" -l "$SIZE")
    local sent=0
    if [[ $WARMUP -gt 0 ]]; then
        "${src[@]}" -m "$WARMUP" "127.0.0.1:$port"
        sent=$WARMUP
    fi
    for _ in $(seq "$REPEAT"); do
        "$PY" "$LIB" drain --base "$dir/mail" --expect "$sent" \
            --timeout 120 >/dev/null || true
        c0=$(cpu_ticks "$SLUICE_PID")
        t0=$(date +%s.%N)
        timeout 300 "${src[@]}" -m "$COUNT" "127.0.0.1:$port"
        t1=$(date +%s.%N)
        sent=$((sent + COUNT))
        "$PY" "$LIB" drain --base "$dir/mail" --expect "$sent" \
            --timeout 120 >/dev/null || true
        c1=$(cpu_ticks "$SLUICE_PID")
        awk -v s="$side" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" \
            -v n="$COUNT" -v hz="$(getconf CLK_TCK)" 'BEGIN {
            printf "%s\t%.1f\t%.3f\n", s, n / (t1 - t0), c * 1000 / hz / n }' |
            tee -a "$RAW" | awk '{ printf "   %s  %8s msg/s  %s ms CPU per message\n", $1, $2, $3 }'
    done
    stop_sluiced
}

log "A: $BIN_A ${ENV_A:-}"
log "B: $BIN_B ${ENV_B:-}"
for n in $(seq "$ROUNDS"); do
    if (( n % 2 )); then turn A "$n"; turn B "$n"; else turn B "$n"; turn A "$n"; fi
done
"$PY" - "$RAW" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
med = {}
for side in "AB":
    rate = [float(r[1]) for r in rows if r[0] == side]
    cpu = [float(r[2]) for r in rows if r[0] == side]
    med[side] = (statistics.median(rate), statistics.median(cpu))
    print(f"{side}: median {med[side][0]:.0f} msg/s, "
          f"{med[side][1]:.3f} ms CPU per message ({len(rate)} runs)")
print(f"B/A: rate {med['B'][0] / med['A'][0]:.3f}, "
      f"CPU per message {med['B'][1] / med['A'][1]:.3f}")
EOF
