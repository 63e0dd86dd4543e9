/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* `kaccess status`: what a running agent has pinned and attached. */
#ifndef KACCESS_STATUS_H
#define KACCESS_STATUS_H

/* The status subcommand; argv[0] is "status". An exit code. */
int status_main(int argc, char **argv);

#endif
