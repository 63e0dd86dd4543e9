#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# vmtest.sh OUTPUT_DIR: the selftests on Debian's cloud kernels, under QEMU
# (TCG: no KVM needed), behind `make vmtest`. `make vm-tools` builds what it
# boots: OUTPUT_DIR/vm/kernels/SERIES/{vmlinuz,initramfs.cpio,release}.
#
# Each guest runs selftests/run.sh, the same suite `make test` runs on the
# host, and prints its TAP (every test name carries the guest's `uname -r`).
# A boot that dies before its final marker line is retried once, then
# reported as a failure. The last line is "N passed, N failed" over all
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
#   VMTEST_TIMEOUT_S=2400      seconds a guest may run before it is killed
#                              (the whole suite takes 23-27 minutes per guest
#                              under TCG; a guest killed is booted once more)
#   VMTEST_MEM=2G VMTEST_SMP=2 guest memory and CPUs
#   SELFTEST_TIMEOUT_S         passed to run.sh in the guest
# Full console logs: OUTPUT_DIR/vm/logs/SERIES.log (of a boot that did not
# finish: SERIES.attemptN.log).
set -uo pipefail

output_dir=${1:-.output}
vm=$output_dir/vm
kernels=${VMTEST_KERNELS:-6.1 6.12}
timeout_s=${VMTEST_TIMEOUT_S:-2400}
memory=${VMTEST_MEM:-2G}
cpus=${VMTEST_SMP:-2}
qemu=${QEMU:-qemu-system-x86_64}
total_passed=0 total_failed=0
summary=()

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

# The run's choices, as a cpio archive appended to each initramfs (/vmtest/).
mkdir -p "$work/control/vmtest"
[ -n "${VMTEST_TESTS:-}" ] && echo "$VMTEST_TESTS" > "$work/control/vmtest/tests"
[ -n "${VMTEST_SHELL_CMD:-}" ] && printf '%s\n' "$VMTEST_SHELL_CMD" > "$work/control/vmtest/cmd"
[ -n "${SELFTEST_TIMEOUT_S:-}" ] && echo "SELFTEST_TIMEOUT_S=$SELFTEST_TIMEOUT_S" > "$work/control/vmtest/env"
(cd "$work/control" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) \
	> "$work/control.cpio" || die "cpio failed: run 'make deps-vm'"

# boot SERIES LOG: one guest, its console into LOG (without the CRs and the
# firmware's terminal escapes).
boot() {
	local kdir=$vm/kernels/$1 log=$2
	cat "$kdir/initramfs.cpio" "$work/control.cpio" > "$work/initrd.cpio"
	timeout --kill-after=10 "$timeout_s" "$qemu" -accel tcg -cpu max -smp "$cpus" -m "$memory" \
		-nographic -no-reboot -nic none \
		-kernel "$kdir/vmlinuz" -initrd "$work/initrd.cpio" \
		-append "console=ttyS0 panic=-1 rdinit=/init quiet" \
		</dev/null 2>&1 | sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' > "$log"
	return "${PIPESTATUS[0]}"
}

# The guest's lines between its markers.
guest_output() {
	sed -n '/VMTEST-BEGIN /,/^VMTEST-END rc=/p' "$1" | sed -e '1d' -e '$d'
}

for series in $kernels; do
	kdir=$vm/kernels/$series
	release=$(cat "$kdir/release")
	package=$(cat "$kdir/package" 2>/dev/null || echo "$release")
	log=$vm/logs/$series.log
	rm -f "$vm/logs/$series".attempt*.log
	ok=0
	for attempt in 1 2; do
		echo "# $series: booting $package (console: $log)"
		started=$(date +%s)
		boot "$series" "$log"
		status=$?
		seconds=$(($(date +%s) - started))
		if grep -q '^VMTEST-END rc=' "$log"; then
			ok=1
			break
		fi
		cp "$log" "$vm/logs/$series.attempt$attempt.log"
		if [ "$status" = 124 ] || [ "$status" = 137 ]; then
			why="was killed after VMTEST_TIMEOUT_S=$timeout_s s"
		else
			why="died after $seconds s (qemu exit $status)"
		fi
		echo "# $series: boot $attempt $why without its final line; last lines ($vm/logs/$series.attempt$attempt.log):"
		tail -n 20 "$log" | sed 's/^/#   /'
	done

	rc=$(sed -n 's/^VMTEST-END rc=\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	echo "# ==== $series: $package ($release) ===="
	if [ "$ok" != 1 ]; then
		echo "not ok 1 [$release] vmtest: the guest did not finish, twice (see $vm/logs/$series.attempt*.log)"
		echo "vmtest.sh: $series: the guest did not finish, twice" >&2
		total_failed=$((total_failed + 1))
		summary+=("# $series ($release): did not finish, twice (last boot: ${seconds} s)")
		continue
	fi
	if [ -n "${VMTEST_SHELL_CMD:-}" ]; then
		guest_output "$log"
		[ "$rc" = 0 ] && total_passed=$((total_passed + 1)) || total_failed=$((total_failed + 1))
		summary+=("# $series ($release): command exited $rc, ${seconds} s")
		continue
	fi
	# The guest's own "N passed, N failed" becomes a comment: the plain line
	# is the combined one at the end.
	guest_output "$log" | sed -E 's/^([0-9]+ passed, [0-9]+ failed)$/# '"$series"': \1/'
	passed=$(guest_output "$log" | grep -cE '^ok [0-9]+ ')
	skipped=$(guest_output "$log" | grep -cE '^ok [0-9]+ .*# SKIP')
	failed=$(guest_output "$log" | grep -cE '^not ok [0-9]+ ')
	passed=$((passed - skipped))
	if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
		echo "not ok $((passed + skipped + 1)) [$release] vmtest: run.sh exited $rc without a failed test"
		failed=1
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	summary+=("# $series ($release): $passed passed, $failed failed, $skipped skipped in ${seconds} s")
done

echo "# ==== summary ===="
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
