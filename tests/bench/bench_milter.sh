# bench_milter.sh - the milter-only pieces of the accept benchmark, sourced by
# accept.sh when MILTER=1 (tests/bench/milter.sh does that): one no-op milter
# (tests/bench/noop_milter.c) in the path of each server.
#
# Sourced before bench_common.sh (it sets NAME and the names of the results);
# its functions use bench_common.sh's (log, die, ...) and accept.sh's settings
# (PY, LIB, HERE, TMP, SLUICED, POSTFIX_ONLY) when they are called:
#   milter_install                  libmilter-dev, gcc, pkg-config if missing
#                                   (before bench_setup)
#   milter_setup                    build noop_milter into $TMP, socket dirs,
#                                   cleanup hook (after bench_setup)
#   milter_sluiced_yaml             the sluiced config's pipeline: entry
#   milter_sluiced_check CONF       `sluiced -t` of that config
#   milter_pf_main                  the main.cf lines for Postfix's milter
#   start_milter / stop_milter SERVER, stop_milters
#   milter_count SERVER N           N more messages accepted by SERVER
#   milter_rss_mb SERVER            the milter's current RSS in MB
# shellcheck shell=bash
# The settings below are read by accept.sh (NAME by bench_common.sh's die):
# shellcheck disable=SC2034

NAME=milter.sh
BENCH_KIND=milter              # results file /tmp/sluice-milter-results.*, title
BENCH_TMP=sluice-milter        # temp dir prefix
BENCH_WHAT="accepted, one no-op milter each"
BENCH_SERVERS_SUFFIX=", each with its own noop_milter on a unix socket"
BENCH_PF_ONLY_SUFFIX=" with noop_milter on a unix socket"

# One process per server, each on a unix socket in its own directory.
# Postfix's smtpd (user postfix) must be able to connect: socket mode 777
# (umask 0) in a directory that is 755 like $TMP.
declare -A MILTER_PID=() MILTER_SOCK=() MILTER_SENT=()
MILTER_BYPASSED=0
NOOP=""

# libmilter-dev to build the no-op milter (before bench_setup: its apt-get
# runs under the same policy-rc.d guard only for postfix, and libmilter-dev
# starts no service)
milter_install() {
    if ! pkg-config --exists milter 2>/dev/null || ! command -v cc >/dev/null; then
        log "installing libmilter-dev (to build noop_milter.c)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q libmilter-dev gcc pkg-config
    fi
}

milter_setup() {
    NOOP="$TMP/noop_milter"
    # shellcheck disable=SC2046
    cc -O2 -Wall -o "$NOOP" "$HERE/noop_milter.c" $(pkg-config --cflags --libs milter) -pthread \
        || die "cannot build $HERE/noop_milter.c"
    MILTER_SOCK[sluice]="$TMP/milter-sluice/noop.sock"
    MILTER_SOCK[postfix]="$TMP/milter-postfix/noop.sock"
    mkdir -p "$TMP/milter-sluice" "$TMP/milter-postfix"
    chmod 755 "$TMP/milter-sluice" "$TMP/milter-postfix"
    CLEANUP_HOOK=stop_milters
}

milter_sluiced_yaml() {
    cat <<EOF
allow_root_filters: true    # the benchmark runs as root
pipeline:
  - milter: unix:${MILTER_SOCK[sluice]}
    name: noop
    default_action: tempfail
EOF
}

milter_sluiced_check() {   # CONF
    if [[ $POSTFIX_ONLY != 1 ]] && ! "$SLUICED" -t -c "$1" >"$TMP/sluiced-check.log" 2>&1; then
        cat "$TMP/sluiced-check.log" >&2
        die "sluiced refuses the milter configuration (is the milter client built?); POSTFIX_ONLY=1 measures Postfix alone"
    fi
}

milter_pf_main() {
    cat <<EOF
smtpd_milters = unix:${MILTER_SOCK[postfix]}
milter_default_action = tempfail
milter_protocol = 6
EOF
}

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

stop_milters() {
    local s
    for s in sluice postfix; do stop_milter "$s"; done
}

milter_count() {   # server delivered
    MILTER_SENT[$1]=$((MILTER_SENT[$1] + $2))
}

milter_rss_mb() {   # server
    local kb
    kb=$("$PY" "$LIB" rss "${MILTER_PID[$1]}" 2>/dev/null || echo 0)
    awk -v k="$kb" 'BEGIN{print k/1024}'
}
