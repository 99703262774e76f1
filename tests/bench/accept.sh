#!/usr/bin/env bash
# Accept-throughput benchmark: sluiced vs. a private Postfix instance.
#
# What it measures
#   How many messages per second a server ACCEPTS over SMTP (time until the
#   250 reply after DATA, for every message), driven by Postfix's smtp-source,
#   for 1 KB and 100 KB messages at 1, 10 and 50 concurrent sessions. Each
#   session sends its messages one after another over one connection
#   (smtp-source -d). The same run measures:
#     - sluiced (build/sluiced, foreground, config written to a temp dir), and
#     - a private Postfix instance on another loopback port, everything (config,
#       queue, data, Maildir) under the temp dir, with the durability of
#       sluiced: Postfix fsyncs each queue file before it says 250 (not
#       disabled), and where that does not keep the file's directory entry
#       (ext2, ext4 without a journal) its directories are made synchronous
#       (PF_DIRSYNC, bench_common.sh: pf_dirsync).
#   Both deliver bench@example.test into a Maildir under the same temp dir, so
#   both do the same disk work. After each run the script waits (bounded) until
#   the run's messages are delivered, so the next run starts with an idle server.
#   Each cell is the MEDIAN of REPEAT runs (the disk here is noisy); the runs of
#   the two servers are interleaved and the individual runs are printed too.
#   Peak resident memory is sampled every 0.2 s during the runs: sluiced's one
#   process; for Postfix the SUM over master and all its children (smtpd,
#   cleanup, qmgr, trivial-rewrite, virtual, ...), RSS as asked, plus PSS (which
#   does not count shared pages N times). Both servers are restarted for every
#   (size, sessions) cell, so memory is per concurrency level.
#   A quick fsync baseline (500 x 4 KiB files, fsync each) is printed before
#   and after so readers know the disk state during the run.
#
# How to run (as root; installs the Debian package postfix if missing, without
# starting the system Postfix and without touching port 25):
#   bash tests/bench/accept.sh
#   POSTFIX_ONLY=1 COUNT=200 REPEAT=1 bash tests/bench/accept.sh   # Postfix half only
#
# Environment variables
#   REPEAT=3          runs per cell (median is reported)
#   SLUICED_YAML=""   lines appended to sluiced's configuration (a tuning
#                     experiment, say "workers: 1"; the results header shows it)
#   PF_DIRSYNC=auto   Postfix's directories synchronous only where its fsync
#                     does not keep directory entries; 1 always, 0 never
#   WARMUP=200        messages sent to each server before each cell's
#                     measured runs (not measured; 0 = no warm-up)
#   COUNT=N           messages per run for every size (default 2000 for 1 KB,
#                     500 for 100 KB); COUNT_1K / COUNT_100K override per size
#   SIZES="1024 102400"   message payload sizes in bytes (smtp-source -l)
#   SESSIONS="1 10 50"    concurrent sessions (smtp-source -s)
#   POSTFIX_ONLY=1    measure only Postfix (no sluiced needed)
#   SLUICED=path      sluiced binary (default build/sluiced; built with `make`
#                     at the repository root if missing)
#   KEEP=1            keep the temp dir (configs, logs, spools, Maildirs)
#   BENCH_DIR=/tmp    where the temp dir is made: both servers' spools and
#                     Maildirs live there, so this picks the file system
#                     measured (see README "Measuring on a busy file system")
#   RESULTS=path      where to write the results (default /tmp/sluice-accept-*.txt)
#   RUN_TIMEOUT=300   seconds before one smtp-source run is killed
#   DRAIN_TIMEOUT=120 max seconds to wait for delivery after a run
#                     (gives up earlier if nothing progresses for 15 s)
#   MILTER=1          one no-op milter in each server's path (what milter.sh
#                     runs; the milter pieces are in bench_milter.sh): builds
#                     noop_milter.c (installs libmilter-dev if missing), adds
#                     a milter to sluiced's pipeline and smtpd_milters to
#                     Postfix, checks the milters' message counts per cell;
#                     results go to /tmp/sluice-milter-results.*.txt
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
LIB="$HERE/bench_lib.py"

# Same options for both servers: -d = several messages per connection.
SRC_OPTS=(-d -M bench-client.example.test -f bench@example.test -t bench@example.test)

MILTER=${MILTER:-0}
NAME=accept.sh
BENCH_KIND=accept              # results file /tmp/sluice-accept-results.*, title
BENCH_TMP=sluice-bench         # temp dir prefix
BENCH_WHAT=""                  # report --what (default "accepted")
BENCH_SERVERS_SUFFIX=""        # appended to the "servers:" line
BENCH_PF_ONLY_SUFFIX=""
if [[ $MILTER == 1 ]]; then
    # shellcheck source=tests/bench/bench_milter.sh
    . "$HERE/bench_milter.sh"   # sets NAME, BENCH_* and the milter_* hooks
fi
# shellcheck source=tests/bench/bench_common.sh
. "$HERE/bench_common.sh"
bench_defaults "1 10 50"
[[ $MILTER == 1 ]] && milter_install
bench_setup "$BENCH_TMP"
RAW="$TMP/raw.tsv"
printf '#server\tsize\tsessions\trep\trc\telapsed\tcount\tmsgs_per_s\tpeak_rss_kb\tpeak_pss_kb\tmax_procs\tdelivered\n' >"$RAW"
[[ $POSTFIX_ONLY == 1 ]] && log "POSTFIX_ONLY=1: measuring the Postfix half only"
[[ $MILTER == 1 ]] && milter_setup
SERVERS=(sluice postfix)
[[ $POSTFIX_ONLY == 1 ]] && SERVERS=(postfix)

read -r PF_PORT SL_PORT < <("$PY" "$LIB" freeport 2)

# ------------------------------------------------------------------ sluiced config
SL_CONF="$TMP/sluiced.yaml"
SL_MAIL="$TMP/sluice-mail"
mkdir -p "$TMP/sluice-spool" "$SL_MAIL"
sluiced_yaml "$TMP/sluice-spool" "$SL_PORT" "$SL_MAIL" "${SLUICED_YAML:-}" >"$SL_CONF"
if [[ $MILTER == 1 ]]; then
    milter_sluiced_yaml >>"$SL_CONF"
    milter_sluiced_check "$SL_CONF"
fi

# ------------------------------------------------------------------ private Postfix
PF_MAIL="$TMP/pf-mail"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
mkdir -p "$PF_MAIL"   # pf-data: created by postfix check
chown "$NOBODY_UID:$NOBODY_GID" "$PF_MAIL"
echo "bench@example.test example.test/bench/Maildir/" >"$PF_CONF/vmailbox"
{
    echo "# Private benchmark instance written by tests/bench/$NAME"
    pf_main_common
    cat <<EOF
relay_domains =
virtual_mailbox_domains = example.test
virtual_mailbox_base = $PF_MAIL
virtual_mailbox_maps = texthash:$PF_CONF/vmailbox
virtual_uid_maps = static:$NOBODY_UID
virtual_gid_maps = static:$NOBODY_GID
virtual_minimum_uid = 100
EOF
    [[ $MILTER != 1 ]] || milter_pf_main
} >"$PF_CONF/main.cf"
pf_write_master "$PF_PORT"
pf_check
# Durability parity (bench_common.sh: pf_dirsync): the directories a
# message enters after Postfix's 250 (active/, deferred/, hold/) and the
# Maildir's new/, made here ahead of Postfix's first delivery.
PF_MAILDIR="$PF_MAIL/example.test/bench/Maildir"
mkdir -p "$PF_MAILDIR/tmp" "$PF_MAILDIR/new" "$PF_MAILDIR/cur"
chown -R "$NOBODY_UID:$NOBODY_GID" "$PF_MAIL"
chmod -R 700 "$PF_MAIL/example.test"
pf_dirsync "$PF_QUEUE/active" "$PF_QUEUE/deferred" "$PF_QUEUE/hold" "$PF_MAILDIR/new"

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
    sync   # start every run without dirty page cache from the previous one
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
    # Delivered files are kept (counted as a difference): deleting thousands
    # of files between runs would make the next run's file creations pay for
    # the filesystem's recently-deleted-inode scans (ext4 without a journal).
    local extra=""
    if [[ $MILTER == 1 ]]; then
        milter_count "$server" "$delivered"
        extra=$(printf '  milter RSS %5.1f MB' "$(milter_rss_mb "$server")")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$size" "$sessions" "$rep" \
        "$rc" "$elapsed" "$count" "$rate" "$rss" "$pss" "$procs" "$delivered" >>"$RAW"
    local status="ok"
    if [[ $rc != 0 ]]; then
        status="FAILED (smtp-source exit $rc; see $TMP/smtp-source-$server.log)"
        tail -n 5 "$TMP/smtp-source-$server.log" >&2 || true
    fi
    printf '   %-7s rep %d: %5d msgs in %7.2f s = %8.1f msg/s  peak RSS %6.1f MB%s  delivered %d/%d  %s\n' \
        "$server" "$rep" "$count" "$elapsed" "$rate" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" \
        "$extra" "$delivered" "$count" "$status"
}

# ------------------------------------------------------------------ main
FSYNC_BEFORE=$("$PY" "$LIB" fsync "$TMP/fsync-test" 500)
PF_VERSION=$(/usr/sbin/postconf -c "$PF_CONF" -h mail_version)
SERVERS_TXT="sluiced $SLUICED (127.0.0.1:$SL_PORT) and Postfix $PF_VERSION (127.0.0.1:$PF_PORT)$BENCH_SERVERS_SUFFIX"
[[ $POSTFIX_ONLY == 1 ]] && SERVERS_TXT="Postfix $PF_VERSION (127.0.0.1:$PF_PORT)$BENCH_PF_ONLY_SUFFIX"
log "servers: $SERVERS_TXT"
log "temp dir: $TMP"
log "Postfix durability: $PF_DIRSYNC_TXT"
log "fsync baseline: $FSYNC_BEFORE files/s (500 x 4 KiB, fsync each)"
log "client: smtp-source ${SRC_OPTS[*]} -s SESSIONS -m COUNT -l SIZE 127.0.0.1:PORT"
log "REPEAT=$REPEAT COUNT_1K=$COUNT_1K COUNT_100K=$COUNT_100K SIZES='$SIZES' SESSIONS='$SESSIONS'"
T_START=$(date +%s)

for size in $SIZES; do
    if ((size <= 10240)); then count=$COUNT_1K; else count=$COUNT_100K; fi
    for sessions in $SESSIONS; do
        log "size $size B, $sessions session(s), $count messages per run"
        if [[ $MILTER == 1 ]]; then
            for server in "${SERVERS[@]}"; do start_milter "$server"; done
        fi
        start_sluiced "$SL_CONF" "$SL_PORT"
        start_postfix "$PF_PORT"
        # Warm-up, not measured: both servers reach their steady state
        # (Postfix spawns its smtpd processes, sluiced fills its pool of
        # reusable queue files).
        if ((WARMUP > 0)); then
            for server in "${SERVERS[@]}"; do
                run_one "$server" "$size" "$sessions" 0 "$WARMUP" >/dev/null
            done
            sed -i '/^[a-z]*\t[0-9]*\t[0-9]*\t0\t/d' "$RAW"
        fi
        for ((rep = 1; rep <= REPEAT; rep++)); do
            # Alternate which server goes first so disk drift hits both alike.
            if [[ $POSTFIX_ONLY == 1 ]]; then order=(postfix)
            elif ((rep % 2)); then order=(sluice postfix)
            else order=(postfix sluice); fi
            for server in "${order[@]}"; do
                run_one "$server" "$size" "$sessions" "$rep" "$count"
            done
        done
        stop_sluiced
        stop_postfix
        if [[ $MILTER == 1 ]]; then
            for server in "${SERVERS[@]}"; do stop_milter "$server"; done
        fi
    done
done

FSYNC_AFTER=$("$PY" "$LIB" fsync "$TMP/fsync-test" 500)
RESULTS=${RESULTS:-$(mktemp "/tmp/sluice-$BENCH_KIND-results.XXXXXX.txt")}
report_args=()
[[ -z $BENCH_WHAT ]] || report_args=(--what "$BENCH_WHAT")
[[ $POSTFIX_ONLY == 1 ]] && report_args+=(--postfix-only)
{
    echo "sluice $BENCH_KIND benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(uname -r), $(nproc) CPUs"
    echo "servers: $SERVERS_TXT"
    echo "Postfix durability: $PF_DIRSYNC_TXT"
    [[ -z ${SLUICED_YAML:-} ]] || echo "sluiced configuration extra: ${SLUICED_YAML//$'\n'/; }"
    echo "client: smtp-source ${SRC_OPTS[*]} -s SESSIONS -m COUNT -l SIZE 127.0.0.1:PORT"
    echo "REPEAT=$REPEAT COUNT_1K=$COUNT_1K COUNT_100K=$COUNT_100K; wall time $(($(date +%s) - T_START)) s"
    echo "fsync baseline: before $FSYNC_BEFORE files/s, after $FSYNC_AFTER files/s (500 x 4 KiB, fsync each)"
    [[ $MILTER == 1 && $MILTER_BYPASSED == 1 ]] && echo "WARNING: some messages did not go through a milter (see 'milter check' lines)"
    echo
    "$PY" "$LIB" report "$RAW" "${report_args[@]}"
    echo
    echo "raw runs (TSV):"
    cat "$RAW"
} >"$RESULTS"
echo
sed '/^raw runs (TSV):$/,$d' "$RESULTS"
echo "results written to $RESULTS"
