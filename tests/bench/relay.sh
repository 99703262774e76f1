#!/usr/bin/env bash
# End-to-end relay benchmark: smtp-source -> server -> smtp-sink, sluiced
# vs. a private Postfix instance relaying to the same sink in the same run.
#
# What it measures
#   For 1 KB and 100 KB messages at 10 (and 50) concurrent client sessions:
#   the time from the first message smtp-source sends until the sink has
#   received the last one (the run's messages counted by smtp-sink -c),
#   i.e. receive + durable queue + outbound SMTP delivery, end to end. Both
#   servers relay every message to one smtp-sink on loopback with their
#   stock delivery settings (sluiced: routes "*" to the sink; Postfix:
#   relayhost); both fsync before they say 250. The accept rate alone (until
#   smtp-source finished) is recorded too. Each cell is the median of REPEAT
#   runs, the two servers' runs interleaved.
#   MEMORY=N additionally sends N 1 KB messages through sluiced alone in
#   chunks of 10,000 and prints its resident memory after each chunk (the
#   memory-growth check of issue 4: 100000).
#
# How to run (as root; installs the Debian package postfix if missing,
# without starting the system Postfix):
#   bash tests/bench/relay.sh
#   REPEAT=1 COUNT=500 SESSIONS=10 bash tests/bench/relay.sh      # quick
#   MEMORY=100000 REPEAT=1 SIZES=1024 SESSIONS=10 bash tests/bench/relay.sh
#
# Environment variables
#   REPEAT=3            runs per cell (median reported)
#   PF_DIRSYNC=auto     Postfix's queue directories synchronous only where its
#                       fsync does not keep directory entries (accept.sh)
#   WARMUP=200          messages through each server before a cell (not measured)
#   COUNT=N             messages per run (default 2000 for 1 KB, 500 for 100 KB);
#                       COUNT_1K / COUNT_100K per size
#   SIZES="1024 102400" payload bytes (smtp-source -l)
#   SESSIONS="10 50"    concurrent client sessions (smtp-source -s)
#   MEMORY=0            messages for the memory-growth run (0 = skip)
#   SLUICED=path        sluiced binary (default build/sluiced)
#   KEEP=1              keep the temp dir
#   BENCH_DIR=/tmp      where the temp dir is made (the file system measured)
#   RESULTS=path        results file (default /tmp/sluice-relay-*.txt)
#   RUN_TIMEOUT=300     seconds before one run (send + relay) is given up
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
LIB="$HERE/bench_lib.py"

MEMORY=${MEMORY:-0}
SRC_OPTS=(-d -M bench-client.example.test -f bench@example.test -t bench@relay.test)

NAME=relay.sh
# shellcheck source=tests/bench/bench_common.sh
. "$HERE/bench_common.sh"
bench_defaults "10 50"
[[ $MEMORY =~ ^[0-9]+$ ]] || die "MEMORY must be an integer"

SINK_PID=""
stop_sink() {
    [[ -n $SINK_PID ]] || return 0
    kill -TERM "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=""
}
CLEANUP_HOOK=stop_sink
bench_setup sluice-relay
RAW="$TMP/raw.tsv"
printf '#server\tsize\tsessions\trep\trc\telapsed\tcount\tmsgs_per_s\tpeak_rss_kb\tpeak_pss_kb\tmax_procs\tdelivered\taccept_per_s\n' >"$RAW"

read -r PF_PORT SL_PORT SINK_PORT < <("$PY" "$LIB" freeport 3)

# ------------------------------------------------------------------ the sink
# One smtp-sink for both servers: 250 to everything, a running message
# counter on stdout (-c), up to 1000 connections waiting.
SINK_OUT="$TMP/sink.out"
"$SMTP_SINK" -u nobody -c "127.0.0.1:$SINK_PORT" 1000 >"$SINK_OUT" 2>"$TMP/sink.err" &
SINK_PID=$!
"$PY" "$LIB" waitport "$SINK_PORT" 10 "$SINK_PID" || die "smtp-sink did not start ($(cat "$TMP/sink.err"))"

# ------------------------------------------------------------------ sluiced
SL_CONF="$TMP/sluiced.yaml"
mkdir -p "$TMP/sluice-spool"
cat >"$SL_CONF" <<EOF
hostname: bench.example.test
spool: $TMP/sluice-spool
listeners:
  - {name: mx, address: 127.0.0.1, port: $SL_PORT, role: mx}
trusted_networks: [127.0.0.0/8]
domains: {local: [example.test]}
mailboxes: {maildir: "$TMP/sluice-mail/%d/%u/Maildir", users: [bench@example.test]}
routes: {"*": "smtp:[127.0.0.1]:$SINK_PORT"}
log: {target: stderr}
EOF

# ------------------------------------------------------------------ Postfix
{
    echo "# Private benchmark instance written by tests/bench/relay.sh"
    pf_main_common
    cat <<EOF
relay_domains =
relayhost = [127.0.0.1]:$SINK_PORT
EOF
} >"$PF_CONF/main.cf"
pf_write_master "$PF_PORT"
pf_check
pf_dirsync "$PF_QUEUE/active" "$PF_QUEUE/deferred" "$PF_QUEUE/hold"

# ------------------------------------------------------------------ one run
run_one() {   # server size sessions rep count
    local server=$1 size=$2 sessions=$3 rep=$4 count=$5
    local port pid tree=() before
    if [[ $server == sluice ]]; then
        port=$SL_PORT; pid=$SLUICE_PID
    else
        port=$PF_PORT; pid=$(pf_master_pid); tree=(--tree)
    fi
    sync
    before=$("$PY" "$LIB" sinkcount "$SINK_OUT")
    local out rc accept rss pss procs elapsed got
    out=$("$PY" "$LIB" run --log "$TMP/smtp-source-$server.log" --pid "$pid" "${tree[@]}" \
        --timeout "$RUN_TIMEOUT" --sink "$SINK_OUT" --expect "$((before + count))" -- \
        "$SMTP_SOURCE" "${SRC_OPTS[@]}" -s "$sessions" -m "$count" -l "$size" "127.0.0.1:$port")
    read -r rc accept rss pss procs elapsed got <<<"$out"
    local delivered=$((got - before)) rate arate
    rate=$(awk -v c="$count" -v e="$elapsed" 'BEGIN { printf "%.2f", (e > 0 ? c / e : 0) }')
    arate=$(awk -v c="$count" -v e="$accept" 'BEGIN { printf "%.2f", (e > 0 ? c / e : 0) }')
    # A run whose messages did not all reach the sink does not count.
    if ((delivered < count)) && [[ $rc == 0 ]]; then rc=99; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$size" "$sessions" \
        "$rep" "$rc" "$elapsed" "$count" "$rate" "$rss" "$pss" "$procs" "$delivered" "$arate" >>"$RAW"
    local status=ok
    [[ $rc == 0 ]] || status="FAILED (rc $rc; smtp-source log $TMP/smtp-source-$server.log)"
    printf '   %-7s rep %d: %5d msgs relayed in %7.2f s = %8.1f msg/s (accepted at %8.1f/s)  peak RSS %6.1f MB  %s\n' \
        "$server" "$rep" "$count" "$elapsed" "$rate" "$arate" \
        "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$status"
}

# memory_run N - N 1 KB messages through sluiced in chunks; RSS after each
memory_run() {
    local total=$1 chunk=10000 sent=0 before out
    log "memory: $total messages of 1 KB through sluiced, 10 sessions, RSS after each chunk"
    start_sluiced "$SL_CONF" "$SL_PORT"
    MEM_LINES=()
    while ((sent < total)); do
        ((chunk <= total - sent)) || chunk=$((total - sent))
        before=$("$PY" "$LIB" sinkcount "$SINK_OUT")
        out=$("$PY" "$LIB" run --log "$TMP/smtp-source-memory.log" --pid "$SLUICE_PID" \
            --timeout "$RUN_TIMEOUT" --sink "$SINK_OUT" --expect "$((before + chunk))" -- \
            "$SMTP_SOURCE" "${SRC_OPTS[@]}" -s 10 -m "$chunk" -l 1024 "127.0.0.1:$SL_PORT")
        sent=$((sent + chunk))
        local rss
        rss=$("$PY" "$LIB" rss "$SLUICE_PID")
        MEM_LINES+=("$(printf '  after %6d messages: RSS %6.1f MB (run: %s)' "$sent" \
            "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$out")")
        echo "${MEM_LINES[-1]}"
    done
    stop_sluiced
}

# ------------------------------------------------------------------ main
SERVERS_TXT="sluiced $SLUICED (127.0.0.1:$SL_PORT) and Postfix $(/usr/sbin/postconf -c "$PF_CONF" -h mail_version) (127.0.0.1:$PF_PORT), both relaying to smtp-sink 127.0.0.1:$SINK_PORT"
log "servers: $SERVERS_TXT"
log "temp dir: $TMP"
log "Postfix durability: $PF_DIRSYNC_TXT"
log "REPEAT=$REPEAT COUNT_1K=$COUNT_1K COUNT_100K=$COUNT_100K SIZES='$SIZES' SESSIONS='$SESSIONS'"
T_START=$(date +%s)

for size in $SIZES; do
    if ((size <= 10240)); then count=$COUNT_1K; else count=$COUNT_100K; fi
    for sessions in $SESSIONS; do
        log "size $size B, $sessions session(s), $count messages per run"
        start_sluiced "$SL_CONF" "$SL_PORT"
        start_postfix "$PF_PORT"
        if ((WARMUP > 0)); then
            for server in sluice postfix; do
                run_one "$server" "$size" "$sessions" 0 "$WARMUP" >/dev/null
            done
            sed -i '/^[a-z]*\t[0-9]*\t[0-9]*\t0\t/d' "$RAW"
        fi
        for ((rep = 1; rep <= REPEAT; rep++)); do
            if ((rep % 2)); then order=(sluice postfix); else order=(postfix sluice); fi
            for server in "${order[@]}"; do
                run_one "$server" "$size" "$sessions" "$rep" "$count"
            done
        done
        stop_sluiced
        stop_postfix
    done
done
MEM_LINES=()
((MEMORY == 0)) || memory_run "$MEMORY"

RESULTS=${RESULTS:-$(mktemp /tmp/sluice-relay-results.XXXXXX.txt)}
{
    echo "sluice relay benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(uname -r), $(nproc) CPUs"
    echo "servers: $SERVERS_TXT"
    echo "Postfix durability: $PF_DIRSYNC_TXT"
    echo "client: smtp-source ${SRC_OPTS[*]} -s SESSIONS -m COUNT -l SIZE; end to end = until the sink counted every message"
    echo "REPEAT=$REPEAT COUNT_1K=$COUNT_1K COUNT_100K=$COUNT_100K; wall time $(($(date +%s) - T_START)) s"
    echo
    "$PY" "$LIB" report "$RAW" --what "relayed end to end"
    if ((${#MEM_LINES[@]})); then
        echo
        echo "sluiced memory over $MEMORY messages (rc accept_s peak_rss_kb peak_pss_kb procs end_to_end_s sink_count):"
        printf '%s\n' "${MEM_LINES[@]}"
    fi
    echo
    echo "raw runs (TSV; msgs_per_s = end to end, accept_per_s = until smtp-source finished):"
    cat "$RAW"
} >"$RESULTS"
echo
sed '/^raw runs (TSV/,$d' "$RESULTS"
echo "results written to $RESULTS"
