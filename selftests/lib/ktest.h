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

#endif
