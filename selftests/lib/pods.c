// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroups.h"
#include "pods.h"

int run_quiet(const char *fmt, ...)
{
	char command[1024];
	va_list ap;
	int status;

	va_start(ap, fmt);
	vsnprintf(command, sizeof(command), fmt, ap);
	va_end(ap);
	strncat(command, " >/dev/null 2>&1", sizeof(command) - strlen(command) - 1);
	status = system(command);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int netns_wait_listening(const char *netns, int port, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		if (run_quiet("ip netns exec %s ss -Hltn 'sport = :%d' | grep -q %d", netns, port,
			      port) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

int netns_wait_tcp_closed(const char *netns, int port, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		if (run_quiet("test -z \"$(ip netns exec %s ss -Htn state established state fin-wait-1 "
			      "state fin-wait-2 state close-wait state last-ack state closing "
			      "'( sport = :%d or dport = :%d )')\"", netns, port, port) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

int fd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int selftest_watched_cgroup(char *ret_path, size_t len)
{
	char mount[PATH_MAX];
	int err = cgroups_v2_mount(mount, sizeof(mount));

	if (err)
		return err;
	snprintf(ret_path, len, "%s/%s", mount, SELFTEST_WATCHED_SUBTREE);
	return 0;
}

static int mkdir_p(const char *path)
{
	char partial[PATH_MAX];

	for (const char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
		size_t len = slash ? (size_t)(slash - path) : strlen(path);

		snprintf(partial, sizeof(partial), "%.*s", (int)len, path);
		if (mkdir(partial, 0755) && errno != EEXIST)
			return -errno;
		if (!slash)
			return 0;
	}
}

/* A kubelet-shaped leaf: <parent>/pod<uid>/<64-hex container id>. */
static int pod_make_cgroup(struct pod *pod, const char *parent, const char *tag)
{
	char mount[1024], hex[65];
	struct stat st;
	unsigned int seed = 0;
	int err = cgroups_v2_mount(mount, sizeof(mount));

	if (err)
		return err;
	for (const char *c = tag; *c; c++)
		seed = seed * 31 + (unsigned char)*c;
	for (int i = 0; i < 64; i++)
		hex[i] = "0123456789abcdef"[((seed >> (i % 28)) & 0xf) ^ (i & 0xf)];
	hex[64] = '\0';
	snprintf(pod->cgroup_dir, sizeof(pod->cgroup_dir),
		 "%s/%s/%s/pod%08x-%04x-4%03x-8%03x-%012x/%s", mount, SELFTEST_CGROUP_ROOT, parent,
		 seed, seed & 0xffff, seed & 0xfff, (seed >> 4) & 0xfff, seed, hex);
	err = mkdir_p(pod->cgroup_dir);
	if (err)
		return err;
	if (stat(pod->cgroup_dir, &st))
		return -errno;
	pod->cgroup_id = st.st_ino;
	return 0;
}

int pod_pair_create_for_test(struct pod_pair *pair, const char *prefix)
{
	char tag[32];

	/* The harness forks each test: its pid keeps names and subnets apart. */
	snprintf(tag, sizeof(tag), "%s%d", prefix, getpid());
	return pod_pair_create(pair, tag, getpid() % 250 + 1);
}

int pod_pair_create(struct pod_pair *pair, const char *tag, int subnet)
{
	char client_tag[64], server_tag[64];
	const char *c = pair->client.netns, *s = pair->server.netns;
	int err = 0;

	memset(pair, 0, sizeof(*pair));
	snprintf(pair->client.netns, sizeof(pair->client.netns), SELFTEST_NETNS_PREFIX "%s-c", tag);
	snprintf(pair->server.netns, sizeof(pair->server.netns), SELFTEST_NETNS_PREFIX "%s-s", tag);
	snprintf(pair->client.ipv4, sizeof(pair->client.ipv4), "10.230.%d.1", subnet);
	snprintf(pair->server.ipv4, sizeof(pair->server.ipv4), "10.230.%d.2", subnet);
	snprintf(pair->client.ipv6, sizeof(pair->client.ipv6), "fd00:230:%d::1", subnet);
	snprintf(pair->server.ipv6, sizeof(pair->server.ipv6), "fd00:230:%d::2", subnet);

	err = err ?: run_quiet("ip netns add %s", c);
	err = err ?: run_quiet("ip netns add %s", s);
	err = err ?: run_quiet("ip -n %s link add eth0 type veth peer name eth0 netns %s", c, s);
	err = err ?: run_quiet("ip -n %s addr add %s/24 dev eth0", c, pair->client.ipv4);
	err = err ?: run_quiet("ip -n %s addr add %s/24 dev eth0", s, pair->server.ipv4);
	/* nodad: no duplicate address detection delay before the test may connect */
	err = err ?: run_quiet("ip -n %s addr add %s/64 dev eth0 nodad", c, pair->client.ipv6);
	err = err ?: run_quiet("ip -n %s addr add %s/64 dev eth0 nodad", s, pair->server.ipv6);
	err = err ?: run_quiet("ip -n %s link set eth0 up && ip -n %s link set lo up", c, c);
	err = err ?: run_quiet("ip -n %s link set eth0 up && ip -n %s link set lo up", s, s);
	if (err)
		return -EIO;
	snprintf(client_tag, sizeof(client_tag), "%s-client", tag);
	snprintf(server_tag, sizeof(server_tag), "%s-server", tag);
	err = pod_make_cgroup(&pair->client, "kubepods/burstable", client_tag);
	return err ?: pod_make_cgroup(&pair->server, "kubepods/besteffort", server_tag);
}

/* A pod's end of its veth to the node: its address alone, the node's as its gateway. */
static int pod_route_via_gateway(const struct pod *pod, const char *gateway_ipv4,
				 const char *gateway_ipv6)
{
	const char *ns = pod->netns;
	int err = 0;

	err = err ?: run_quiet("ip -n %s addr add %s/32 dev eth0", ns, pod->ipv4);
	err = err ?: run_quiet("ip -n %s addr add %s/128 dev eth0 nodad", ns, pod->ipv6);
	err = err ?: run_quiet("ip -n %s link set eth0 up", ns);
	err = err ?: run_quiet("ip -n %s route add %s/32 dev eth0", ns, gateway_ipv4);
	err = err ?: run_quiet("ip -n %s route add default via %s", ns, gateway_ipv4);
	err = err ?: run_quiet("ip -n %s -6 route add %s/128 dev eth0", ns, gateway_ipv6);
	return err ?: run_quiet("ip -n %s -6 route add default via %s", ns, gateway_ipv6);
}

/* The node's end of a pod's veth: the gateway address, a host route to the pod. */
static int node_route_to_pod(const char *node, const char *dev, const struct pod *pod,
			     const char *gateway_ipv4, const char *gateway_ipv6)
{
	int err = 0;

	err = err ?: run_quiet("ip -n %s link add eth0 type veth peer name %s netns %s", pod->netns,
			       dev, node);
	err = err ?: run_quiet("ip -n %s addr add %s/32 dev %s", node, gateway_ipv4, dev);
	err = err ?: run_quiet("ip -n %s addr add %s/128 dev %s nodad", node, gateway_ipv6, dev);
	err = err ?: run_quiet("ip -n %s link set %s up", node, dev);
	err = err ?: run_quiet("ip -n %s route add %s/32 dev %s", node, pod->ipv4, dev);
	err = err ?: run_quiet("ip -n %s -6 route add %s/128 dev %s", node, pod->ipv6, dev);
	return err ?: pod_route_via_gateway(pod, gateway_ipv4, gateway_ipv6);
}

int pod_pair_route_via_node(struct pod_pair *pair)
{
	const char *client_ns = pair->client.netns;
	char client_gw4[16], server_gw4[16], client_gw6[48], server_gw6[48];
	size_t tag_len = strlen(client_ns) - strlen("-c");
	int subnet = 0, err = 0;

	if (sscanf(pair->client.ipv4, "10.230.%d.", &subnet) != 1)
		return -EINVAL;
	snprintf(pair->node_netns, sizeof(pair->node_netns), "%.*s-n", (int)tag_len, client_ns);
	snprintf(client_gw4, sizeof(client_gw4), "10.230.%d.254", subnet);
	snprintf(server_gw4, sizeof(server_gw4), "10.230.%d.253", subnet);
	snprintf(client_gw6, sizeof(client_gw6), "fd00:230:%d::fe", subnet);
	snprintf(server_gw6, sizeof(server_gw6), "fd00:230:%d::fd", subnet);

	err = err ?: run_quiet("ip netns add %s", pair->node_netns);
	err = err ?: run_quiet("ip -n %s link set lo up", pair->node_netns);
	err = err ?: run_quiet("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1 "
			       "net.ipv6.conf.all.forwarding=1", pair->node_netns);
	/* the pair's direct veth goes: deleting one end deletes both */
	err = err ?: run_quiet("ip -n %s link del eth0", client_ns);
	err = err ?: node_route_to_pod(pair->node_netns, "to-client", &pair->client, client_gw4,
				       client_gw6);
	err = err ?: node_route_to_pod(pair->node_netns, "to-server", &pair->server, server_gw4,
				       server_gw6);
	return err ? -EIO : 0;
}

int pod_clone_in_cgroup(struct pod *clone, const struct pod *netns_of, const char *parent,
			const char *tag)
{
	*clone = *netns_of;
	return pod_make_cgroup(clone, parent, tag);
}

/* cgroup.kill (5.14+) ends every process in the cgroup; then it can go. */
void pod_remove_cgroup(struct pod *pod)
{
	char kill_path[PATH_MAX + 16];
	int fd;

	if (!pod->cgroup_dir[0])
		return;
	snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", pod->cgroup_dir);
	fd = open(kill_path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) { /* best effort: rmdir reports what is left */ }
		close(fd);
	}
	for (int tries = 0; tries < 50 && rmdir(pod->cgroup_dir) && errno == EBUSY; tries++)
		usleep(20000);
	pod->cgroup_dir[0] = '\0';
}

void pod_pair_destroy(struct pod_pair *pair)
{
	if (!pair)
		return;
	pod_remove_cgroup(&pair->client);
	pod_remove_cgroup(&pair->server);
	if (pair->client.netns[0])
		run_quiet("ip netns del %s", pair->client.netns);
	if (pair->server.netns[0])
		run_quiet("ip netns del %s", pair->server.netns);
	if (pair->node_netns[0])
		run_quiet("ip netns del %s", pair->node_netns);
}

static int join_cgroup(const char *cgroup_dir)
{
	char procs[PATH_MAX + 16];
	int fd, ok;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup_dir);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ok = write(fd, "0", 1) == 1;
	close(fd);
	return ok ? 0 : -EIO;
}

static int join_netns(const char *netns)
{
	char path[PATH_MAX];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/var/run/netns/%s", netns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		err = -errno;
	close(fd);
	return err;
}

static int enter_pod(const struct pod *pod)
{
	int err = join_cgroup(pod->cgroup_dir);

	if (err) {
		fprintf(stderr, "# failed to join cgroup %s: %s\n", pod->cgroup_dir, strerror(-err));
		return err;
	}
	err = join_netns(pod->netns);
	if (err)
		fprintf(stderr, "# failed to join netns %s: %s\n", pod->netns, strerror(-err));
	return err;
}

/* fork(); the child joins the pod (or exits 120) and gets 0, the parent the pid. */
static pid_t fork_into_pod(const struct pod *pod)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0 && enter_pod(pod))
		_exit(120);
	return pid;
}

pid_t pod_spawn(const struct pod *pod, int (*fn)(void *arg), void *arg)
{
	pid_t pid = fork_into_pod(pod);

	if (pid != 0)
		return pid;
	_exit(fn(arg));
}

pid_t pod_exec(const struct pod *pod, char *const argv[], const char *output_path)
{
	pid_t pid = fork_into_pod(pod);
	int fd;

	if (pid != 0)
		return pid;
	fd = open(output_path ? output_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	execvp(argv[0], argv);
	_exit(127);
}

int child_wait(pid_t pid)
{
	int status;

	if (pid <= 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void selftest_cleanup_leftovers(void)
{
	char mount[PATH_MAX];

	run_quiet("for ns in $(ip netns list | awk '{print $1}' | grep '^%s'); do ip netns del $ns; done",
		  SELFTEST_NETNS_PREFIX);
	if (cgroups_v2_mount(mount, sizeof(mount)) == 0)
		run_quiet("d=%s/%s; [ -d $d ] || exit 0; "
			  "find $d -depth -type d | while read c; do echo 1 > $c/cgroup.kill; rmdir $c; done",
			  mount, SELFTEST_CGROUP_ROOT);
}
