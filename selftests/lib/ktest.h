/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Common pieces of the kaccess selftests, on top of kselftest_harness.h. */
#ifndef KACCESS_SELFTEST_KTEST_H
#define KACCESS_SELFTEST_KTEST_H

#include <unistd.h>

#include "kselftest_harness.h"

/* Tests that load BPF or create namespaces need root: SKIP, never a false pass. */
#define REQUIRE_ROOT()                                                      \
	do {                                                                \
		if (geteuid() != 0)                                         \
			SKIP(return, "needs root (BPF, netns, cgroups)");   \
	} while (0)

/*
 * TEST_F_TIMEOUT whose body is skipped when FIXTURE_SETUP called SKIP():
 * the kselftest_harness.h of Linux 6.1 runs the body anyway (later versions
 * do not), which would turn a SKIP into a failure.
 */
#define KTEST_F(fixture, name, timeout_s)                                         \
	static void fixture##_##name##_body(struct __test_metadata *_metadata,      \
					    FIXTURE_DATA(fixture) *self,              \
					    const FIXTURE_VARIANT(fixture) *variant); \
	TEST_F_TIMEOUT(fixture, name, timeout_s)                                     \
	{                                                                            \
		if (!_metadata->skip)                                                \
			fixture##_##name##_body(_metadata, self, variant);           \
	}                                                                            \
	static void fixture##_##name##_body(struct __test_metadata *_metadata,      \
					    FIXTURE_DATA(fixture) *self,              \
					    const FIXTURE_VARIANT(fixture) *variant)

#endif
