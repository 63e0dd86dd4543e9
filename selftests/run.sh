#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Run every selftest binary and merge their TAP into one stream, numbered
# across binaries, each name prefixed with the kernel release. Ends with the
# plan, a totals comment and the plain line "N passed, N failed".
#
# Comment lines "# run.sh: binaries: A B ...", "# run.sh: begin A" and
# "# run.sh: end A" let selftests/vm/vmtest.sh resume a guest that died
# (keep the binaries that ended, run the rest in a new boot).
#
# usage: selftests/run.sh [OUTPUT_DIR] [TEST_BINARY_NAME...]
set -uo pipefail

output_dir=${1:-.output}
shift || true
cd "$(dirname "$0")/.." || exit 1

export KACCESS_BIN=${KACCESS_BIN:-$output_dir/kaccess}
kernel=$(uname -r)
per_binary_timeout_s=${SELFTEST_TIMEOUT_S:-1200}
number=0 passed=0 failed=0 skipped=0

# Namespaces, cgroups and pins a killed test may have left behind.
cleanup_leftovers() {
	local ns dir
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(kat|kak)-'); do
		ip netns del "$ns" 2>/dev/null
	done
	for dir in /sys/fs/cgroup/unified/kaccess-selftest /sys/fs/cgroup/kaccess-selftest; do
		[ -d "$dir" ] || continue
		find "$dir" -depth -type d | while read -r cg; do
			echo 1 > "$cg/cgroup.kill" 2>/dev/null
			for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
		done
	done
	rm -rf /sys/fs/bpf/kaccess-selftest 2>/dev/null
	rmdir /sys/kernel/tracing/instances/kat-* 2>/dev/null
	rm -f /tmp/kaccess-selftest-*
}
trap cleanup_leftovers EXIT

# Prefix each line with the time it arrived (seconds, from bash's clock),
# so merge_tap can say how long each test took.
stamp_lines() {
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s %s\n' "$EPOCHREALTIME" "$line"
	done
}

# Renumber one binary's stamped "ok N name" lines into the merged stream,
# each followed by a "# took S s" comment: the time since the binary's
# previous result (or its start), which is what that test cost the run.
merge_tap() {
	local binary=$1 previous=$2 line status rest running="" stamp
	while IFS= read -r line; do
		stamp=${line%% *}
		line=${line#* }
		case $line in
		"#  RUN "*)
			running=${line#\#  RUN }
			running=$(echo "${running% ...}" | sed 's/^ *//')
			echo "$line"
			;;
		"ok "* | "not ok "*)
			if [[ $line == "not ok "* ]]; then status="not ok"; rest=${line#not ok }; else status="ok"; rest=${line#ok }; fi
			rest=${rest#* } # drop the binary's own number
			# the 6.1 harness prints "ok N # SKIP reason" without the name
			[[ $rest == "# SKIP"* ]] && rest="$running $rest"
			number=$((number + 1))
			echo "$status $number [$kernel] $binary $rest"
			echo "# took $(seconds_between "$previous" "$stamp") s"
			previous=$stamp
			if [ "$status" = "not ok" ]; then failed=$((failed + 1))
			elif [[ $rest == *"# SKIP"* ]]; then skipped=$((skipped + 1))
			else passed=$((passed + 1)); fi
			;;
		"TAP version"* | 1..* | "# Totals:"* | "# PASSED:"* | "# Starting "*) ;;
		*) echo "$line" ;;
		esac
	done
}

# seconds_between T0 T1: T1 - T0 with one decimal ($EPOCHREALTIME values).
seconds_between() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

run_binary() {
	local path=$1 name log results rc started
	name=$(basename "$path")
	log=$(mktemp)
	started=$EPOCHREALTIME
	timeout --kill-after=10 "$per_binary_timeout_s" "$path" 2>&1 | stamp_lines > "$log"
	rc=${PIPESTATUS[0]}
	results=$(grep -cE '^[0-9.]+ (not )?ok ' "$log")
	merge_tap "$name" "$started" < "$log"
	echo "# run.sh: $name took $(seconds_between "$started" "$EPOCHREALTIME") s"
	if [ "$rc" -ne 0 ] && [ "$results" -eq 0 ]; then
		number=$((number + 1)) failed=$((failed + 1))
		echo "not ok $number [$kernel] $name # exited $rc without results"
	fi
	rm -f "$log"
}

# The test binaries to run: those named on the command line, or all.
selected_binaries() {
	local path
	for path in "$output_dir"/selftests/test_*; do
		[ -x "$path" ] || continue
		if [ $# -gt 0 ] && [[ ! " $* " == *" $(basename "$path") "* ]]; then
			continue
		fi
		echo "$path"
	done
}

echo "TAP version 13"
cleanup_leftovers
paths=()
for path in $(selected_binaries "$@"); do paths+=("$path"); done
if [ ${#paths[@]} -eq 0 ]; then
	echo "not ok 1 [$kernel] run.sh: no test binary in $output_dir/selftests matches '$*'"
	echo "0 passed, 1 failed"
	exit 1
fi
names=("${paths[@]##*/}")
echo "# run.sh: binaries: ${names[*]}"
for path in "${paths[@]}"; do
	echo "# run.sh: begin ${path##*/}"
	run_binary "$path"
	echo "# run.sh: end ${path##*/}"
done
echo "1..$number"
echo "# Totals: pass:$passed fail:$failed skip:$skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
