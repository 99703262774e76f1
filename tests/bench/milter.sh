#!/usr/bin/env bash
# Milter benchmark: accept throughput of sluiced and of Postfix, each with one
# no-op milter (tests/bench/noop_milter.c) in its path.
#
# What it measures
#   As accept.sh: messages per second ACCEPTED over SMTP (until the 250 after
#   DATA), driven by Postfix's smtp-source (-d: each session sends its
#   messages over one connection), for 1 KB and 100 KB messages at 1, 10 and
#   50 sessions, medians of REPEAT runs, the two servers' runs interleaved and
#   alternating who goes first, both delivering into Maildirs under the temp
#   dir. The difference to accept.sh: every SMTP session of both servers goes
#   through a milter:
#     - sluiced:  pipeline: [{milter: unix:TMP/milter-sluice/noop.sock, ...}]
#     - Postfix:  smtpd_milters = unix:TMP/milter-postfix/noop.sock
#   Each server has its own noop_milter process (libmilter, one thread per
#   connection) that answers CONTINUE to connect, helo, mail, rcpt, every
#   header, eoh, every body chunk and eom, with no NR_ (no-reply) bits: the
#   MTA waits for an answer to every event, as with a typical milter.
#   Both use default_action tempfail, so a broken milter connection shows as
#   failed messages instead of being skipped. After each cell the script
#   checks, from the milter's own counter, that every message sent to a
#   server went through its milter (a line "milter check" per server).
#   Memory columns are the servers' as in accept.sh (the milter processes are
#   not included; their peak RSS is printed per cell).
#
# How to run (as root; installs postfix and libmilter-dev if missing, without
# starting the system Postfix):
#   bash tests/bench/milter.sh
#   POSTFIX_ONLY=1 COUNT=300 REPEAT=1 SESSIONS=10 bash tests/bench/milter.sh
#
# Environment variables (as accept.sh)
#   REPEAT=3  WARMUP=200  COUNT / COUNT_1K (2000) / COUNT_100K (500)
#   SIZES="1024 102400"  SESSIONS="1 10 50"  POSTFIX_ONLY=1  SLUICED=path
#   KEEP=1  RESULTS=path (default /tmp/sluice-milter-results.XXXXXX.txt)
#   RUN_TIMEOUT=300  DRAIN_TIMEOUT=120
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
LIB="$HERE/bench_lib.py"

SRC_OPTS=(-d -M bench-client.example.test -f bench@example.test -t bench@example.test)

NAME=milter.sh
# shellcheck source=tests/bench/bench_common.sh
. "$HERE/bench_common.sh"
bench_defaults "1 10 50"

# libmilter-dev to build the no-op milter (before bench_setup: its apt-get
# runs under the same policy-rc.d guard only for postfix, and libmilter-dev
# starts no service)
if ! pkg-config --exists milter 2>/dev/null || ! command -v cc >/dev/null; then
    log "installing libmilter-dev (to build noop_milter.c)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libmilter-dev gcc pkg-config
fi

bench_setup sluice-milter
RAW="$TMP/raw.tsv"
printf '#server\tsize\tsessions\trep\trc\telapsed\tcount\tmsgs_per_s\tpeak_rss_kb\tpeak_pss_kb\tmax_procs\tdelivered\n' >"$RAW"
[[ $POSTFIX_ONLY == 1 ]] && log "POSTFIX_ONLY=1: measuring the Postfix half only"

NOOP="$TMP/noop_milter"
# shellcheck disable=SC2046
cc -O2 -Wall -o "$NOOP" "$HERE/noop_milter.c" $(pkg-config --cflags --libs milter) -pthread \
    || die "cannot build $HERE/noop_milter.c"

read -r PF_PORT SL_PORT < <("$PY" "$LIB" freeport 2)

# ------------------------------------------------------------------ the milters
# One process per server, each on a unix socket in its own directory.
# Postfix's smtpd (user postfix) must be able to connect: socket mode 777
# (umask 0) in a directory that is 755 like $TMP.
declare -A MILTER_PID=() MILTER_SOCK=() MILTER_SENT=()
MILTER_SOCK[sluice]="$TMP/milter-sluice/noop.sock"
MILTER_SOCK[postfix]="$TMP/milter-postfix/noop.sock"
mkdir -p "$TMP/milter-sluice" "$TMP/milter-postfix"
chmod 755 "$TMP/milter-sluice" "$TMP/milter-postfix"

start_milter() {   # server
    local sock=${MILTER_SOCK[$1]} i
    rm -f "$sock"
    "$NOOP" "unix:$sock" 0 </dev/null >>"$TMP/milter-$1.log" 2>&1 &
    MILTER_PID[$1]=$!
    MILTER_SENT[$1]=0
    for ((i = 0; i < 100; i++)); do
        [[ -S $sock ]] && return 0
        kill -0 "${MILTER_PID[$1]}" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 5 "$TMP/milter-$1.log" >&2 || true
    die "noop_milter for $1 did not create $sock"
}

# stop_milter SERVER - SIGTERM by PID (libmilter notices it within ~5 s),
# then SIGKILL; checks the milter's message counter against what was sent
stop_milter() {
    local pid=${MILTER_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! "$PY" "$LIB" pidwait "$pid" 10; then
        echo "noop_milter $pid did not exit on SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    MILTER_PID[$1]=""
    local line seen
    line=$(grep 'noop_milter: connections' "$TMP/milter-$1.log" | tail -n 1 || true)
    seen=$(awk '{print $5}' <<<"$line")
    if [[ -z $seen ]]; then
        echo "   milter check $1: no counter from the milter (killed?)" >&2
    elif ((seen < MILTER_SENT[$1])); then
        echo "   milter check $1: FAILED: $seen of ${MILTER_SENT[$1]} messages went through the milter" >&2
        MILTER_BYPASSED=1
    else
        echo "   milter check $1: ok, $seen messages through the milter (${MILTER_SENT[$1]} accepted)"
    fi
}
MILTER_BYPASSED=0

stop_milters() {
    local s
    for s in sluice postfix; do stop_milter "$s"; done
}
CLEANUP_HOOK=stop_milters

# ------------------------------------------------------------------ sluiced config
SL_CONF="$TMP/sluiced.yaml"
SL_MAIL="$TMP/sluice-mail"
mkdir -p "$TMP/sluice-spool" "$SL_MAIL"
cat >"$SL_CONF" <<EOF
hostname: bench.example.test
spool: $TMP/sluice-spool
listeners:
  - {name: mx, address: 127.0.0.1, port: $SL_PORT, role: mx}
domains: {local: [example.test]}
mailboxes: {maildir: "$SL_MAIL/%d/%u/Maildir", users: [bench@example.test]}
log: {target: stderr}
pipeline:
  - milter: unix:${MILTER_SOCK[sluice]}
    name: noop
    default_action: tempfail
EOF
if [[ $POSTFIX_ONLY != 1 ]] && ! "$SLUICED" -t -c "$SL_CONF" >"$TMP/sluiced-check.log" 2>&1; then
    cat "$TMP/sluiced-check.log" >&2
    die "sluiced refuses the milter configuration (is the milter client built?); POSTFIX_ONLY=1 measures Postfix alone"
fi

# ------------------------------------------------------------------ private Postfix
PF_MAIL="$TMP/pf-mail"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
mkdir -p "$PF_MAIL"
chown "$NOBODY_UID:$NOBODY_GID" "$PF_MAIL"
echo "bench@example.test example.test/bench/Maildir/" >"$PF_CONF/vmailbox"
{
    echo "# Private benchmark instance written by tests/bench/milter.sh"
    pf_main_common
    cat <<EOF
relay_domains =
virtual_mailbox_domains = example.test
virtual_mailbox_base = $PF_MAIL
virtual_mailbox_maps = texthash:$PF_CONF/vmailbox
virtual_uid_maps = static:$NOBODY_UID
virtual_gid_maps = static:$NOBODY_GID
virtual_minimum_uid = 100
smtpd_milters = unix:${MILTER_SOCK[postfix]}
milter_default_action = tempfail
milter_protocol = 6
EOF
} >"$PF_CONF/main.cf"
pf_write_master "$PF_PORT"
pf_check

# ------------------------------------------------------------------ one run
SL_NODELIVER=0
PF_NODELIVER=0

run_one() {   # server size sessions rep count
    local server=$1 size=$2 sessions=$3 rep=$4 count=$5
    local port pid tree=() base queue=() nodeliver
    if [[ $server == sluice ]]; then
        port=$SL_PORT; pid=$SLUICE_PID; base=$SL_MAIL; nodeliver=$SL_NODELIVER
    else
        port=$PF_PORT; pid=$(pf_master_pid); tree=(--tree); base=$PF_MAIL
        queue=(--queue "$PF_QUEUE"); nodeliver=$PF_NODELIVER
    fi
    sync
    local out rc elapsed rss pss procs pre
    pre=$("$PY" "$LIB" count "$base")
    out=$("$PY" "$LIB" run --log "$TMP/smtp-source-$server.log" --pid "$pid" "${tree[@]}" \
        --timeout "$RUN_TIMEOUT" -- "$SMTP_SOURCE" "${SRC_OPTS[@]}" -s "$sessions" -m "$count" \
        -l "$size" "127.0.0.1:$port")
    read -r rc elapsed rss pss procs <<<"$out"
    local rate delivered
    rate=$(awk -v c="$count" -v e="$elapsed" 'BEGIN { printf "%.2f", (e > 0 ? c / e : 0) }')
    if [[ $nodeliver == 1 ]]; then
        delivered=$(($("$PY" "$LIB" count "$base") - pre))
    else
        delivered=$("$PY" "$LIB" drain --base "$base" --expect "$((pre + count))" "${queue[@]}" \
            --timeout "$DRAIN_TIMEOUT" --stall 15)
        delivered=$((delivered - pre))
        if [[ $delivered == 0 && $rc == 0 ]]; then
            echo "   WARNING: $server delivered nothing into its Maildir; not waiting for delivery any more" >&2
            if [[ $server == sluice ]]; then SL_NODELIVER=1; else PF_NODELIVER=1; fi
        fi
    fi
    MILTER_SENT[$server]=$((MILTER_SENT[$server] + delivered))
    local mrss
    mrss=$("$PY" "$LIB" rss "${MILTER_PID[$server]}" 2>/dev/null || echo 0)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$size" "$sessions" "$rep" \
        "$rc" "$elapsed" "$count" "$rate" "$rss" "$pss" "$procs" "$delivered" >>"$RAW"
    local status="ok"
    if [[ $rc != 0 ]]; then
        status="FAILED (smtp-source exit $rc; see $TMP/smtp-source-$server.log)"
        tail -n 5 "$TMP/smtp-source-$server.log" >&2 || true
    fi
    printf '   %-7s rep %d: %5d msgs in %7.2f s = %8.1f msg/s  peak RSS %6.1f MB  milter RSS %5.1f MB  delivered %d/%d  %s\n' \
        "$server" "$rep" "$count" "$elapsed" "$rate" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" \
        "$(awk -v k="$mrss" 'BEGIN{print k/1024}')" "$delivered" "$count" "$status"
}

# ------------------------------------------------------------------ main
FSYNC_BEFORE=$("$PY" "$LIB" fsync "$TMP/fsync-test" 500)
PF_VERSION=$(/usr/sbin/postconf -c "$PF_CONF" -h mail_version)
SERVERS_TXT="sluiced $SLUICED (127.0.0.1:$SL_PORT) and Postfix $PF_VERSION (127.0.0.1:$PF_PORT), each with its own noop_milter on a unix socket"
[[ $POSTFIX_ONLY == 1 ]] && SERVERS_TXT="Postfix $PF_VERSION (127.0.0.1:$PF_PORT) with noop_milter on a unix socket"
SERVERS=(sluice postfix)
[[ $POSTFIX_ONLY == 1 ]] && SERVERS=(postfix)
log "servers: $SERVERS_TXT"
log "temp dir: $TMP"
log "fsync baseline: $FSYNC_BEFORE files/s (500 x 4 KiB, fsync each)"
log "client: smtp-source ${SRC_OPTS[*]} -s SESSIONS -m COUNT -l SIZE 127.0.0.1:PORT"
log "REPEAT=$REPEAT COUNT_1K=$COUNT_1K COUNT_100K=$COUNT_100K SIZES='$SIZES' SESSIONS='$SESSIONS'"
T_START=$(date +%s)

for size in $SIZES; do
    if ((size <= 10240)); then count=$COUNT_1K; else count=$COUNT_100K; fi
    for sessions in $SESSIONS; do
        log "size $size B, $sessions session(s), $count messages per run"
        for server in "${SERVERS[@]}"; do start_milter "$server"; done
        start_sluiced "$SL_CONF" "$SL_PORT"
        start_postfix "$PF_PORT"
        if ((WARMUP > 0)); then
            for server in "${SERVERS[@]}"; do
                run_one "$server" "$size" "$sessions" 0 "$WARMUP" >/dev/null
            done
            sed -i '/^[a-z]*\t[0-9]*\t[0-9]*\t0\t/d' "$RAW"
        fi
        for ((rep = 1; rep <= REPEAT; rep++)); do
            if [[ $POSTFIX_ONLY == 1 ]]; then order=(postfix)
            elif ((rep % 2)); then order=(sluice postfix)
            else order=(postfix sluice); fi
            for server in "${order[@]}"; do
                run_one "$server" "$size" "$sessions" "$rep" "$count"
            done
        done
        stop_sluiced
        stop_postfix
        for server in "${SERVERS[@]}"; do stop_milter "$server"; done
    done
done

FSYNC_AFTER=$("$PY" "$LIB" fsync "$TMP/fsync-test" 500)
RESULTS=${RESULTS:-$(mktemp /tmp/sluice-milter-results.XXXXXX.txt)}
report_args=(--what "accepted, one no-op milter each")
[[ $POSTFIX_ONLY == 1 ]] && report_args+=(--postfix-only)
{
    echo "sluice milter benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(uname -r), $(nproc) CPUs"
    echo "servers: $SERVERS_TXT"
    echo "client: smtp-source ${SRC_OPTS[*]} -s SESSIONS -m COUNT -l SIZE 127.0.0.1:PORT"
    echo "REPEAT=$REPEAT COUNT_1K=$COUNT_1K COUNT_100K=$COUNT_100K; wall time $(($(date +%s) - T_START)) s"
    echo "fsync baseline: before $FSYNC_BEFORE files/s, after $FSYNC_AFTER files/s (500 x 4 KiB, fsync each)"
    [[ $MILTER_BYPASSED == 1 ]] && echo "WARNING: some messages did not go through a milter (see 'milter check' lines)"
    echo
    "$PY" "$LIB" report "$RAW" "${report_args[@]}"
    echo
    echo "raw runs (TSV):"
    cat "$RAW"
} >"$RESULTS"
echo
sed '/^raw runs (TSV):$/,$d' "$RESULTS"
echo "results written to $RESULTS"
