#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# vmtest.sh OUTPUT_DIR: the selftests on Debian's cloud kernels, under QEMU
# (TCG: no KVM needed), behind `make vmtest`. `make vm-tools` builds what it
# boots: OUTPUT_DIR/vm/kernels/SERIES/{vmlinuz,initramfs.cpio,release}.
#
# Each guest runs selftests/run.sh, the same suite `make test` runs on the
# host, and prints its TAP (every test name carries the guest's `uname -r`).
# A guest that dies before its final marker line is booted again for the
# test binaries that had not ended (run.sh marks each binary's begin and
# end); what ended is kept. A binary the guest died in twice is reported as
# a failure and not run a third time; after VMTEST_MAX_DEATHS deaths on one
# kernel, what is left is reported as a failure. (Under QEMU's
# multi-threaded emulation, VMTEST_ACCEL=tcg, a vCPU now and then hit a
# stale int3 while the kernel patched its text for an attaching tracepoint
# or fentry: "Oops: int3", twice in one CI run. The default runs every vCPU
# on one host thread.) The last line is "N passed, N failed" over all
# guests; the exit status is 1 when anything failed.
#
# Environment:
#   VMTEST_KERNELS="6.1 6.12"  kernel series to boot (built by `make vm-tools`)
#   VMTEST_TESTS="test_tcp"    only these test binaries (default: all)
#   VMTEST_SHELL_CMD='...'     run this bash command in the guest instead of
#                              the suite (cwd: the repository, KACCESS_BIN
#                              set) and print its output, e.g.
#                              VMTEST_SHELL_CMD='$KACCESS_BIN -v -o json --duration 2'
#                              (each guest then counts as one test: passed
#                              when the command exits 0)
#   VMTEST_TIMEOUT_S=3000      seconds a guest may run before it is killed
#                              (the whole suite takes 23-24 minutes per guest
#                              under TCG; a guest killed counts as a death)
#   VMTEST_MAX_DEATHS=3        guest deaths tolerated per kernel (a shell
#                              command's guest is booted at most twice)
#   VMTEST_PARALLEL=$(nproc)   guests run side by side (each QEMU runs its
#                              vCPUs on one host thread, so one guest per
#                              host CPU; reports still come in the order of
#                              VMTEST_KERNELS)
#   VMTEST_MEM=2G VMTEST_SMP=2 guest memory and CPUs
#   VMTEST_ACCEL=tcg,thread=single  QEMU's -accel option. One host thread
#                              runs both vCPUs: test_http took 291 s against
#                              281 s with a thread per vCPU (`tcg`), whose
#                              guests now and then died of a stale int3 while
#                              the kernel patched its text
#   SELFTEST_TIMEOUT_S         passed to run.sh in the guest
# Full console logs: OUTPUT_DIR/vm/logs/SERIES.log (of a boot that did not
# finish: SERIES.attemptN.log).
set -uo pipefail

output_dir=${1:-.output}
vm=$output_dir/vm
kernels=${VMTEST_KERNELS:-6.1 6.12}
timeout_s=${VMTEST_TIMEOUT_S:-3000}
memory=${VMTEST_MEM:-2G}
cpus=${VMTEST_SMP:-2}
accel=${VMTEST_ACCEL:-tcg,thread=single}
max_deaths=${VMTEST_MAX_DEATHS:-3}
parallel=${VMTEST_PARALLEL:-$(nproc)}
qemu=${QEMU:-qemu-system-x86_64}
total_passed=0 total_failed=0
summary=() pids=()

die() { echo "vmtest.sh: $*" >&2; exit 1; }

command -v "$qemu" >/dev/null || die "$qemu missing: run 'make deps-vm'"
for series in $kernels; do
	for file in vmlinuz initramfs.cpio release; do
		[ -r "$vm/kernels/$series/$file" ] ||
			die "$vm/kernels/$series/$file missing: run 'make vm-tools VMTEST_KERNELS=\"$kernels\"'"
	done
done
mkdir -p "$vm/logs"
work=$(mktemp -d "$vm/run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# make_control SERIES TESTS: the run's choices, as a cpio archive appended
# to the initramfs (/vmtest/); TESTS empty means every binary.
make_control() {
	local dir=$work/$1.control
	rm -rf "$dir"
	mkdir -p "$dir/vmtest"
	[ -n "$2" ] && echo "$2" > "$dir/vmtest/tests"
	[ -n "${VMTEST_SHELL_CMD:-}" ] && printf '%s\n' "$VMTEST_SHELL_CMD" > "$dir/vmtest/cmd"
	[ -n "${SELFTEST_TIMEOUT_S:-}" ] && echo "SELFTEST_TIMEOUT_S=$SELFTEST_TIMEOUT_S" > "$dir/vmtest/env"
	(cd "$dir" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) \
		> "$work/$1.control.cpio" || die "cpio failed: run 'make deps-vm'"
}

# boot SERIES LOG: one guest, its console into LOG (without the CRs and the
# firmware's terminal escapes).
boot() {
	local kdir=$vm/kernels/$1 log=$2
	cat "$kdir/initramfs.cpio" "$work/$1.control.cpio" > "$work/$1.initrd.cpio"
	timeout --kill-after=10 "$timeout_s" "$qemu" -accel "$accel" -cpu max -smp "$cpus" -m "$memory" \
		-nographic -no-reboot -nic none \
		-kernel "$kdir/vmlinuz" -initrd "$work/$1.initrd.cpio" \
		-append "console=ttyS0 panic=-1 rdinit=/init quiet" \
		</dev/null 2>&1 | sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' > "$log"
	return "${PIPESTATUS[0]}"
}

# The guest's lines between its markers.
guest_output() {
	sed -n '/VMTEST-BEGIN /,/^VMTEST-END rc=/p' "$1" | sed -e '1d' -e '$d'
}

# The lines of each test binary that ended, from a boot that died.
ended_binaries_output() {
	sed -n '/VMTEST-BEGIN /,$p' "$1" | awk '
		/^# run.sh: begin / { text = ""; inside = 1 }
		inside { text = text $0 "\n" }
		/^# run.sh: end / { printf "%s", text; inside = 0 }'
}

# Words of list $1 that are not in list $2.
without() {
	local word out=()
	for word in $1; do
		[[ " $2 " == *" $word "* ]] || out+=("$word")
	done
	echo "${out[*]}"
}

# Number the "ok"/"not ok" lines of several boots as one stream.
renumber_tap() {
	awk '/^(not )?ok [0-9]+ / {
		status = /^not / ? "not ok" : "ok"
		sub(/^(not )?ok [0-9]+ /, "")
		$0 = status " " ++number " " $0
	} { print }'
}

# resume_after_death SERIES LOG: after a boot that died, keep the TAP of the
# binaries that ended and set $tests to those still to run (empty when none
# is left, $next_boot=0 then). A binary the guest died in twice becomes a
# failure and is not run again.
resume_after_death() {
	local series=$1 log=$2 listed ended dying
	listed=$(sed -n 's/^# run.sh: binaries: //p' "$log" | tail -n 1)
	if [ -z "$listed" ]; then
		echo "# $series: the guest died before its suite started; booting it again"
		return
	fi
	ended_binaries_output "$log" >> "$kept"
	ended=$(sed -n 's/^# run.sh: end //p' "$log" | xargs)
	tests=$(without "$listed" "$ended")
	dying=$(without "$(sed -n 's/^# run.sh: begin //p' "$log" | xargs)" "$ended")
	if [ -n "$dying" ] && [[ " $died_in " == *" $dying "* ]]; then
		echo "not ok 1 [$release] $dying # the guest died during it twice (see $vm/logs/$series.attempt*.log)" >> "$kept"
		tests=$(without "$tests" "$dying")
	fi
	died_in="$died_in $dying"
	if [ -z "$tests" ]; then
		next_boot=0
		return
	fi
	echo "# $series: booting again for the binaries that had not ended: $tests"
}

# run_series SERIES: boot the guest until its suite has run (resuming after a
# death), print its TAP and add to the totals.
run_series() {
	local series=$1 kdir=$vm/kernels/$1 release package log status seconds why
	local deaths=0 ok=0 next_boot=1 died_in="" tests=${VMTEST_TESTS:-} rc
	local kept=$work/$series.kept allowed_deaths=$max_deaths passed skipped failed
	release=$(cat "$kdir/release")
	package=$(cat "$kdir/package" 2>/dev/null || echo "$release")
	log=$vm/logs/$series.log
	[ -n "${VMTEST_SHELL_CMD:-}" ] && allowed_deaths=2
	rm -f "$vm/logs/$series".attempt*.log
	: > "$kept"
	while [ "$next_boot" = 1 ]; do
		make_control "$series" "$tests"
		echo "# $series: booting $package (console: $log)"
		started=$(date +%s)
		boot "$series" "$log"
		status=$?
		seconds=$(($(date +%s) - started))
		if grep -q '^VMTEST-END rc=' "$log"; then
			ok=1
			break
		fi
		deaths=$((deaths + 1))
		cp "$log" "$vm/logs/$series.attempt$deaths.log"
		if [ "$status" = 124 ] || [ "$status" = 137 ]; then
			why="was killed after VMTEST_TIMEOUT_S=$timeout_s s"
		else
			why="died after $seconds s (qemu exit $status)"
		fi
		echo "# $series: boot $deaths $why without its final line; last lines ($vm/logs/$series.attempt$deaths.log):"
		tail -n 20 "$log" | sed 's/^/#   /'
		[ -z "${VMTEST_SHELL_CMD:-}" ] && resume_after_death "$series" "$log"
		[ "$deaths" -ge "$allowed_deaths" ] && break
	done

	echo "# ==== $series: $package ($release) ===="
	if [ "$ok" != 1 ] && [ "$next_boot" = 1 ]; then
		echo "not ok 1 [$release] vmtest: the guest died $deaths times; not run: ${tests:-everything} (see $vm/logs/$series.attempt*.log)" >> "$kept"
		echo "vmtest.sh: $series: the guest died $deaths times" >&2
	fi
	if [ -n "${VMTEST_SHELL_CMD:-}" ] && [ "$ok" != 1 ]; then
		cat "$kept"
		total_failed=$((total_failed + 1))
		summary+=("# $series ($release): the guest died $deaths times")
		return
	fi
	rc=$(sed -n 's/^VMTEST-END rc=\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	if [ -n "${VMTEST_SHELL_CMD:-}" ]; then
		guest_output "$log"
		[ "$rc" = 0 ] && total_passed=$((total_passed + 1)) || total_failed=$((total_failed + 1))
		summary+=("# $series ($release): command exited $rc, ${seconds} s")
		return
	fi
	# The guest's own "N passed, N failed" becomes a comment: the plain line
	# is the combined one at the end.
	{
		cat "$kept"
		[ "$ok" = 1 ] && guest_output "$log"
	} | grep -vE '^(TAP version|1\.\.[0-9]+$)' | renumber_tap | sed -E 's/^([0-9]+ passed, [0-9]+ failed)$/# '"$series"' (its last boot): \1/' > "$work/$series.tap"
	cat "$work/$series.tap"
	passed=$(grep -cE '^ok [0-9]+ ' "$work/$series.tap")
	skipped=$(grep -cE '^ok [0-9]+ .*# SKIP' "$work/$series.tap")
	failed=$(grep -cE '^not ok [0-9]+ ' "$work/$series.tap")
	passed=$((passed - skipped))
	if [ "$ok" = 1 ] && [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
		echo "not ok $((passed + skipped + 1)) [$release] vmtest: run.sh exited $rc without a failed test"
		failed=1
	elif [ $((passed + skipped + failed)) = 0 ]; then
		echo "not ok 1 [$release] vmtest: the guest ran no test"
		failed=1
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	summary+=("# $series ($release): $passed passed, $failed failed, $skipped skipped in ${seconds} s (last boot; $deaths deaths)")
}

# run_series_apart SERIES: run_series in a subshell, its output and its
# totals into files, so guests can run side by side.
run_series_apart() {
	(
		total_passed=0 total_failed=0 summary=()
		run_series "$1"
		echo "$total_passed $total_failed" > "$work/$1.totals"
		printf '%s\n' "${summary[@]}" > "$work/$1.summary"
	) > "$work/$1.out" 2>&1
}

# Print a finished guest's output and add its totals.
report_series() {
	local passed failed
	cat "$work/$1.out"
	if [ ! -s "$work/$1.totals" ]; then
		echo "not ok 1 vmtest: $1: the runner itself failed (no totals)"
		total_failed=$((total_failed + 1))
		return
	fi
	read -r passed failed < "$work/$1.totals"
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	mapfile -t -O "${#summary[@]}" summary < "$work/$1.summary"
}

# Wait for the oldest guest not reported yet, and report it.
report_oldest() {
	wait "${pids[$reported]}"
	report_series "${started_series[$reported]}"
	reported=$((reported + 1))
}

# Up to $parallel guests at once; their reports in the order of $kernels.
started_series=() reported=0
for series in $kernels; do
	while [ $(( ${#started_series[@]} - reported )) -ge "$parallel" ]; do
		report_oldest
	done
	echo "# $series: starting its guest"
	run_series_apart "$series" &
	pids+=($!)
	started_series+=("$series")
done
while [ "$reported" -lt ${#started_series[@]} ]; do
	report_oldest
done

echo "# ==== summary ===="
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
