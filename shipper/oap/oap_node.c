// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The access-log node info from this host. OAP reads it from the first
 * message of every stream: it adds the access logs' offsets to bootTime and
 * looks ifindex values up in the interface list.
 */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "oap.h"

/* The wall-clock time at which CLOCK_MONOTONIC (bpf_ktime_get_ns) read 0. */
static void monotonic_zero(Skywalking__V3__Instant *ret_boot)
{
	struct timespec real, mono;
	int64_t ns;

	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	ns = ((int64_t)real.tv_sec - mono.tv_sec) * 1000000000 + (real.tv_nsec - mono.tv_nsec);
	ret_boot->seconds = ns / 1000000000;
	ret_boot->nanos = (int32_t)(ns % 1000000000);
}

static int interface_mtu(int fd, const char *name)
{
	struct ifreq req = { 0 };

	strncpy(req.ifr_name, name, IFNAMSIZ - 1);
	return fd >= 0 && ioctl(fd, SIOCGIFMTU, &req) == 0 ? req.ifr_mtu : 0;
}

int oap_sender_set_node_info_from_host(struct oap_sender *sender,
				       const char *const *exclude_namespaces)
{
	Skywalking__V3__EBPFAccessLogNodeInfo node = SKYWALKING__V3__EBPFACCESS_LOG_NODE_INFO__INIT;
	Skywalking__V3__EBPFAccessLogPolicy policy = SKYWALKING__V3__EBPFACCESS_LOG_POLICY__INIT;
	Skywalking__V3__Instant boot = SKYWALKING__V3__INSTANT__INIT;
	Skywalking__V3__EBPFAccessLogNodeNetInterface *ifaces = NULL, **iface_ptrs = NULL;
	struct if_nameindex *names = if_nameindex();
	char hostname[256] = "";
	size_t n_ifaces = 0, n_excluded = 0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;
	const struct oap_config *cfg = oap_sender_config(sender);

	for (size_t i = 0; names && names[i].if_index; i++)
		n_ifaces++;
	ifaces = calloc(n_ifaces ? n_ifaces : 1, sizeof(*ifaces));
	iface_ptrs = calloc(n_ifaces ? n_ifaces : 1, sizeof(*iface_ptrs));
	if (!ifaces || !iface_ptrs) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_ifaces; i++) {
		skywalking__v3__ebpfaccess_log_node_net_interface__init(&ifaces[i]);
		ifaces[i].index = names[i].if_index;
		ifaces[i].mtu = interface_mtu(fd, names[i].if_name);
		ifaces[i].name = names[i].if_name;
		iface_ptrs[i] = &ifaces[i];
	}
	while (exclude_namespaces && exclude_namespaces[n_excluded])
		n_excluded++;
	policy.n_excludenamespaces = n_excluded;
	policy.excludenamespaces = (char **)exclude_namespaces;
	monotonic_zero(&boot);
	if (!cfg->node_name[0] && gethostname(hostname, sizeof(hostname) - 1)) {
		ret = -errno;
		goto out;
	}
	node.name = cfg->node_name[0] ? (char *)cfg->node_name : hostname;
	node.n_netinterfaces = n_ifaces;
	node.netinterfaces = iface_ptrs;
	node.boottime = &boot;
	node.clustername = (char *)cfg->cluster_name;
	node.policy = &policy;
	ret = oap_sender_set_node_info(sender, &node);
out:
	free(iface_ptrs);
	free(ifaces);
	if (names)
		if_freenameindex(names);
	if (fd >= 0)
		close(fd);
	return ret;
}
