#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
The VM runner's own logic (selftests/vm/vmtest.sh), checked with a stand-in
for QEMU: what it reports when a guest passes, fails, dies in a test binary
once or twice, dies before its suite starts, runs nothing, or runs a shell
command. A real guest death cannot be provoked on purpose (the runner
exists for the ones QEMU's emulation caused now and then), so the stand-in
plays the guest's console: the lines selftests/vm/init and selftests/run.sh
print, from the control archive vmtest.sh appends to the initramfs, and
exits without the final marker where a scenario says the guest died.
Also CI's entry point, .ci/run, with a stand-in for make: its totals and
the failures it repeats at the end, where CI's kept tail shows them.

Prints TAP like the other selftests. Run from the repository root (run.sh
does): `make selftests` copies this file to $(OUTPUT)/selftests/test_vmtest.
Needs cpio (the runner builds its control archive with it; `make deps-test`).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

RELEASE = "9.9.0-fake-amd64"
SERIES = "9.9"
OTHER_RELEASE = "9.8.0-fake-amd64"
OTHER_SERIES = "9.8"
BINARIES = {"test_a": ["one", "two"], "test_b": ["three", "four"], "test_c": ["five", "six"]}

# The stand-in for qemu-system-x86_64. It reads the control archive (newc
# cpio) from -initrd, logs each boot's choice of binaries, and prints the
# console of a guest that runs them, dying where the scenario says.
FAKE_QEMU = r'''#!/usr/bin/python3
import json, os, sys, time

def control_files(path):
    data, files, pos = open(path, "rb").read(), {}, 0
    while data[pos:pos + 6] == b"070701":
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        size, name_len = fields[6], fields[11]
        name_at = pos + 110
        name = data[name_at:name_at + name_len - 1].decode()
        body_at = (name_at + name_len + 3) & ~3
        files[name] = data[body_at:body_at + size].decode()
        pos = (body_at + size + 3) & ~3
        if name == "TRAILER!!!":
            break
    return files

scenario = json.load(open(os.environ["FAKE_QEMU_SCENARIO"]))
state = os.environ["FAKE_QEMU_SCENARIO"] + ".boots"
boots = open(state).read().split("\n")[:-1] if os.path.exists(state) else []
boot = len(boots) + 1
files = control_files(sys.argv[sys.argv.index("-initrd") + 1])
chosen = files.get("./vmtest/tests", files.get("vmtest/tests", "")).split()
command = files.get("./vmtest/cmd", files.get("vmtest/cmd"))
with open(state, "a") as f:
    f.write(("cmd" if command else " ".join(chosen) or "all") + "\n")
death = scenario.get("deaths", {}).get(str(boot))
kernel = sys.argv[sys.argv.index("-kernel") + 1]
release = open(os.path.join(os.path.dirname(kernel), "release")).read().strip()
started = time.time()
time.sleep(scenario.get("boot_s", 0))
with open(os.environ["FAKE_QEMU_SCENARIO"] + ".spans", "a") as f:
    f.write("%s %f %f\n" % (release, started, time.time()))
print("VMTEST-BEGIN " + release, flush=True)
if death == "before":
    sys.exit(1)
if command:
    print("output of the command")
    print("VMTEST-END rc=%d" % scenario.get("cmd_rc", 0))
    sys.exit(0)
binaries = chosen or sorted(scenario["binaries"])
print("# run.sh: binaries: " + " ".join(binaries))
number = 0
for name in binaries:
    print("# run.sh: begin " + name)
    for index, test in enumerate(scenario["binaries"][name]):
        if death == name and index == 1:
            print("[ 12.3] Oops: int3", flush=True)
            sys.exit(1)
        number += 1
        failing = test in scenario.get("failing", [])
        print("%s %d [%s] %s: %s" % ("not ok" if failing else "ok", number, release, name, test))
    print("# run.sh: end " + name)
print("1..%d" % number)
print("%d passed, 0 failed" % number)
print("VMTEST-END rc=%d" % scenario.get("rc", 0))
'''

number = 0
failures = 0


def check(ok, name, detail=""):
    global number, failures
    number += 1
    if not ok:
        failures += 1
    print("%s %d vmtest_%s" % ("ok" if ok else "not ok", number, name))
    if not ok and detail:
        for line in str(detail).splitlines():
            print("#   " + line)


def find_repo():
    here = os.path.dirname(os.path.abspath(__file__))
    for start in (os.getcwd(), here, os.path.join(here, "..", "..")):
        path = os.path.join(start, "selftests", "vm", "vmtest.sh")
        if os.path.exists(path):
            return os.path.abspath(start)
    return None


class Runner:
    """A fake output directory with two fake kernels, and the fake QEMU."""

    def __init__(self, repo):
        self.repo = repo
        self.dir = tempfile.mkdtemp(prefix="kaccess-vmtest-")
        for series, release in ((SERIES, RELEASE), (OTHER_SERIES, OTHER_RELEASE)):
            kernel = os.path.join(self.dir, "out", "vm", "kernels", series)
            os.makedirs(kernel)
            for name, text in (("vmlinuz", ""), ("initramfs.cpio", ""), ("release", release + "\n")):
                with open(os.path.join(kernel, name), "w") as f:
                    f.write(text)
        self.qemu = os.path.join(self.dir, "qemu")
        with open(self.qemu, "w") as f:
            f.write(FAKE_QEMU)
        os.chmod(self.qemu, 0o755)

    def run(self, scenario, env_extra=None):
        """vmtest.sh's exit status, output, and each boot's binaries."""
        path = os.path.join(self.dir, "scenario.json")
        for stale in (path, path + ".boots", path + ".spans"):
            if os.path.exists(stale):
                os.unlink(stale)
        scenario = dict(scenario)
        scenario.setdefault("binaries", BINARIES)
        with open(path, "w") as f:
            json.dump(scenario, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VMTEST_")}
        env.update(QEMU=self.qemu, FAKE_QEMU_SCENARIO=path, VMTEST_KERNELS=SERIES,
                   VMTEST_TIMEOUT_S="60")
        env.update(env_extra or {})
        result = subprocess.run(["bash", os.path.join(self.repo, "selftests/vm/vmtest.sh"),
                                 os.path.join(self.dir, "out")],
                                cwd=self.repo, env=env, capture_output=True, text=True, timeout=120)
        with open(path + ".boots") as f:
            boots = f.read().split("\n")[:-1]
        with open(path + ".spans") as f:
            self.spans = {}
            for line in f:
                release, start, end = line.split()
                self.spans[release] = (float(start), float(end))
        return result.returncode, result.stdout, boots

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def results(output):
    """The TAP results as (ok, number, name) in order, the final line apart."""
    found = []
    for line in output.splitlines():
        match = re.match(r"^(not ok|ok) (\d+) (.*)$", line)
        if match:
            found.append((match.group(1) == "ok", int(match.group(2)), match.group(3)))
    return found


def last_line(output):
    lines = output.strip().splitlines()
    return lines[-1] if lines else ""


def names(found, ok=True):
    return sorted(name.split("] ", 1)[1] for passed, _, name in found if passed == ok)


ALL_TESTS = sorted("%s: %s" % (b, t) for b, tests in BINARIES.items() for t in tests)


def check_clean_run(runner):
    rc, out, boots = runner.run({})
    found = results(out)
    check(rc == 0 and last_line(out) == "6 passed, 0 failed" and boots == ["all"],
          "clean_run_reports_every_test_once", out)
    check([n for _, n, _ in found] == list(range(1, 7)) and names(found) == ALL_TESTS,
          "clean_run_numbers_its_tap_in_order", out)


def check_one_death_resumes(runner):
    rc, out, boots = runner.run({"deaths": {"1": "test_b"}})
    found = results(out)
    check(boots == ["all", "test_b test_c"],
          "death_boots_again_for_the_binaries_not_ended", "boots: %s" % boots)
    check(rc == 0 and last_line(out) == "6 passed, 0 failed" and names(found) == ALL_TESTS,
          "death_keeps_what_ended_and_counts_each_test_once", out)
    check([n for _, n, _ in found] == list(range(1, 7)),
          "death_renumbers_the_boots_as_one_tap_stream", out)


def check_two_deaths_in_one_binary(runner):
    rc, out, boots = runner.run({"deaths": {"1": "test_b", "2": "test_b"}})
    found = results(out)
    failed = names(found, ok=False)
    check(boots == ["all", "test_b test_c", "test_c"],
          "binary_that_killed_the_guest_twice_is_not_run_again", "boots: %s" % boots)
    check(rc == 1 and last_line(out) == "4 passed, 1 failed" and
          names(found) == ["test_a: one", "test_a: two", "test_c: five", "test_c: six"] and
          len(failed) == 1 and failed[0].startswith("test_b # the guest died during it twice"),
          "binary_that_killed_the_guest_twice_fails", out)


def check_deaths_before_the_suite(runner):
    rc, out, boots = runner.run({"deaths": {"1": "before", "2": "before", "3": "before"}})
    failed = names(results(out), ok=False)
    check(rc == 1 and boots == ["all", "all", "all"] and last_line(out) == "0 passed, 1 failed" and
          len(failed) == 1 and failed[0].startswith("vmtest: the guest died 3 times; not run: everything"),
          "guest_that_never_starts_fails_after_max_deaths", out)


def check_failures_and_exit_status(runner):
    rc, out, _ = runner.run({"failing": ["four"]})
    check(rc == 1 and last_line(out) == "5 passed, 1 failed" and
          names(results(out), ok=False) == ["test_b: four"], "failed_test_fails_the_run", out)
    rc, out, _ = runner.run({"rc": 1})
    failed = names(results(out), ok=False)
    check(rc == 1 and last_line(out) == "6 passed, 1 failed" and len(failed) == 1 and
          failed[0].startswith("vmtest: run.sh exited 1 without a failed test"),
          "nonzero_exit_without_a_failure_fails", out)
    rc, out, _ = runner.run({"binaries": {}})
    failed = names(results(out), ok=False)
    check(rc == 1 and last_line(out) == "0 passed, 1 failed" and failed == ["vmtest: the guest ran no test"],
          "guest_that_ran_no_test_fails", out)


def check_kernels_side_by_side(runner):
    kernels = {"VMTEST_KERNELS": OTHER_SERIES + " " + SERIES}
    scenario = {"failing": ["four"], "boot_s": 1}
    rc, out, _ = runner.run(scenario, dict(kernels, VMTEST_PARALLEL="2"))
    (a_start, a_end), (b_start, b_end) = runner.spans[OTHER_RELEASE], runner.spans[RELEASE]
    check(a_start < b_end and b_start < a_end, "two_guests_run_side_by_side",
          "spans: %s" % runner.spans)
    releases = [name.split("]", 1)[0].lstrip("[") for _, _, name in results(out)]
    check(rc == 1 and last_line(out) == "10 passed, 2 failed" and
          releases == [OTHER_RELEASE] * 6 + [RELEASE] * 6 and
          [n for _, n, _ in results(out)] == list(range(1, 7)) * 2,
          "side_by_side_guests_report_in_kernel_order_and_sum", out)
    rc, out, _ = runner.run(scenario, dict(kernels, VMTEST_PARALLEL="1"))
    (a_start, a_end), (b_start, b_end) = runner.spans[OTHER_RELEASE], runner.spans[RELEASE]
    check(a_end <= b_start and last_line(out) == "10 passed, 2 failed",
          "parallel_1_boots_one_guest_at_a_time", "spans: %s\n%s" % (runner.spans, out))


def check_shell_command(runner):
    rc, out, boots = runner.run({}, {"VMTEST_SHELL_CMD": "true"})
    check(rc == 0 and boots == ["cmd"] and "output of the command" in out and
          last_line(out) == "1 passed, 0 failed", "shell_command_passes_on_exit_0", out)
    rc, out, _ = runner.run({"cmd_rc": 3}, {"VMTEST_SHELL_CMD": "false"})
    check(rc == 1 and last_line(out) == "0 passed, 1 failed", "shell_command_fails_on_nonzero_exit", out)
    rc, out, boots = runner.run({"deaths": {"1": "before", "2": "before"}}, {"VMTEST_SHELL_CMD": "true"})
    check(rc == 1 and boots == ["cmd", "cmd"] and last_line(out) == "0 passed, 1 failed",
          "shell_command_guest_is_booted_at_most_twice", out)


# A stand-in for make in .ci/run: each target prints the TAP a scenario gives it and exits.
FAKE_MAKE = r'''#!/bin/bash
cat "$FAKE_MAKE_DIR/$1.out"
exit "$(cat "$FAKE_MAKE_DIR/$1.rc")"
'''


def run_ci(repo, targets):
    """.ci/run's exit status and output, with make replaced: targets maps a target to (rc, output)."""
    work = tempfile.mkdtemp(prefix="kaccess-ci-run-")
    try:
        with open(os.path.join(work, "make"), "w") as f:
            f.write(FAKE_MAKE)
        os.chmod(os.path.join(work, "make"), 0o755)
        for target, (rc, output) in targets.items():
            with open(os.path.join(work, target + ".out"), "w") as f:
                f.write(output)
            with open(os.path.join(work, target + ".rc"), "w") as f:
                f.write("%d\n" % rc)
        env = dict(os.environ, PATH=work + ":" + os.environ["PATH"], FAKE_MAKE_DIR=work)
        result = subprocess.run(["bash", os.path.join(repo, ".ci/run")], env=env,
                                capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_ci_run(repo):
    """.ci/run sums both suites and repeats each failure, with its diagnostics, at the end."""
    host = ("TAP version 13\nok 1 [6.18] test_a one\n#  RUN           b.two ...\n"
            "# test_a.c:12:two:Expected 1 (1) == 2 (2)\n#          FAIL  b.two\n"
            "not ok 2 [6.18] test_a two\n# took 0.1 s\nok 3 [6.18] test_a three\n"
            "1..3\n2 passed, 1 failed\n")
    guests = "ok 1 [6.1] test_a one\nnot ok 2 [6.1] test_a two\n1 passed, 1 failed\n"
    rc, out = run_ci(repo, {"test": (2, host), "vmtest": (1, guests)})
    lines = out.strip().splitlines()
    check(rc == 1 and lines[-1] == "3 passed, 2 failed", "ci_run_sums_both_suites", out)
    check(lines[-9:-1] == ["# ==== what failed, with the comments before it ====",
                           "#  RUN           b.two ...",
                           "# test_a.c:12:two:Expected 1 (1) == 2 (2)",
                           "#          FAIL  b.two", "not ok 2 [6.18] test_a two", "",
                           "not ok 2 [6.1] test_a two", ""],
          "ci_run_repeats_failures_with_their_comments_at_the_end", out)
    rc, out = run_ci(repo, {"test": (0, "ok 1 a\n1 passed, 0 failed\n"),
                            "vmtest": (2, "make: *** [vmtest] Error 2\n")})
    check(rc == 1 and "# make vmtest failed before its tests reported (exit 2)" in out and
          last_line(out) == "1 passed, 1 failed" and "what failed" not in out,
          "ci_run_counts_a_suite_that_never_reported", out)


def main():
    repo = find_repo()
    if not repo:
        print("TAP version 13\n1..1\nnot ok 1 vmtest: selftests/vm/vmtest.sh not found (run from the repository)")
        return 1
    if not shutil.which("cpio"):
        print("TAP version 13\n1..1\nnot ok 1 vmtest: cpio missing (make deps-test installs it)")
        return 1
    print("TAP version 13")
    runner = Runner(repo)
    try:
        check_clean_run(runner)
        check_one_death_resumes(runner)
        check_two_deaths_in_one_binary(runner)
        check_deaths_before_the_suite(runner)
        check_failures_and_exit_status(runner)
        check_shell_command(runner)
        check_kernels_side_by_side(runner)
        check_ci_run(repo)
    finally:
        runner.close()
    print("1..%d" % number)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
