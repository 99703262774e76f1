#!/usr/bin/env bash
# tests/fuzz/run.sh - what `make fuzz` runs: run.sh BUILD NAME...
#
# For each harness BUILD/fuzz_NAME: every saved crash input in
# tests/fuzz/regressions/NAME/ and every seed in tests/fuzz/corpus/NAME/ is
# run once (no fuzzing); then, when FUZZ_SECONDS > 0, the harness fuzzes for
# FUZZ_SECONDS on a scratch copy of the seeds in BUILD/corpus/NAME (the
# checked-in corpus never grows) with tests/fuzz/smtp.dict. Crash inputs
# land in BUILD/artifacts/NAME/, logs in BUILD/logs/NAME.log. Every harness
# runs even after one fails; the exit status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

build=$1; shift
secs=${FUZZ_SECONDS:-30}
dict=tests/fuzz/smtp.dict
failed=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

mkdir -p "$build/logs"
for name in "$@"; do
	bin=$build/fuzz_$name
	log=$build/logs/$name.log
	: > "$log"
	# the regressions and the seeds, once each
	inputs=()
	for d in tests/fuzz/regressions/$name tests/fuzz/corpus/$name; do
		[ -d "$d" ] || continue
		while IFS= read -r -d '' f; do inputs+=("$f"); done \
		    < <(find "$d" -type f ! -name 'README*' -print0 | sort -z)
	done
	if [ ${#inputs[@]} -gt 0 ]; then
		if ! "$bin" "${inputs[@]}" >>"$log" 2>&1; then
			echo "FAIL $name: a regression or seed input crashes (see $log)"
			tail -n 40 "$log"
			failed+=("$name")
			continue
		fi
		echo "ok   $name: ${#inputs[@]} regression/seed inputs"
	fi
	[ "$secs" -gt 0 ] || continue

	corpus=$build/corpus/$name
	arts=$build/artifacts/$name
	rm -rf "$corpus"
	mkdir -p "$corpus" "$arts"
	[ -d tests/fuzz/corpus/$name ] && cp -r tests/fuzz/corpus/$name/. "$corpus/"
	maxlen=4096
	case $name in mime*) maxlen=65536 ;; esac
	"$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
	    -max_len=$maxlen -dict="$dict" -artifact_prefix="$arts/" \
	    -print_final_stats=1 "$corpus" >>"$log" 2>&1
	rc=$?
	stats=$(grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	if [ $rc -ne 0 ]; then
		echo "FAIL $name: exit $rc, inputs in $arts/ (see $log)"
		grep -E -A 30 '^==[0-9]+==ERROR|runtime error|deadly signal' \
		    "$log" | head -n 40
		failed+=("$name")
	else
		echo "ok   $name: ${secs}s, $execs exec/s, ${stats#*DONE}"
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: failed: ${failed[*]}"
	exit 1
fi
echo "fuzz: all harnesses passed"
