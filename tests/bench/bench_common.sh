# bench_common.sh - shell pieces shared by the benchmarks (sourced by
# accept.sh, relay.sh and builds.sh): root check, cleanup trap, installing
# Postfix without starting it, a private Postfix instance under the temp
# dir (main.cf from the caller, master.cf here), sluiced's configuration,
# and starting/stopping sluiced.
#
# The caller sets before sourcing: ROOT, PY, LIB, NAME (for messages). It
# then calls bench_defaults (the settings), bench_setup (makes $TMP) and, for Postfix,
# pf_write_master PORT followed by pf_check and pf_dirsync DIR....
# shellcheck shell=bash

# bench_defaults SESSIONS - the settings every benchmark takes from the
# environment (each script's header lists them), with their defaults,
# checked; SESSIONS is the script's default list of concurrencies
bench_defaults() {
    REPEAT=${REPEAT:-3}
    WARMUP=${WARMUP:-200}
    COUNT_1K=${COUNT_1K:-${COUNT:-2000}}
    COUNT_100K=${COUNT_100K:-${COUNT:-500}}
    SIZES=${SIZES:-"1024 102400"}
    SESSIONS=${SESSIONS:-$1}
    POSTFIX_ONLY=${POSTFIX_ONLY:-0}
    SLUICED=${SLUICED:-$ROOT/build/sluiced}
    KEEP=${KEEP:-0}
    RUN_TIMEOUT=${RUN_TIMEOUT:-300}
    DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
    check_positive REPEAT COUNT_1K COUNT_100K RUN_TIMEOUT DRAIN_TIMEOUT
    # shellcheck disable=SC2086
    check_list_positive $SIZES $SESSIONS
    [[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a number (got '$WARMUP')"
}

SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
POSTFIX=/usr/sbin/postfix

die() { echo "$NAME: $*" >&2; exit 1; }
log() { echo "== $*"; }

[[ $EUID -eq 0 ]] || die "must run as root (installs packages, runs Postfix)"

# check_positive VAR... - each named variable is a positive integer
check_positive() {
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
    done
}

# check_list_positive VALUE... - SIZES and SESSIONS entries
check_list_positive() {
    local v
    for v in "$@"; do
        [[ $v =~ ^[1-9][0-9]*$ ]] || die "SIZES/SESSIONS must be positive integers (got '$v')"
    done
}

TMP=""
SLUICE_PID=""
PF_CONF=""
PF_QUEUE=""
PF_STARTED=0
POLICY_CREATED=0
POLICY_BACKUP=""
CLEANUP_HOOK=""     # optional function name, called first by cleanup

restore_policy_rc() {
    if [[ $POLICY_CREATED == 1 ]]; then
        rm -f /usr/sbin/policy-rc.d
        POLICY_CREATED=0
    elif [[ -n $POLICY_BACKUP ]]; then
        mv -f "$POLICY_BACKUP" /usr/sbin/policy-rc.d
        POLICY_BACKUP=""
    fi
}

pf_master_pid() {
    local f="$PF_QUEUE/pid/master.pid"
    if [[ -r $f ]]; then tr -d ' \n' <"$f"; fi
}

stop_postfix() {
    [[ $PF_STARTED == 1 ]] || return 0
    local pid
    pid=$(pf_master_pid)
    "$POSTFIX" -c "$PF_CONF" stop >/dev/null 2>&1 || true
    if [[ -n $pid ]] && ! "$PY" "$LIB" pidwait "$pid" 15; then
        echo "postfix master $pid did not stop; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        "$PY" "$LIB" pidwait "$pid" 5 || true
    fi
    rm -f "$PF_QUEUE/pid/master.pid"   # stale otherwise; the next start reads it
    PF_STARTED=0
}

stop_sluiced() {
    [[ -n $SLUICE_PID ]] || return 0
    kill -TERM "$SLUICE_PID" 2>/dev/null || true
    if ! "$PY" "$LIB" pidwait "$SLUICE_PID" 10; then
        echo "sluiced $SLUICE_PID did not exit on SIGTERM; sending SIGKILL" >&2
        kill -KILL "$SLUICE_PID" 2>/dev/null || true
    fi
    wait "$SLUICE_PID" 2>/dev/null || true
    SLUICE_PID=""
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [[ -z $CLEANUP_HOOK ]] || "$CLEANUP_HOOK"
    stop_sluiced
    stop_postfix
    restore_policy_rc
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ $KEEP == 1 ]]; then
            echo "temp dir kept: $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# install_deps - postfix (smtp-source, smtp-sink) without starting it
install_deps() {
    local need=()
    [[ -x $PY ]] || need+=(python3)
    [[ -x $SMTP_SOURCE && -x $SMTP_SINK && -x $POSTFIX ]] || need+=(postfix)
    [[ ${#need[@]} -gt 0 ]] || return 0
    log "installing: ${need[*]} (system Postfix will not be started)"
    # Forbid service starts during the install; restore/remove afterwards.
    if [[ -e /usr/sbin/policy-rc.d ]]; then
        POLICY_BACKUP=$(mktemp /usr/sbin/policy-rc.d.bench-backup.XXXXXX)
        cp -p /usr/sbin/policy-rc.d "$POLICY_BACKUP"
    else
        POLICY_CREATED=1
    fi
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
    restore_policy_rc
    [[ -x $SMTP_SOURCE && -x $POSTFIX ]] || die "postfix install did not provide $SMTP_SOURCE"
}

# bench_setup PREFIX - dependencies, $TMP, the sluiced binary (built if missing)
bench_setup() {
    install_deps
    TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/$1.XXXXXX")
    chmod 755 "$TMP"   # Postfix daemons and virtual (uid nobody) traverse it
    PF_CONF="$TMP/pf-conf"
    PF_QUEUE="$TMP/pf-queue"
    mkdir -p "$PF_CONF" "$PF_QUEUE"
    [[ ${POSTFIX_ONLY:-0} == 1 ]] && return 0
    if [[ ! -x $SLUICED ]]; then
        log "$SLUICED missing; running make at $ROOT"
        if ! (cd "$ROOT" && make) >"$TMP/make.log" 2>&1; then
            tail -n 20 "$TMP/make.log" >&2
            die "make failed, so there is no sluiced to measure (log above)."
        fi
    fi
    [[ -x $SLUICED ]] || die "$SLUICED does not exist (even after make)."
}

# sluiced_yaml SPOOL PORT MAILBASE [EXTRA] - the benchmarks' sluiced
# configuration: one mx listener on 127.0.0.1:PORT, bench@example.test
# delivered into MAILBASE/example.test/bench/Maildir, then the lines EXTRA
sluiced_yaml() {
    cat <<EOF
hostname: bench.example.test
spool: $1
listeners:
  - {name: mx, address: 127.0.0.1, port: $2, role: mx}
domains: {local: [example.test]}
mailboxes: {maildir: "$3/%d/%u/Maildir", users: [bench@example.test]}
log: {target: stderr}
${4:-}
EOF
}

# start_sluiced CONF PORT - in the foreground of a background job
start_sluiced() {
    [[ ${POSTFIX_ONLY:-0} == 1 ]] && return 0
    "$SLUICED" -c "$1" </dev/null >>"$TMP/sluiced.log" 2>&1 &
    SLUICE_PID=$!
    if ! "$PY" "$LIB" waitport "$2" 10 "$SLUICE_PID"; then
        tail -n 20 "$TMP/sluiced.log" >&2
        die "sluiced did not accept connections on 127.0.0.1:$2 within 10 s"
    fi
}

# pf_main_common - the main.cf lines every private instance shares
pf_main_common() {
    cat <<EOF
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $TMP/pf-data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = $TMP/postfix.log
maillog_file_prefixes = $TMP
myhostname = postfix-bench.example.test
mydomain = example.test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 150
EOF
}

# pf_write_master PORT - master.cf: no chroot, smtpd only on 127.0.0.1:PORT
pf_write_master() {
    cat >"$PF_CONF/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$1 inet n - n - - smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
local      unix  -       n       n       -       -       local
virtual    unix  -       n       n       -       -       virtual
lmtp       unix  -       -       n       -       -       lmtp
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
EOF
}

# pf_check - `postfix check` of the private instance (as root, `postfix -c
# DIR` needs no alternate_config_directories in /etc/postfix/main.cf)
pf_check() {
    if ! "$POSTFIX" -c "$PF_CONF" check >"$TMP/postfix-check.log" 2>&1; then
        cat "$TMP/postfix-check.log" >&2; tail -n 20 "$TMP/postfix.log" >&2 || true
        die "postfix -c $PF_CONF check failed"
    fi
}

# pf_dirsync DIR... - durability parity for Postfix's directories.
# sluiced fsyncs a directory after each name it puts there (design.md
# section 4). Postfix fsyncs only files: its documentation asks for a file
# system on which a file is not lost after its fsync, even when it is
# later renamed to a near-by directory, and on which a Maildir file
# hard-linked into new/ is not lost. A journal gives both. ext2, and ext4
# without a journal, do not: there the fsync of a new file writes its
# parent directory too (so the 250 itself holds), but the later renames
# (incoming/ -> active/ -> deferred/) and the link into new/ wait for
# writeback, and a crash before it can lose accepted or delivered mail.
# Postfix's remedy is synchronous directory updates: chattr +D (new
# subdirectories inherit it) on exactly the directories a message enters
# after the 250, which the caller names (not incoming/: the fsync covers
# it). PF_DIRSYNC=auto (default) sets it when $TMP is on such a file
# system; 1 always, 0 never (stock Postfix). Sets PF_DIRSYNC_TXT.
# shellcheck disable=SC2034  # PF_DIRSYNC_TXT is read by the callers
pf_dirsync() {
    local mode=${PF_DIRSYNC:-auto} fstype source why=""
    read -r fstype source < <(findmnt -n -o FSTYPE,SOURCE -T "$TMP") || true
    case $fstype in
    ext2) why="$TMP is on ext2" ;;
    ext3 | ext4)
        compgen -G "/proc/fs/jbd2/${source##*/}-*" >/dev/null ||
            why="$TMP is on $fstype without a journal" ;;
    esac
    case $mode in
    auto) [[ -n $why ]] || { PF_DIRSYNC_TXT="stock (the file system of $TMP keeps directory entries with a file's fsync)"; return 0; } ;;
    1) [[ -n $why ]] || why="PF_DIRSYNC=1" ;;
    0)
        PF_DIRSYNC_TXT="stock (PF_DIRSYNC=0)"
        [[ -z $why ]] || PF_DIRSYNC_TXT="stock (PF_DIRSYNC=0; $why, where its directory entries are not durable)"
        return 0 ;;
    *) die "PF_DIRSYNC must be auto, 1 or 0 (got '$mode')" ;;
    esac
    find "$@" -type d -exec chattr +D {} + || die "chattr +D failed on $*"
    PF_DIRSYNC_TXT="synchronous directory updates (chattr +D) on ${*#"$TMP"/}: $why (PF_DIRSYNC=0 for stock)"
}

# start_postfix PORT
start_postfix() {
    PF_STARTED=1
    if ! "$POSTFIX" -c "$PF_CONF" start >>"$TMP/postfix-start.log" 2>&1; then
        cat "$TMP/postfix-start.log" >&2; tail -n 20 "$TMP/postfix.log" >&2 || true
        die "postfix -c $PF_CONF start failed"
    fi
    local pid="" i
    for ((i = 0; i < 100; i++)); do
        pid=$(pf_master_pid)
        [[ -z $pid ]] || break
        sleep 0.1
    done
    [[ -n $pid ]] || die "no Postfix master pid file under $PF_QUEUE/pid"
    if ! "$PY" "$LIB" waitport "$1" 10 "$pid"; then
        tail -n 20 "$TMP/postfix.log" >&2 || true
        die "private Postfix did not accept connections on 127.0.0.1:$1 within 10 s"
    fi
}
