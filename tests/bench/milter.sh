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
#   not included; their resident size is printed per run).
#
# How to run (as root; installs postfix and libmilter-dev if missing, without
# starting the system Postfix):
#   bash tests/bench/milter.sh
#   POSTFIX_ONLY=1 COUNT=300 REPEAT=1 SESSIONS=10 bash tests/bench/milter.sh
#
# This is accept.sh with MILTER=1 (the milter pieces are in bench_milter.sh).
#
# Environment variables (as accept.sh)
#   REPEAT=3  WARMUP=200  COUNT / COUNT_1K (2000) / COUNT_100K (500)
#   SIZES="1024 102400"  SESSIONS="1 10 50"  POSTFIX_ONLY=1  SLUICED=path
#   KEEP=1  RESULTS=path (default /tmp/sluice-milter-results.XXXXXX.txt)
#   RUN_TIMEOUT=300  DRAIN_TIMEOUT=120
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MILTER=1 exec bash "$HERE/accept.sh"
